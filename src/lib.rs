//! # vcc-auth
//!
//! Gets, caches and refreshes OAuth 2.0 client-credentials tokens for the Vonage
//! Contact Center (VCC) APIs, and calls those APIs with them. Compiled to WebAssembly
//! it runs in Node, browsers and workerd (Cloudflare Workers) from one npm package.
//!
//! The crate has two layers (docs/design.md in the repository says more):
//! - [`core`]: pure Rust, no I/O. It decides: scope normalisation, token parsing and
//!   expiry, the cache state machine with single-flight, retries, 401 handling, routes.
//! - `glue` (wasm32 only): performs what the core decides with `fetch` and timers, and
//!   exposes the `VccClient` class to JavaScript.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod core;

#[cfg(target_arch = "wasm32")]
mod glue;

#[cfg(target_arch = "wasm32")]
pub use glue::*;

/// The npm package's allocator: talc is 2.5 KB smaller gzipped than the default
/// dlmalloc. The gateway keeps dlmalloc: in a paired A/B through Miniflare (5 rounds)
/// the talc build used a median 5 % more CPU per request, and on Workers CPU is billed.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), not(feature = "gateway")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
