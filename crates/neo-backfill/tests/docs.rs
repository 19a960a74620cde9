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

/// Every repository path the README and `docs/` name in backticks (`crates/…`, `docs/…`,
/// `scripts/…`, …) exists: the "where is X" answers stay true as files move.
#[test]
fn the_paths_the_documents_name_exist() {
    let mut docs = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let p = e.expect("a docs entry").path();
        if p.extension().is_some_and(|x| x == "md") {
            docs.push(p);
        }
    }
    let roots = [
        "crates/",
        "docs/",
        "scripts/",
        "bench/",
        "examples/",
        "e2e/",
        "fuzz/",
    ];
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).expect("a document");
        for (i, span) in text.split('`').enumerate() {
            // Odd pieces are inside backticks; a path is one word without globs or braces.
            let path = span.split_whitespace().next().unwrap_or("");
            if i % 2 == 0
                || !roots.iter().any(|r| path.starts_with(r))
                || path.contains(['*', '{', '<', '…'])
            {
                continue;
            }
            let path = path.trim_end_matches([',', '.', ':', ')']);
            let path = path.split("::").next().unwrap_or(path);
            checked += 1;
            if !root().join(path).exists() {
                missing.push(format!("{}: {path}", doc.display()));
            }
        }
    }
    assert!(checked > 20, "only {checked} paths checked");
    assert!(
        missing.is_empty(),
        "paths named by the documents that do not exist:\n{}",
        missing.join("\n")
    );
}
