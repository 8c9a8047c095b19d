//! The shared wasm suite (`tests/common`), run in Node by wasm-bindgen-test-runner.
#![cfg(target_arch = "wasm32")]

mod common;
