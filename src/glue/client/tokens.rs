//! The client's tokens: the core's `TokenCache`, run by the driver (`glue/driver.rs`),
//! with the fresh tokens published to the JS fast path (`js/client.mjs`), and the
//! proactive refresh timers.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use js_sys::Function;
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::store::Store;
use crate::core::cache::{Event, Info, Rejected, TokenCache};
use crate::core::config::Settings;
use crate::core::error::{ErrorCode, VccError};
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::token::Token;
use crate::glue::driver::{self, Flights, Got, Host, Outcome};
use crate::glue::http::request_token;
use crate::glue::js::{now_ms, to_js_error, KeepAlive, Obj, Timer};
use crate::glue::tokens::{Lease, TokenSource, Via};

/// Cache key: auth base URL + client id + normalised scope set, so two clients (or a
/// shared store) never mix tokens of different credentials. One `Rc`: cheap to clone
/// on the hot path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CacheKey(Rc<KeyParts>);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct KeyParts {
    scopes: ScopeSet,
    auth_base: Rc<str>,
    client_id: Rc<str>,
}

impl CacheKey {
    /// The normalised scope set.
    pub(super) fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// The token endpoint's base URL.
    pub(super) fn auth_base(&self) -> &str {
        &self.0.auth_base
    }

    /// The client id.
    pub(super) fn client_id(&self) -> &str {
        &self.0.client_id
    }
}

type Waiter = oneshot::Sender<Outcome>;

/// How many raw scope strings we remember the normalised key of.
const SCOPE_MEMO_LIMIT: usize = 256;

/// The cache and what it has published to the JS fast path, together: the cache is
/// reached only through [`Published::change`], which withdraws a key's published token
/// whenever the key's token changes (a new one, none, or another), so no call site has
/// to remember to.
pub(super) struct Published {
    cache: TokenCache<CacheKey, Waiter>,
    /// Raw `scope` argument -> key, so normalisation runs once per spelling (bounded:
    /// cleared past [`SCOPE_MEMO_LIMIT`] entries).
    keys: LiteMap<String, CacheKey>,
    /// Tokens the core declared fresh, as a JS `Map` raw scope -> `{ token, until }`
    /// (`until` = the token's refresh-ahead time). The npm entry's `getToken` reads it
    /// and answers a cached call without entering the wasm (js/client.mjs).
    map: js_sys::Map,
    /// The spellings of each key that `map` holds.
    spellings: LiteMap<CacheKey, Vec<String>>,
}

impl Published {
    fn new(cache: TokenCache<CacheKey, Waiter>) -> Self {
        Self { cache, keys: LiteMap::new(), map: js_sys::Map::new(), spellings: LiteMap::new() }
    }

    /// Runs `f` on the cache for a step concerning `key`; if `key`'s token changed, its
    /// published copies are withdrawn.
    pub(super) fn change<R>(&mut self, key: &CacheKey, f: impl FnOnce(&mut TokenCache<CacheKey, Waiter>) -> R) -> R {
        // Generic only in `f`: the check around it is one function, not one per caller.
        let before = self.serial(key);
        let out = f(&mut self.cache);
        self.withdraw_if_changed(key, before);
        out
    }

    fn serial(&self, key: &CacheKey) -> Option<u64> {
        self.cache.current(key).map(|(_, serial)| serial)
    }

    fn withdraw_if_changed(&mut self, key: &CacheKey, before: Option<u64>) {
        if self.serial(key) != before {
            if let Some(spellings) = self.spellings.remove(key) {
                for s in spellings {
                    self.map.delete(&JsValue::from_str(&s));
                }
            }
        }
    }

    /// Runs `f` on the cache for a step concerning every key; everything published is
    /// withdrawn.
    pub(super) fn change_all(&mut self, f: impl FnOnce(&mut TokenCache<CacheKey, Waiter>)) {
        f(&mut self.cache);
        self.map.clear();
        self.spellings.clear();
    }

    /// The cache, to read.
    pub(super) fn cache(&self) -> &TokenCache<CacheKey, Waiter> {
        &self.cache
    }

    /// The JS map the fast path reads.
    pub(super) fn map(&self) -> js_sys::Map {
        self.map.clone()
    }

