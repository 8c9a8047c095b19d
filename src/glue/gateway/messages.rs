//! The broker's messages across the JS boundary. Each is one Rust type
//! (`core::gateway::broker`, deriving serde); both sides of the RPC (the isolate,
//! `broker.rs`, and the object, `object.rs`) move them with these two functions, so no
//! member name is spelled by hand.
//!
//! Only the messages: the settings rows and `/healthz` stay hand-written. On the cold
//! path (the first request reads the settings; the cold-start bench asks `/healthz`)
//! serde cost 4–5 % of the cold start in a paired A/B, and the rows, loose JSON an
//! operator wrote, needed hand-written visitors anyway (docs/performance.md).

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

/// A message as a plain JS object (`undefined` if it cannot be one, which no message
/// type allows: every member is a string, number or boolean).
pub fn to_js(message: &impl Serialize) -> JsValue {
    let s = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    message.serialize(&s).unwrap_or(JsValue::UNDEFINED)
}

/// A message from a JS object, `None` if it is not one of its type.
pub fn from_js<T: DeserializeOwned>(value: JsValue) -> Option<T> {
    serde_wasm_bindgen::from_value(value).ok()
}
