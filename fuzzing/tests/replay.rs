//! Every committed seed and regression input, through its target: none may panic. A regression
//! input is one that once broke a target (fuzz/README.md lists what each was); the seeds are
//! the corpus the fuzzers start from.

use std::path::Path;

use fuzz_targets::{TARGETS, regressions_dir, seeds_dir};

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect()
}

#[test]
fn seeds_and_regressions_replay_without_a_panic() {
    for (name, run) in TARGETS {
        let seeds = inputs(&seeds_dir(name));
        assert!(!seeds.is_empty(), "{name} has no seed inputs");
        for (path, bytes) in seeds.iter().chain(&inputs(&regressions_dir(name))) {
            let outcome = std::panic::catch_unwind(|| run(bytes))
                .unwrap_or_else(|_| panic!("{path} panics in target `{name}`"));
            assert!(!outcome.is_empty(), "{path}");
        }
    }
}

/// The seeds reach what they are for: the harness is not refusing everything before the code
/// under test.
#[test]
fn seeds_reach_the_code_under_test() {
    let outcome = |target: &str, file: &str| {
        let run = fuzz_targets::target(target).expect("a target");
        let bytes = std::fs::read(seeds_dir(target).join(file)).expect("a seed");
        run(&bytes)
    };
    for file in [
        "rgb-7x5.png",
        "rgb-7x5.jpg",
        "rgba-6x4.gif",
        "rgba-6x4.webp",
        "rgb-7x5.bmp",
    ] {
        let got = outcome("image", file);
        assert!(got.starts_with("ok "), "{file}: {got}");
    }
    assert_eq!(outcome("tsv", "basic.tsv"), "rows:2 ");
    assert!(outcome("tsv", "bad-header.tsv").starts_with("header column"));
    for (file, expected) in [
        ("search-text.json", "Search empty:false 200 ok"),
        ("search-vector.json", "Search empty:false 200 ok"),
        ("search-terms.json", "Search empty:false 200 ok"),
        ("search-examples.json", "Search empty:false 200 ok"),
        ("similar.json", "Similar empty:false 200 ok"),
        ("feedback.json", "Feedback empty:false 200 ok"),
        ("similar-unknown.json", "Similar empty:false 404 unknown_id"),
        (
            "search-empty-store.json",
            "Search empty:true 503 not_ingested",
        ),
    ] {
        let got = outcome("json_body", file);
        assert!(got.starts_with(expected), "{file}: {got}");
    }
}

/// What the fuzzers found, answered as it should be now.
#[test]
fn regressions_get_their_answer() {
    let run = |target: &str, file: &str| {
        let run = fuzz_targets::target(target).expect("a target");
        let bytes = std::fs::read(regressions_dir(target).join(file)).expect("a regression");
        run(&bytes)
    };
    // A vector number beyond f32 (infinity once parsed): refused, not searched with. (The
    // fuzzer's input, `vector-f32-overflow`, is refused earlier for its filter.)
    assert_eq!(
        run("json_body", "vector-f32-overflow-minimal"),
        "Search empty:false 400 bad_vector vector value is not a finite number"
    );
    // The same number in a weighted term's vector, or in an example's.
    let got = run("json_body", "terms-f32-overflow");
    assert!(got.starts_with("Search empty:false 400 bad_terms"), "{got}");
    let got = run("json_body", "example-f32-overflow");
    assert!(
        got.starts_with("Search empty:false 400 bad_vector"),
        "{got}"
    );
}
