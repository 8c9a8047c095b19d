//! The wasm glue: the only code that touches JS. It performs what `crate::core` decides.

#[cfg(feature = "gateway")]
mod broker;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "gateway")]
mod gateway;
mod http;
mod js;
mod tokens;
mod types;

#[cfg(feature = "gateway")]
pub use broker::Broker;
#[cfg(feature = "client")]
pub use client::VccClient;
#[cfg(feature = "gateway")]
pub use gateway::Gateway;
