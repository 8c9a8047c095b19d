//! The fuzz targets' checks (`fuzz/src/lib.rs`) over the committed corpus
//! (`fuzz/seeds/<target>/`), on stable: every input a fuzzer ever broke a property with,
//! and the seeds it started from, stay regression tests. `make fuzz` runs the fuzzers.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

#[test]
fn every_fuzz_seed_still_holds_its_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut failed = Vec::new();
    for (name, check) in checks::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a readable seed directory").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name} has no seeds in {}", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("a readable seed");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "seeds that break a property:\n{}", failed.join("\n"));
}

proptest::proptest! {
    /// Whatever path `fetch` accepts stays free of traversal and control characters
    /// under the most aggressive normalisation a server might apply (decoding again and
    /// again, dropping `;` parameters, trailing dots and spaces, reading backslashes as
    /// slashes): the fuzz `target` check, over paths built from the characters that
    /// matter.
    #[test]
    fn accepted_paths_survive_any_normalisation(input in "(/[.;%2eEc05aAdD9fF7x ]{0,8}){1,4}(\\?[a=%0-9dDaA]{0,6})?") {
        checks::target(input.as_bytes());
    }
}
