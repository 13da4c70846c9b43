//! The fuzz harness's self-check, not a fuzz target of the product: it panics
//! on one fixed input (checked in as `corpus/selftest_crash/crash`), so
//! `run.sh` can prove that a crashing input turns its run red. Built only
//! with the `selftest` feature (`required-features`), which `run.sh` enables
//! for this target alone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data == b"paddock-fuzz-selftest-crash" {
        panic!("selftest_crash: the deliberate crash run.sh checks for");
    }
});
