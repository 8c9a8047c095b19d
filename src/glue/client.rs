//! `VccClient`: the JS-facing class. It owns the settings and the core cache, and does
//! the I/O the cache asks for: token requests (single-flight through waiters), the
//! proactive refresh timers, and authenticated API calls.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use js_sys::{Function, Object, Promise, Reflect};
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use web_sys::{Request, Response};

// The API call's request and each attempt's copy (see host.js for why they are JS).
#[wasm_bindgen(module = "/src/glue/host.js")]
extern "C" {
    #[wasm_bindgen(js_name = apiRequest, catch)]
    fn api_request(url: &str, init: &JsValue) -> Result<Request, JsValue>;
    #[wasm_bindgen(js_name = sendApi, catch)]
    fn send_api_js(request: &Request, authorization: &str, accept: &str) -> Result<Promise, JsValue>;
}

use super::http::{await_upstream, bearer, request_token, Transport};
use super::js::{is_workerd, now_ms, to_js_error, Obj, Timer};
use super::tokens::{exchange, ExchangeError, Lease, TokenSource};
use crate::core::cache::{Event, FlightId, Info, Plan, TokenCache};
use crate::core::config::{RawConfig, Settings, OPTION_NAMES};
use crate::core::error::{ErrorCode, VccError};
use crate::core::routes::{self, RouteMatch, DEFAULT_ACCEPT};
use crate::core::scope::ScopeSet;
use crate::core::secret::{AccessToken, ClientSecret};

/// Cache key: auth base URL + client id + normalised scope set, so two clients (or a
/// future shared cache) never mix tokens of different credentials. One `Rc`: cheap to
/// clone on the hot path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CacheKey(Rc<KeyParts>);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct KeyParts {
    scopes: ScopeSet,
    auth_base: Rc<str>,
    client_id: Rc<str>,
}

type Outcome = Result<AccessToken, VccError>;
type Waiter = oneshot::Sender<Outcome>;

/// How many raw scope strings we remember the normalised key of.
const SCOPE_MEMO_LIMIT: usize = 256;

struct State {
    cache: TokenCache<CacheKey, Waiter>,
    timers: LiteMap<CacheKey, Timer>,
    /// Raw `scope` argument -> key, so normalisation runs once per spelling (bounded:
    /// cleared past `SCOPE_MEMO_LIMIT` entries).
    keys: LiteMap<String, CacheKey>,
    /// Tokens the core declared fresh, as a JS `Map` raw scope -> `{ token, until }`
    /// (`until` = the token's refresh-ahead time). The npm entry's `getToken` reads it and
    /// answers a cached call without entering the wasm (js/client.mjs). An entry is
    /// deleted whenever its key's cache entry changes, so it never outlives the core's
    /// own answer.
    published: js_sys::Map,
    closed: bool,
}

impl State {
    /// Drops fast-path tokens of `key` (or all): its cache entry changed.
    fn forget_fresh(&mut self, key: Option<&CacheKey>) {
        match key {
            None => self.published.clear(),
            Some(key) => {
                for (scope, k) in &self.keys {
                    if k == key {
                        self.published.delete(&JsValue::from_str(scope));
                    }
                }
            }
        }
    }
}

struct Inner {
    settings: Settings,
    auth_base: Rc<str>,
    client_id: Rc<str>,
    auto_refresh: bool,
    on_event: Option<Function>,
    state: RefCell<State>,
}

enum Acquired {
    /// The cached token is good (read it from the cache).
    Ready,
    /// Wait for a flight.
    Pending(oneshot::Receiver<Outcome>),
}

/// A client for one set of VCC API credentials: gets, caches and refreshes tokens and
/// makes authenticated calls. See the README for the options.
#[wasm_bindgen]
pub struct VccClient {
    inner: Rc<Inner>,
}

fn closed_error() -> VccError {
    VccError::new(ErrorCode::Closed, "this VccClient was closed")
}

