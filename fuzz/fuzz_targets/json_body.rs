//! libFuzzer over `fuzz_targets::json_body` (fuzzing/src/json_body.rs says what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_targets::json_body(data);
});
