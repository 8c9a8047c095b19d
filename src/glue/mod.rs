//! The wasm glue: the only code that touches JS. It performs what `crate::core` decides.

mod client;
#[cfg(feature = "gateway")]
mod gateway;
mod http;
mod js;
mod tokens;
mod types;

pub use client::VccClient;
#[cfg(feature = "gateway")]
pub use gateway::Gateway;
