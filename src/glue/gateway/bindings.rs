//! workerd's bindings, typed: every binding the gateway and the broker use is declared
//! here, once, so no other file reaches a binding by a string. Each call that could
//! throw is `catch`: a throw becomes an `Err`, never an exception through the wasm.
//! (`waitUntil` is `KeepAlive`, in `glue/js.rs`, which the client shares.)

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::Request;

use crate::glue::js::prop;

#[wasm_bindgen]
extern "C" {
    /// A Workers Rate Limiting binding (`[[ratelimits]]`).
    #[derive(Clone)]
    pub type RateLimiter;
    /// `limit({ key })`: resolves to `{ success }`.
    #[wasm_bindgen(method, catch)]
    pub fn limit(this: &RateLimiter, options: &JsValue) -> Result<Promise, JsValue>;

    /// The static assets binding (`[assets]`).
    #[derive(Clone)]
    pub type Assets;
    /// Serves `request` from the assets.
    #[wasm_bindgen(method, catch, js_name = fetch)]
    pub fn serve(this: &Assets, request: &Request) -> Result<Promise, JsValue>;

    /// A Durable Object namespace (`TOKEN_BROKER`).
    #[derive(Clone)]
    pub type DurableObjectNamespace;
    /// The id of the object named `name`.
    #[wasm_bindgen(method, catch, js_name = idFromName)]
    pub fn id_from_name(this: &DurableObjectNamespace, name: &str) -> Result<JsValue, JsValue>;
    /// The stub of object `id`, created with `options` (`locationHint`).
    #[wasm_bindgen(method, catch, js_name = get)]
    pub fn stub(this: &DurableObjectNamespace, id: &JsValue, options: &JsValue) -> Result<BrokerStub, JsValue>;

    /// A `TokenBroker` stub: its RPC methods (worker/src/index.mjs).
    #[derive(Clone)]
    pub type BrokerStub;
    /// `token(ask)`: a `BrokerAsk` in, a `BrokerAnswer` out.
    #[wasm_bindgen(method, catch)]
    pub fn token(this: &BrokerStub, ask: &JsValue) -> Result<Promise, JsValue>;
    /// `confirm(ask)`: a `BrokerConfirm`.
    #[wasm_bindgen(method, catch)]
    pub fn confirm(this: &BrokerStub, confirm: &JsValue) -> Result<Promise, JsValue>;

    /// A Durable Object's state (`ctx` in its constructor).
    #[derive(Clone)]
    pub type DurableObjectState;
    /// Its storage.
    #[wasm_bindgen(method, getter)]
    pub fn storage(this: &DurableObjectState) -> DurableObjectStorage;

    /// A Durable Object's storage.
    #[derive(Clone)]
    pub type DurableObjectStorage;
    /// `get(key)`.
    #[wasm_bindgen(method, catch, js_name = get)]
    pub fn read(this: &DurableObjectStorage, key: &str) -> Result<Promise, JsValue>;
    /// `put(key, value)`.
    #[wasm_bindgen(method, catch, js_name = put)]
    pub fn write(this: &DurableObjectStorage, key: &str, value: &JsValue) -> Result<Promise, JsValue>;
    /// `setAlarm(at)` (ms since the epoch).
    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    pub fn set_alarm(this: &DurableObjectStorage, at: f64) -> Result<Promise, JsValue>;
}

/// The bindings the gateway looks for in its `env`; each is optional, and a feature
/// without its binding is off (`/healthz` says so).
pub struct Bindings {
    /// `ASSETS`: the demo page.
    pub assets: Option<Assets>,
    /// `GATEWAY_RATE_LIMIT`.
    pub rate_limit: Option<RateLimiter>,
    /// `TOKEN_BROKER`.
    pub broker: Option<DurableObjectNamespace>,
}

impl Bindings {
    /// Reads them from `env`: a binding counts if it has the method the gateway calls.
    pub fn read(env: &JsValue) -> Self {
        let with = |name: &str, method: &str| Some(prop(env, name)).filter(|b| prop(b, method).is_function());
        Bindings {
            assets: with("ASSETS", "fetch").map(JsCast::unchecked_into),
            rate_limit: with("GATEWAY_RATE_LIMIT", "limit").map(JsCast::unchecked_into),
            broker: with("TOKEN_BROKER", "idFromName").map(JsCast::unchecked_into),
        }
    }
}
