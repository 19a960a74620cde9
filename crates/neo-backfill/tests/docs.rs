//! The repository documents itself: no tracked file refers to a document outside it (another
//! checkout's `shared/` folder, a path on one machine), and the documents the code cites exist.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("the workspace root")
}

#[test]
fn no_tracked_file_refers_to_a_document_outside_the_repository() {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    // Built from parts so this file does not match itself.
    let outside = [
        format!("../{}/", "shared"),
        format!("/{}/", "work"),
        format!("/{}/", "root"),
        format!("/{}/", "home"),
    ];
    let mut found = Vec::new();
    let mut read = 0;
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name == "Cargo.lock" || name.ends_with("/Cargo.lock") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root().join(&name)) else {
            continue; // binary (fuzz corpora) or removed in the work tree
        };
        read += 1;
        for (n, line) in text.lines().enumerate() {
            if let Some(p) = outside.iter().find(|p| line.contains(p.as_str())) {
                found.push(format!("{name}:{}: {p}", n + 1));
            }
        }
    }
    assert!(read > 100, "only {read} files read");
    assert!(
        found.is_empty(),
        "references outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_documents_the_code_cites_exist() {
    for doc in ["docs/api.md", "docs/psa.md", "docs/architecture.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap_or_default();
        assert!(text.len() > 1000, "{doc} is missing or empty");
    }
}
