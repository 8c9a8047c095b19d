//! The pure core: no JS, no I/O, no clock of its own. Everything here is tested natively
//! with `cargo test`; the glue in `crate::glue` only performs what the core decides.

pub mod breaker;
pub mod cache;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod cache_model;
pub mod config;
pub mod error;
pub mod gateway;
pub mod request;
pub mod retry;
pub mod routes;
pub mod scope;
pub mod secret;
pub mod store;
pub mod text;
pub mod token;
pub mod url;
