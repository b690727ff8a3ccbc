//! libFuzzer over `fuzz_targets::tsv` (fuzzing/src/tsv.rs says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_targets::tsv(data);
});
