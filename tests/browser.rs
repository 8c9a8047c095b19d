//! The shared wasm suite (`tests/common`), run in headless Chromium (chromedriver).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;
