//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/`, plus the minimized crash
//! inputs in `fuzz/regressions/<target>/`) on stable, through the very functions the fuzz
//! targets call (`fuzz/fuzz_targets/<target>.rs`), so every input the fuzzer kept, and every
//! crash it found, keeps passing the targets' invariants. `./scripts/fuzz` grows the corpora.

use std::path::{Path, PathBuf};

type Body = fn(&[u8]);

/// Every fuzz target and the library function it calls.
const TARGETS: &[(&str, Body)] = &[
    ("filter_spec", neo_psa::fuzzing::filter_spec),
    ("windows", neo_domain::fuzzing::windows),
    ("bearer", neo_api::fuzzing::bearer),
    ("cw_conditions", psa_sim::fuzzing::cw_conditions),
    ("completion", neo_api::fuzzing::completion),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("a directory entry").path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs every corpus and regression input of `target`; fails on a missing or empty corpus and
/// names the input that breaks an invariant.
fn replay(target: &str) {
    let body = TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, b)| *b)
        .expect("a known target");
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "the corpus fuzz/corpus/{target} is missing or empty"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for f in corpus.iter().chain(&regressions) {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!(
                "{target}: the input {} breaks an invariant (message above)",
                f.display()
            );
        }
    }
    eprintln!(
        "{target}: {} corpus and {} regression inputs replayed",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn every_fuzz_target_is_replayed() {
    let mut targets: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    targets.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    replayed.sort();
    assert_eq!(targets, replayed);
}

#[test]
fn filter_spec_corpus() {
    replay("filter_spec");
}

#[test]
fn windows_corpus() {
    replay("windows");
}

#[test]
fn bearer_corpus() {
    replay("bearer");
}

#[test]
fn cw_conditions_corpus() {
    replay("cw_conditions");
}

#[test]
fn completion_corpus() {
    replay("completion");
}
