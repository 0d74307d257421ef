#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dagr_fuzz::targets::ingest_csv(data));
