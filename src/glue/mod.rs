//! The wasm glue: the only code that touches JS. It performs what `crate::core` decides.

mod client;
mod http;
mod js;
mod types;

pub use client::VccClient;
