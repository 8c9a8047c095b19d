//! `VccClient`: the JS-facing class. It owns the settings and the token cache
//! (`tokens.rs`, run by the one driver) and makes authenticated API calls (`api.rs`).

mod api;
mod options;
mod store;
mod tokens;

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use self::tokens::{closed_error, settle, ClientHost, Inner};
use super::driver::{self, Step};
use super::js::{is_workerd, now_ms, to_js_error, Obj};
use super::tokens::TokenSource;

/// A client for one set of VCC API credentials: gets, caches and refreshes tokens and
/// makes authenticated calls. See the README for the options.
#[wasm_bindgen]
pub struct VccClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl VccClient {
    /// Creates a client. Throws a `VccError` (`invalid_config`) naming the bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "VccClientOptions")] options: JsValue,
    ) -> Result<VccClient, JsValue> {
        let read = options::read_options(&options).map_err(|e| to_js_error(&e))?;
        let settings = read.raw.validate().map_err(|e| to_js_error(&e.into()))?;
        let auto_refresh = settings.auto_refresh.unwrap_or(!is_workerd());
        Ok(VccClient { inner: Rc::new(Inner::new(settings, auto_refresh, read.on_event, read.store)) })
    }

    /// Resolves to an access token for `scope` (one or more scopes, space-separated),
    /// from the cache when it is fresh. Concurrent callers share one token request.
    #[wasm_bindgen(js_name = getToken, unchecked_return_type = "Promise<string>")]
    pub fn get_token(&self, scope: &str) -> Promise {
        let now = now_ms();
        let key = match self.inner.key_for(scope) {
            Ok(key) => key,
            Err(e) => return Promise::reject(&to_js_error(&e)),
        };
        if self.inner.state.borrow().closed {
            return Promise::reject(&to_js_error(&closed_error()));
        }
        // The client has one caller (its user): ""; the gateway tells its callers apart.
        match driver::step(&self.inner, &key, "", &ClientHost) {
            // A cached token answers at once, and is published for the JS fast path.
            Ok(Step::Ready(_)) => match self.inner.state.borrow_mut().tokens.publish(scope, &key, now) {
                Some(js) => Promise::resolve(&js),
                None => Promise::reject(&to_js_error(&closed_error())),
            },
            Ok(Step::Pending(wait, _)) => {
                let inner = self.inner.clone();
                future_to_promise(async move {
                    match wait.await {
                        Some(outcome) => settle(outcome),
                        // Given up on (never, for the client): plan once more.
                        None => settle(driver::token(&inner, &key, "", &ClientHost).await.map(|(t, _)| t)),
                    }
                })
            }
            Err(e) => Promise::reject(&to_js_error(&e)),
        }
    }

    /// `fetch` for VCC APIs: `input` is a path under `apiBaseUrl` (or a URL on its
    /// origin); the scope comes from the route table unless `init.scope` is given. Adds
    /// the bearer token and the versioned `Accept`; on a 401 "invalid or has expired" it
    /// gets a new token and retries once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "VccRequestInit")] init: Option<JsValue>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { api::api_fetch(inner, input, init.unwrap_or(JsValue::UNDEFINED)).await })
    }

    /// Internal: the map of fresh tokens the npm entry's `getToken` fast path reads.
    #[wasm_bindgen(getter, js_name = "__published", skip_typescript)]
    pub fn published(&self) -> js_sys::Map {
        self.inner.state.borrow().tokens.map()
    }

    /// Times and counters for `scope` (never the token), or `undefined` if unused.
    #[wasm_bindgen(js_name = tokenInfo, unchecked_return_type = "VccTokenInfo | undefined")]
    pub fn token_info(&self, scope: &str) -> Result<JsValue, JsValue> {
        let key = self.inner.key_for(scope).map_err(|e| to_js_error(&e))?;
        let Some((_, info)) = self.inner.health().into_iter().find(|(k, _)| *k == key) else {
            return Ok(JsValue::UNDEFINED);
        };
        let o = Obj::new();
        o.set("scope", key.scopes().as_str())
            .set_opt("obtainedAt", info.obtained_at)
            .set_opt("expiresAt", info.expires_at)
            .set_opt("refreshAt", info.refresh_at)
            .set("fetches", info.fetches)
            .set("refreshes", info.refreshes)
            .set("failures", info.failures)
            .set("inFlight", info.in_flight);
        if let Some(e) = info.last_error {
            o.set("lastError", to_js_error(&e));
        }
        Ok(o.0.into())
    }

    /// Drops the cached token for `scope`, or every cached token. With a `store`, the
    /// fleet's copy too (by generation, as a 401 does): the promise resolves once the
    /// store has it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn invalidate(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string")] scope: Option<String>,
    ) -> Result<Promise, JsValue> {
        let key = match scope {
            Some(s) => Some(self.inner.key_for(&s).map_err(|e| to_js_error(&e))?),
            None => None,
        };
        let keys: Vec<_> = {
            let mut state = self.inner.state.borrow_mut();
            let keys = match &key {
                Some(k) => {
                    state.tokens.change(k, |c| c.invalidate(Some(k)));
                    state.timers.remove(k);
                    vec![k.clone()]
                }
                None => {
                    let all = state.tokens.cache().keys().cloned().collect();
                    state.tokens.change_all(|c| c.invalidate(None));
                    state.timers.clear();
                    all
                }
            };
            keys
        };
        let Some(store) = self.inner.store.clone() else { return Ok(Promise::resolve(&JsValue::UNDEFINED)) };
        Ok(future_to_promise(async move {
            for k in &keys {
                store.drop_current(k).await;
            }
            Ok(JsValue::UNDEFINED)
        }))
    }

    /// Stops every refresh timer and drops cached tokens; later calls reject with
    /// `closed`. Requests already in flight finish.
    pub fn close(&self) {
        let mut state = self.inner.state.borrow_mut();
        state.closed = true;
        state.timers.clear();
        state.tokens.change_all(|c| c.invalidate(None));
    }
}
