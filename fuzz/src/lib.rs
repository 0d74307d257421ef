//! DAGR's fuzz targets: the bodies live in [`targets`], shared by the libFuzzer binaries of
//! `fuzz_targets/` (`cargo +nightly fuzz run TARGET`) and the stable smoke runner
//! `tests/fuzz_smoke.rs`. See `docs/fuzzing.md`.

pub mod targets;
