//! The few host functions the glue needs, bound on `globalThis` so the same wasm runs in
//! browsers, Node and workerd (`web_sys::window()` is `None` outside browsers).

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[cfg(feature = "client")]
use crate::core::error::VccError;

/// `value[name]`, or `undefined` (also when `value` is not an object, or the read
/// throws): the one way the glue reads a property of a JS value it did not type.
pub fn prop(value: &JsValue, name: &str) -> JsValue {
    if !value.is_object() && !value.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen]
extern "C" {
    /// Anything with `waitUntil(promise)`: workerd's `ExecutionContext`, a Durable
    /// Object's state.
    #[derive(Clone)]
    pub type WaitUntil;
    #[wasm_bindgen(method, catch, js_name = waitUntil)]
    fn wait_until(this: &WaitUntil, promise: &Promise) -> Result<(), JsValue>;
}

/// What keeps work a request starts running after the request ends: workerd's
/// `ctx.waitUntil` (a Durable Object's `state.waitUntil`). Nothing is needed in Node and
/// browsers, where a started promise runs to its end anyway.
#[derive(Clone)]
pub struct KeepAlive(Option<WaitUntil>);

impl KeepAlive {
    /// Nothing to keep alive with (Node, browsers).
    #[cfg(feature = "client")]
    pub fn none() -> Self {
        Self(None)
    }

    /// `ctx` (an `ExecutionContext` or a Durable Object's state), if it is an object.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub fn from_js(ctx: JsValue) -> Self {
        Self(ctx.is_object().then(|| ctx.unchecked_into()))
    }

    /// The `waitUntil` holder itself (`undefined` when there is none), for a JS helper
    /// that keeps its own work alive.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub fn as_js(&self) -> JsValue {
        self.0.as_ref().map_or(JsValue::UNDEFINED, |w| w.clone().into())
    }

    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    /// Keeps `promise` running after the request ends (a runtime that refuses is
    /// ignored: the work then ends with the request, as it would without us).
    pub fn keep(&self, promise: &Promise) {
        if let Some(ctx) = &self.0 {
            let _ = ctx.wait_until(promise);
        }
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);

    /// Base64 decode to a binary string (browsers, Node 16+, workerd).
    #[wasm_bindgen(catch)]
    pub fn atob(data: &str) -> Result<String, JsValue>;

    /// One log line (the gateway's structured request log).
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    pub fn console_log(line: &str);

    /// One error log line.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(line: &str);
}

#[wasm_bindgen(module = "/src/glue/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = hideQueueMicrotask)]
    fn hide_queue_microtask() -> Function;
}

/// Internal, for the workerd entries (js/workerd.mjs, js/gateway.mjs), right after
/// `initSync`: creates wasm-bindgen-futures' task queue with `queueMicrotask` hidden.
///
/// The queue looks once, when it is created, for a global `queueMicrotask`, and without
/// one schedules its polls with a resolved promise's `then`. In workerd the global is a
/// runtime API that costs ~2.3 µs a call against ~0.05 µs for `then` (measured over
/// 200 k calls each), and a gateway request schedules 4 polls. The global is put back
/// before this returns, so no other code ever sees it missing.
#[wasm_bindgen(js_name = "__primeQueue", skip_typescript)]
pub fn prime_queue() {
    let restore = hide_queue_microtask();
    wasm_bindgen_futures::spawn_local(async {});
    let _ = restore.call0(&JsValue::UNDEFINED);
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Uniform in [0, 1), for retry jitter.
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// A one-shot timer, cancelled on drop.
///
/// Not `gloo_timers::callback::Timeout`: that keeps the handle private, and in Node the
/// handle's `unref()` must be called so that a pending refresh timer never keeps the
/// process alive. Browsers return a number (nothing to unref); Node a `Timeout` object.
pub struct Timer {
    id: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` after `ms`. With `keep_alive` false the timer does not hold a Node
    /// process open.
    pub fn new(ms: u64, keep_alive: bool, f: impl FnOnce() + 'static) -> Self {
        let closure = Closure::once(f);
        // setTimeout takes a 32-bit delay; longer ones would fire at once.
        let ms = ms.min(i32::MAX as u64) as f64;
        let id = set_timeout(closure.as_ref().unchecked_ref(), ms);
        if !keep_alive && id.is_object() {
            if let Some(unref) = prop(&id, "unref").dyn_ref::<Function>() {
                let _ = unref.call0(&id);
            }
        }
        Self { id, _closure: closure }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// Resolves after `ms` (retry backoff): gloo-timers' `TimeoutFuture`, which holds a
/// Node process open meanwhile, as it should while a caller awaits the retry. (The
/// refresh timer is [`Timer`], which gloo-timers cannot `unref`.)
pub async fn sleep(ms: u64) {
    // setTimeout takes a 32-bit delay; backoffs are seconds.
    gloo_timers::future::TimeoutFuture::new(ms.min(i32::MAX as u64) as u32).await;
}

#[cfg(feature = "client")]
thread_local! {
    /// The package's exported `VccError` class (js/errors.mjs), once an entry has set it.
    static ERROR_CLASS: std::cell::RefCell<Option<Function>> = const { std::cell::RefCell::new(None) };
}

/// Internal, for the npm entries, right after instantiation: the class every error this
/// library rejects or throws is an instance of, so `e instanceof VccError` works. (The
/// class is JS: an entry exports it, and a JS class cannot be exported by the wasm.)
#[cfg(feature = "client")]
#[wasm_bindgen(js_name = "__setErrorClass", skip_typescript)]
pub fn set_error_class(class: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

/// Turns a [`VccError`] into a JS `Error` named `VccError` with `code` (and `status`,
/// `retryAfterMs` when known): an instance of the package's `VccError` class once an
/// entry has set it, a plain `Error` before (the wasm-bindgen tests).
#[cfg(feature = "client")]
pub fn to_js_error(e: &VccError) -> JsValue {
    let made = ERROR_CLASS.with(|c| {
        let class = c.borrow().clone()?;
        Reflect::construct(&class, &js_sys::Array::of1(&JsValue::from_str(&e.message))).ok()
    });
    let err: js_sys::Error = match made {
        Some(v) => v.unchecked_into(),
        None => js_sys::Error::new(&e.message),
    };
    err.set_name("VccError");
    let _ = Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    if let Some(s) = e.status {
        let _ = Reflect::set(&err, &"status".into(), &JsValue::from(s));
    }
    if let Some(ms) = e.retry_after_ms {
        let _ = Reflect::set(&err, &"retryAfterMs".into(), &JsValue::from(ms as f64));
    }
    if let Some(field) = e.field {
        let _ = Reflect::set(&err, &"field".into(), &field.into());
    }
    err.into()
}

/// A plain object builder for results and events.
pub struct Obj(pub Object);

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Self(Object::new())
    }

    /// Sets a property (never fails on a plain object).
    pub fn set(&self, key: &str, value: impl Into<JsValue>) -> &Self {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value.into());
        self
    }

    /// Sets a number property if present.
    #[cfg(feature = "client")]
    pub fn set_opt(&self, key: &str, value: Option<u64>) -> &Self {
        if let Some(v) = value {
            self.set(key, v as f64);
        }
        self
    }
}

/// `globalThis.navigator.userAgent == "Cloudflare-Workers"`: workerd, where timers
/// cannot do I/O outside a request, so proactive refresh is off by default.
#[cfg(feature = "client")]
pub fn is_workerd() -> bool {
    prop(&prop(&js_sys::global().into(), "navigator"), "userAgent")
        .as_string()
        .is_some_and(|ua| ua == "Cloudflare-Workers")
}