    /// `key`'s cached token as a JS string, published under `scope` (as the caller
    /// spelled it) while it is fresh.
    pub(super) fn publish(&mut self, scope: &str, key: &CacheKey, now: u64) -> Option<JsValue> {
        let (token, _) = self.cache.current(key)?;
        let js = JsValue::from_str(token.value.expose());
        let until = self.cache.margins().refresh_at(token);
        if now < until && self.keys.contains_key(scope) {
            let entry = Obj::new();
            entry.set("token", js.clone()).set("until", until as f64);
            self.map.set(&JsValue::from_str(scope), &entry.0);
            let spellings = self.spellings.entry(key.clone()).or_default();
            if !spellings.iter().any(|s| s == scope) {
                spellings.push(scope.to_owned());
            }
        }
        Some(js)
    }

    /// Forgets every spelling (and so everything published).
    fn forget_spellings(&mut self) {
        self.keys.clear();
        self.map.clear();
        self.spellings.clear();
    }
}

/// What a `VccClient` holds.
pub(super) struct Inner {
    pub(super) settings: Settings,
    auth_base: Rc<str>,
    client_id: Rc<str>,
    auto_refresh: bool,
    on_event: Option<Function>,
    /// The fleet's shared store, if the `store` option gave one.
    pub(super) store: Option<Rc<Store>>,
    pub(super) state: RefCell<State>,
}

pub(super) struct State {
    pub(super) tokens: Published,
    pub(super) timers: LiteMap<CacheKey, Timer>,
    pub(super) closed: bool,
}

pub(super) fn closed_error() -> VccError {
    VccError::new(ErrorCode::Closed, "this VccClient was closed")
}

impl Inner {
    pub(super) fn new(
        settings: Settings,
        auto_refresh: bool,
        on_event: Option<Function>,
        store: Option<super::store::TokenStore>,
    ) -> Self {
        Inner {
            auth_base: Rc::from(settings.auth_base.as_string()),
            client_id: Rc::from(settings.client_id.as_str()),
            auto_refresh,
            on_event,
            store: store.map(|js| Rc::new(Store::new(js, &settings.client_secret, &settings))),
            state: RefCell::new(State {
                tokens: Published::new(TokenCache::new(settings.margins)),
                timers: LiteMap::new(),
                closed: false,
            }),
            settings,
        }
    }

    /// The key of a `scope` argument, normalised once per spelling.
    pub(super) fn key_for(&self, scope: &str) -> Result<CacheKey, VccError> {
        if let Some(k) = self.state.borrow().tokens.keys.get(scope) {
            return Ok(k.clone());
        }
        let key = CacheKey(Rc::new(KeyParts {
            scopes: ScopeSet::parse(scope)?,
            auth_base: self.auth_base.clone(),
            client_id: self.client_id.clone(),
        }));
        let tokens = &mut self.state.borrow_mut().tokens;
        if tokens.keys.len() >= SCOPE_MEMO_LIMIT {
            tokens.forget_spellings();
        }
        tokens.keys.insert(scope.to_owned(), key.clone());
        Ok(key)
    }

    /// Tells `onEvent` that the store failed (`why`: never a value from it), and that
    /// this process fetches its own tokens for a while.
    fn emit_store_failure(&self, key: &CacheKey, why: &str, now: u64) {
        let Some(callback) = &self.on_event else { return };
        let o = Obj::new();
        let mut message = String::from(why);
        message.push_str("; this process fetches its own tokens for a few seconds");
        o.set("type", "store_unavailable").set("scope", key.scopes().as_str()).set("at", now as f64);
        o.set("message", message.as_str());
        let _ = callback.call1(&JsValue::UNDEFINED, &o.0);
    }

