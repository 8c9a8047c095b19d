//! The wasm glue: the only code that touches JS. It performs what `crate::core` decides.
//!
//! - `js.rs`: host functions, timers, the one property reader, `KeepAlive`, `VccError`.
//! - `http.rs` (+ `host.js`): every upstream exchange: no redirects, deadlines, caps.
//! - `tokens.rs`: the token seam (`TokenSource`) and the 401 flow (`exchange`).
//! - `driver.rs`: the one driver that carries out the token cache's plans.
//! - `client/`: `VccClient` (the npm package).
//! - `gateway/`: `Gateway` and `Broker` (the edge gateway's build).

#[cfg(feature = "client")]
mod client;
mod driver;
#[cfg(feature = "gateway")]
mod gateway;
mod http;
mod js;
mod tokens;
mod types;

#[cfg(feature = "client")]
pub use client::VccClient;
#[cfg(feature = "gateway")]
pub use gateway::{Broker, Gateway};
