#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vcc_auth_fuzz::identity(data));