fn get_prop(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn opt_string(obj: &JsValue, name: &'static str) -> Result<Option<String>, VccError> {
    let v = get_prop(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or_else(|| VccError::config(name, "must be a string"))
}

fn opt_number(obj: &JsValue, name: &'static str) -> Result<Option<f64>, VccError> {
    let v = get_prop(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_f64().map(Some).ok_or_else(|| VccError::config(name, "must be a number"))
}

fn read_options(options: &JsValue) -> Result<(RawConfig, Option<Function>), VccError> {
    if !options.is_object() {
        return Err(VccError::config("options", "must be an object"));
    }
    for key in Object::keys(options.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !OPTION_NAMES.contains(&key.as_str()) {
            let mut m = String::from("options has an unknown option: '");
            m.extend(key.chars().take(40));
            m.push('\'');
            return Err(VccError::new(ErrorCode::InvalidConfig, m));
        }
    }
    let auto_refresh = match get_prop(options, "autoRefresh") {
        v if v.is_undefined() || v.is_null() => None,
        v => Some(v.as_bool().ok_or_else(|| VccError::config("autoRefresh", "must be a boolean"))?),
    };
    let on_event = match get_prop(options, "onEvent") {
        v if v.is_undefined() || v.is_null() => None,
        v => Some(v.dyn_into::<Function>().map_err(|_| VccError::config("onEvent", "must be a function"))?),
    };
    let raw = RawConfig {
        region: opt_string(options, "region")?,
        client_id: opt_string(options, "clientId")?,
        client_secret: opt_string(options, "clientSecret")?.map(ClientSecret::new),
        auth_base_url: opt_string(options, "authBaseUrl")?,
        api_base_url: opt_string(options, "apiBaseUrl")?,
        client_auth: opt_string(options, "clientAuth")?,
        timeout_ms: opt_number(options, "timeoutMs")?,
        refresh_ahead_ms: opt_number(options, "refreshAheadMs")?,
        expiry_margin_ms: opt_number(options, "expiryMarginMs")?,
        max_retries: opt_number(options, "maxRetries")?,
        auto_refresh,
    };
    Ok((raw, on_event))
}

#[wasm_bindgen]
impl VccClient {
    /// Creates a client. Throws a `VccError` (`invalid_config`) naming the bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "VccClientOptions")] options: JsValue,
    ) -> Result<VccClient, JsValue> {
        let (raw, on_event) = read_options(&options).map_err(|e| to_js_error(&e))?;
        let settings = raw.validate().map_err(|e| to_js_error(&e.into()))?;
        let auto_refresh = settings.auto_refresh.unwrap_or(!is_workerd());
        let inner = Inner {
            auth_base: Rc::from(settings.auth_base.as_string()),
            client_id: Rc::from(settings.client_id.as_str()),
            auto_refresh,
            on_event,
            state: RefCell::new(State {
                cache: TokenCache::new(settings.margins),
                timers: LiteMap::new(),
                keys: LiteMap::new(),
                published: js_sys::Map::new(),
                closed: false,
            }),
            settings,
        };
        Ok(VccClient { inner: Rc::new(inner) })
    }

    /// Resolves to an access token for `scope` (one or more scopes, space-separated),
    /// from the cache when it is fresh. Concurrent callers share one token request.
    #[wasm_bindgen(js_name = getToken, unchecked_return_type = "Promise<string>")]
    pub fn get_token(&self, scope: &str) -> Promise {
        let now = now_ms();
        let acquired = self.inner.key_for(scope).and_then(|key| Ok((self.inner.acquire(&key)?, key)));
        match acquired {
            Ok((Acquired::Ready, key)) => match self.inner.ready_js(scope, &key, now) {
                Some(js) => Promise::resolve(&js),
                None => Promise::reject(&to_js_error(&closed_error())),
            },
            Ok((Acquired::Pending(rx), _)) => future_to_promise(async move {
                match rx.await {
                    Ok(Ok(token)) => Ok(JsValue::from_str(token.expose())),
                    Ok(Err(e)) => Err(to_js_error(&e)),
                    Err(_) => Err(to_js_error(&closed_error())),
                }
            }),
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
        future_to_promise(async move { inner.api_fetch(input, init.unwrap_or(JsValue::UNDEFINED)).await })
    }

    /// Internal: the map of fresh tokens the npm entry's `getToken` fast path reads.
    #[wasm_bindgen(getter, js_name = "__published", skip_typescript)]
    pub fn published(&self) -> js_sys::Map {
        self.inner.state.borrow().published.clone()
    }

    /// Times and counters for `scope` (never the token), or `undefined` if unused.
    #[wasm_bindgen(js_name = tokenInfo, unchecked_return_type = "VccTokenInfo | undefined")]
    pub fn token_info(&self, scope: &str) -> Result<JsValue, JsValue> {
        let key = self.inner.key_for(scope).map_err(|e| to_js_error(&e))?;
        let Some((_, info)) = self.inner.health().into_iter().find(|(k, _)| *k == key) else {
            return Ok(JsValue::UNDEFINED);
        };
        let o = Obj::new();
        o.set("scope", key.0.scopes.as_str())
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

    /// Drops the cached token for `scope`, or every cached token.
    pub fn invalidate(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string")] scope: Option<String>,
    ) -> Result<(), JsValue> {
        let key = match scope {
            Some(s) => Some(self.inner.key_for(&s).map_err(|e| to_js_error(&e))?),
            None => None,
        };
        let mut state = self.inner.state.borrow_mut();
        state.cache.invalidate(key.as_ref());
        state.forget_fresh(key.as_ref());
        match &key {
            Some(k) => {
                state.timers.remove(k);
            }
            None => state.timers.clear(),
        }
        Ok(())
    }

    /// Stops every refresh timer and drops cached tokens; later calls reject with
    /// `closed`. Requests already in flight finish.
    pub fn close(&self) {
        let mut state = self.inner.state.borrow_mut();
        state.closed = true;
        state.timers.clear();
        state.keys.clear();
        state.published.clear();
        state.cache.invalidate(None);
    }
}

impl Inner {
    /// After `acquire` said `Ready`: the token as a JS string, published for the JS fast
    /// path while it is fresh.
    fn ready_js(&self, scope: &str, key: &CacheKey, now: u64) -> Option<JsValue> {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        let (token, _) = state.cache.current(key)?;
        let js = JsValue::from_str(token.value.expose());
        let until = state.cache.margins().refresh_at(token);
        if now < until && state.keys.contains_key(scope) {
            let entry = Obj::new();
            entry.set("token", js.clone()).set("until", until as f64);
            state.published.set(&JsValue::from_str(scope), &entry.0);
        }
        Some(js)
    }

    fn key_for(&self, scope: &str) -> Result<CacheKey, VccError> {
        if let Some(k) = self.state.borrow().keys.get(scope) {
            return Ok(k.clone());
        }
        let key = CacheKey(Rc::new(KeyParts {
            scopes: ScopeSet::parse(scope)?,
            auth_base: self.auth_base.clone(),
            client_id: self.client_id.clone(),
        }));
        let mut state = self.state.borrow_mut();
        if state.keys.len() >= SCOPE_MEMO_LIMIT {
            state.keys.clear();
            state.published.clear();
        }
        state.keys.insert(scope.to_owned(), key.clone());
        Ok(key)
    }

    /// Runs the cache's plan for `key`: a ready token, or a receiver for a flight.
    fn acquire(self: &Rc<Self>, key: &CacheKey) -> Result<Acquired, VccError> {
        let now = now_ms();
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        if state.closed {
            return Err(closed_error());
        }
        let plan = state.cache.get(key, now);
        let (id, start) = match plan {
            Plan::Use => return Ok(Acquired::Ready),
            Plan::UseAndRefresh(id) => {
                spawn_local(run_flight(self.clone(), key.clone(), id));
                return Ok(Acquired::Ready);
            }
            Plan::Wait(id) => (id, false),
            Plan::Fetch(id) => (id, true),
            Plan::Cooldown(until) => return Err(cooldown_error(until, now)),
        };
        let (tx, rx) = oneshot::channel();
        // Registering on a flight that `get` just reported cannot fail; if it ever did,
        // the dropped sender makes the receiver report `closed` instead of hanging.
        let _ = state.cache.wait(key, id, tx);
        if start {
            spawn_local(run_flight(self.clone(), key.clone(), id));
        }
        Ok(Acquired::Pending(rx))
    }

    async fn token_for(self: &Rc<Self>, key: &CacheKey) -> Result<Lease, VccError> {
        match self.acquire(key)? {
            Acquired::Ready => self
                .state
                .borrow()
                .cache
                .current(key)
                .map(|(t, _)| Lease { token: t.value.clone(), cached: true, via: "isolate" })
                .ok_or_else(closed_error),
            Acquired::Pending(rx) => rx.await.unwrap_or_else(|_| Err(closed_error())).map(|token| Lease {
                token,
                cached: false,
                via: "isolate",
            }),
        }
    }

    fn emit(&self, key: &CacheKey, event: &Event, now: u64) {
        let Some(callback) = &self.on_event else {
            return;
        };
        let o = Obj::new();
        let (kind, error, kept) = match event {
            Event::Fetched => ("fetched", None, false),
            Event::Refreshed => ("refreshed", None, false),
            Event::RefreshFailed(e) => ("failed", Some(e), true),
            Event::Failed(e) => ("failed", Some(e), false),
        };
        o.set("type", kind).set("scope", key.0.scopes.as_str()).set("at", now as f64);
        if let Some(info) = self.state.borrow().cache.info(key) {
            o.set_opt("expiresAt", info.expires_at);
        }
        if let Some(e) = error {
            o.set("code", e.code.as_str()).set("message", e.message.as_ref()).set("keptToken", kept);
        }
        // A throwing listener must not break the client.
        let _ = callback.call1(&JsValue::UNDEFINED, &o.0);
    }

    /// Arms (or re-arms) the proactive refresh timer for `key`.
    fn schedule(self: &Rc<Self>, key: &CacheKey) {
        if !self.auto_refresh {
            return;
        }
        let mut state = self.state.borrow_mut();
        if state.closed {
            return;
        }
        match state.cache.next_wakeup(key) {
            Some(at) => {
                let weak: Weak<Inner> = Rc::downgrade(self);
                let k = key.clone();
                let delay = at.saturating_sub(now_ms());
                let timer = Timer::new(delay, false, move || {
                    // Not inline: this callback's closure is owned by the timer that
                    // `on_timer` replaces, and must not be dropped while it runs.
                    spawn_local(async move { on_timer(weak, k) });
                });
                state.timers.insert(key.clone(), timer);
            }
            None => {
                state.timers.remove(key);
            }
        }
    }

    async fn api_fetch(self: Rc<Self>, input: JsValue, init: JsValue) -> Result<JsValue, JsValue> {
        let err = |e: VccError| to_js_error(&e);
        let input = if let Some(s) = input.as_string() {
            s
        } else if input.is_instance_of::<Request>() {
            return Err(err(VccError::config(
                "input",
                "must be a path or URL string, not a Request (its body could not be replayed on retry)",
            )));
        } else {
            get_prop(&input, "href")
                .as_string()
                .ok_or_else(|| err(VccError::config("input", "must be a path or URL string")))?
        };
        let target = self.settings.api_base.resolve(&input).map_err(|p| err(VccError::config("input", p)))?;
        let url = self.settings.api_base.join(&target.path_and_query());
        let request =
            api_request(&url, &init).map_err(|_| err(VccError::config("init", "is not a valid RequestInit")))?;
        let method = request.method();
        let scope_override = if init.is_object() {
            opt_string(&init, "scope").map_err(|_| err(VccError::config("init.scope", "must be a string")))?
        } else {
            None
        };
        let (scope, accept) = match (scope_override, routes::lookup(&method, &target.path)) {
            (Some(s), RouteMatch::Found(r)) => (s, r.accept),
            (Some(s), _) => (s, DEFAULT_ACCEPT),
            (None, RouteMatch::Found(r)) => (r.scope.to_string(), r.accept),
            (None, _) => {
                let mut m = String::from("init.scope is required: no known VCC route for ");
                m.push_str(&method);
                m.push(' ');
                m.push_str(&target.path);
                return Err(err(VccError::new(ErrorCode::InvalidConfig, m)));
            }
        };
        let key = self.key_for(&scope).map_err(err)?;
        let send = async |token: &AccessToken| send_api(&request, token, accept).await;
        match exchange(&self, &key, &JsValue::UNDEFINED, send).await {
            Ok((response, _, _)) => Ok(response.into()),
            Err(ExchangeError::Token(e)) => Err(err(e)),
            Err(ExchangeError::Send(e)) => Err(e),
        }
    }
}

/// The client's cache as a [`TokenSource`]: flights run in `spawn_local`, nothing
/// needs keeping alive.
impl TokenSource for Rc<Inner> {
    type Key = CacheKey;

    async fn token(&self, key: &CacheKey, _keep_alive: &JsValue) -> Result<Lease, VccError> {
        self.token_for(key).await
    }

    fn reject(&self, key: &CacheKey, token: &AccessToken) {
        let mut state = self.state.borrow_mut();
        if state.cache.invalidate_if(key, token, now_ms()) {
            state.forget_fresh(Some(key));
        }
    }

    fn confirm(&self, key: &CacheKey, token: &AccessToken, _keep_alive: &JsValue) {
        self.state.borrow_mut().cache.confirm(key, token);
    }

    fn health(&self) -> Vec<(CacheKey, Info)> {
        let state = self.state.borrow();
        state.cache.keys().filter_map(|k| Some((k.clone(), state.cache.info(k)?))).collect()
    }
}

/// `token_rejected`: VCC rejected fresh tokens; `retryAfterMs` says when the cooldown ends.
fn cooldown_error(until: u64, now: u64) -> VccError {
    let mut e = VccError::new(
        ErrorCode::TokenRejected,
        "VCC rejected the tokens it just issued; no new token is requested until the cooldown ends",
    );
    e.retry_after_ms = Some(until.saturating_sub(now));
    e
}

/// One attempt (see `sendApi`); the caller's request is copied, never sent itself.
async fn send_api(request: &Request, token: &AccessToken, accept: &str) -> Result<Response, JsValue> {
    let sent = send_api_js(request, &bearer(token), accept)
        .map_err(|_| to_js_error(&VccError::config("init", "has a body that cannot be sent (already used?)")))?;
    await_upstream(Ok(sent), None).await.map_err(|t| match t {
        // The caller's own abort rejects as plain `fetch` does, with the signal's reason
        // (`AbortError`, `TimeoutError` from `AbortSignal.timeout`, or its own value):
        // the reason, not the runtime's error, which may carry detail.
        Transport::Network(_) if request.signal().aborted() => request.signal().reason(),
        Transport::Network(e) => transport_error(&e),
        Transport::Timeout => to_js_error(&VccError::new(ErrorCode::Timeout, "the VCC API did not answer in time")),
        Transport::Redirect(status) => {
            let mut e = VccError::new(
                ErrorCode::Redirect,
                "the VCC API answered with a redirect; vcc-auth does not follow it, so the token goes nowhere else",
            );
            e.status = Some(status).filter(|s| *s != 0);
            to_js_error(&e)
        }
    })
}

/// A caller's abort stays an `AbortError` (as with plain `fetch`); anything else is a
/// `VccError` with code `network` and no detail from the runtime (which may quote URLs).
fn transport_error(e: &JsValue) -> JsValue {
    if get_prop(e, "name").as_string().as_deref() == Some("AbortError") {
        return e.clone();
    }
    to_js_error(&VccError::new(ErrorCode::Network, "could not reach the VCC API (network, DNS, TLS or CORS failure)"))
}

async fn run_flight(inner: Rc<Inner>, key: CacheKey, id: FlightId) {
    let result = request_token(&inner.settings, &key.0.scopes).await;
    let now = now_ms();
    let finished = {
        let mut state = inner.state.borrow_mut();
        let f = state.cache.finish(&key, id, result, now);
        state.forget_fresh(Some(&key));
        if state.closed {
            state.cache.invalidate(None);
        }
        f
    };
    for waiter in finished.waiters {
        let _ = waiter.send(finished.outcome.clone());
    }
    inner.emit(&key, &finished.event, now);
    inner.schedule(&key);
}

fn on_timer(weak: Weak<Inner>, key: CacheKey) {
    let Some(inner) = weak.upgrade() else { return };
    let now = now_ms();
    let plan = {
        let mut state = inner.state.borrow_mut();
        if state.closed {
            return;
        }
        state.cache.get(&key, now)
    };
    match plan {
        // Fired a little early: arm again for the real start of the window.
        Plan::Use => inner.schedule(&key),
        Plan::UseAndRefresh(id) | Plan::Fetch(id) => spawn_local(run_flight(inner.clone(), key, id)),
        Plan::Wait(_) | Plan::Cooldown(_) => {}
    }
}