    fn emit(&self, key: &CacheKey, event: &Event, now: u64) {
        let Some(callback) = &self.on_event else {
            return;
        };
        let o = Obj::new();
        let (kind, error, kept) = match event {
            // The token did not change: nothing to tell.
            Event::Unchanged => return,
            Event::Fetched => ("fetched", None, false),
            Event::Refreshed => ("refreshed", None, false),
            Event::RefreshFailed(e) => ("failed", Some(e), true),
            Event::Failed(e) => ("failed", Some(e), false),
        };
        o.set("type", kind).set("scope", key.scopes().as_str()).set("at", now as f64);
        if let Some(info) = self.state.borrow().tokens.cache().info(key) {
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
        match state.tokens.cache().next_wakeup(key) {
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
}

/// The client's runtime: flights run on the microtask queue, nothing needs keeping
/// alive, and a waiter trusts its flight (each token request has its own deadline).
pub(super) struct ClientHost;

impl Host for ClientHost {
    type Waiter = Waiter;

    fn waiter() -> (Waiter, impl std::future::Future<Output = Option<Outcome>> + 'static) {
        let (tx, rx) = oneshot::channel();
        (tx, async move { rx.await.ok() })
    }

    /// Without an outcome the sender is dropped, which ends the wait with `None`.
    fn wake(waiter: Waiter, outcome: Option<&Outcome>) {
        if let Some(outcome) = outcome {
            let _ = waiter.send(outcome.clone());
        }
    }

    fn spawn(&self, flight: impl std::future::Future<Output = ()> + 'static) {
        spawn_local(flight);
    }

    fn patience_ms(&self) -> Option<u64> {
        None
    }
}

impl Flights for Inner {
    type Key = CacheKey;
    type Host = ClientHost;

    fn with<R>(&self, key: &CacheKey, f: impl FnOnce(&mut TokenCache<CacheKey, Waiter>) -> R) -> R {
        self.state.borrow_mut().tokens.change(key, f)
    }

    async fn fetch(&self, key: &CacheKey) -> Result<Token, VccError> {
        let Some(store) = &self.store else {
            return request_token(&self.settings, key.scopes()).await;
        };
        let result = store.fetch(key, &self.settings).await;
        if let Some(why) = store.take_failure() {
            self.emit_store_failure(key, why, now_ms());
        }
        result
    }

    fn landed(self: &Rc<Self>, key: &CacheKey, event: &Event, now: u64) {
        {
            let mut state = self.state.borrow_mut();
            if state.closed {
                state.tokens.change_all(|c| c.invalidate(None));
            }
            if let Some(store) = &self.store {
                let c = &mut state.tokens;
                let current = c.cache().current(key).map(|(t, _)| t.value.clone());
                if current.is_some_and(|t| store.vouches(key, &t)) {
                    // The store's token, off probation: a rejection of it is a
                    // revocation, never a storm of this process's own.
                    c.change(key, |c| c.vouch(key));
                }
                if *event == Event::Unchanged {
                    // Another process is refreshing it: look again in a moment, not on
                    // every call.
                    c.change(key, |c| c.hold_refresh(key, now + crate::core::store::REFRESH_HOLD_MS));
                }
            }
        }
        self.emit(key, event, now);
        self.schedule(key);
    }
}

/// The client's cache as a [`TokenSource`].
impl TokenSource for Rc<Inner> {
    type Key = CacheKey;

    async fn token(&self, key: &CacheKey, caller: &str, _keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        if self.state.borrow().closed {
            return Err(closed_error());
        }
        let (token, got) = driver::token(self, key, caller, &ClientHost).await?;
        // A token the store had is a fleet's cached token: after a second rejection the
        // call may try once more (`exchange`), as with the gateway's broker.
        let cached = got == Got::Cached || self.store.as_ref().is_some_and(|s| s.cached(key, &token));
        Ok(Lease { token, cached, via: Via::Local })
    }

    fn reject(&self, key: &CacheKey, caller: &str, token: &AccessToken, sent_at: u64) -> Rejected {
        let now = now_ms();
        let rejected = self.with(key, |c| c.invalidate_if(key, caller, token, sent_at, now));
        if let (Some(store), Rejected::Dropped) = (&self.store, rejected) {
            store.reject(key, token);
        }
        rejected
    }

    fn confirm(&self, key: &CacheKey, caller: &str, token: &AccessToken, sent_at: u64, _keep_alive: &KeepAlive) {
        self.with(key, |c| c.confirm(key, caller, token, sent_at));
        if let Some(store) = &self.store {
            store.confirm(key, token);
        }
    }

    fn health(&self) -> Vec<(CacheKey, Info)> {
        let state = self.state.borrow();
        let cache = state.tokens.cache();
        cache.keys().filter_map(|k| Some((k.clone(), cache.info(k)?))).collect()
    }
}

/// A refresh timer fired: the driver starts the refresh if it is due. Nothing awaits
/// it here (the flight's end re-arms the timer); one that fired early is re-armed.
fn on_timer(weak: Weak<Inner>, key: CacheKey) {
    let Some(inner) = weak.upgrade() else { return };
    if inner.state.borrow().closed {
        return;
    }
    if driver::refresh_due(&inner, &key, &ClientHost).is_none() {
        inner.schedule(&key);
    }
}

/// A flight's outcome as `getToken` resolves: the token string, or a `VccError`.
pub(super) fn settle(outcome: Outcome) -> Result<JsValue, JsValue> {
    outcome.map(|t| JsValue::from_str(t.expose())).map_err(|e| to_js_error(&e))
}
