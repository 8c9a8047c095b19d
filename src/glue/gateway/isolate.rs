//! The isolate's own token cache, as a [`TokenSource`] keyed by scope set, run by the
//! one driver (`glue/driver.rs`) on workerd's terms. The broker object runs one too,
//! for its scope set.
//!
//! workerd rules that shape the host:
//! - Work a request started is cancelled when it ends unless kept alive: the request
//!   that starts a token fetch hands it to its `ctx.waitUntil`.
//! - Code must run in the I/O context of the request it serves. A Rust waker (oneshot)
//!   fired by request A's token fetch would make wasm-bindgen-futures poll request B's
//!   task inside A's context, and B's stream I/O then fails ("Cannot perform I/O on
//!   behalf of a different request") or hangs. So requests never share a Rust future:
//!   a waiter creates a JS Promise in its own context and registers its `resolve` in
//!   the cache; the flight stores the outcome and calls it, and workerd resumes the
//!   waiter in its own context.
//! - Waiters give up after [`JOIN_TIMEOUT_MS`] (the request that started the flight may
//!   be gone), which wakes all the flight's waiters to plan again: one of them starts a
//!   new fetch, the rest wait on that.

use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::core::cache::{Info, Rejected, TokenCache};
use crate::core::error::VccError;
use crate::core::gateway::GatewayConfig;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::token::Token;
use crate::glue::driver::{self, Flights, Got, Host, Outcome};
use crate::glue::http::request_token;
use crate::glue::js::{now_ms, KeepAlive};
use crate::glue::tokens::{Lease, TokenSource, Via};

/// How long a request waits on a token fetch another request started before it
/// abandons it and starts its own (the token request itself times out after 10 s).
const JOIN_TIMEOUT_MS: u64 = 12_000;

/// A waiter in workerd: the `resolve` of a promise its request made, and where the
/// flight leaves the outcome.
pub struct JsWaiter {
    resolve: Option<Function>,
    slot: Rc<OnceCell<Outcome>>,
}

/// workerd as the driver's host, for one request (its `waitUntil`).
pub struct IsolateHost(pub KeepAlive);

impl Host for IsolateHost {
    type Waiter = JsWaiter;

    fn waiter() -> (JsWaiter, impl Future<Output = Option<Outcome>> + 'static) {
        let slot = Rc::new(OnceCell::new());
        let mut resolve = None;
        let made = Promise::new(&mut |res, _| resolve = Some(res));
        // The executor runs at once, so `resolve` is there; were it not, the wait ends
        // at once with nothing (the caller plans again) instead of never.
        let promise = if resolve.is_some() { made } else { Promise::resolve(&JsValue::UNDEFINED) };
        let outcome = slot.clone();
        let wait = async move {
            let _ = JsFuture::from(promise).await;
            outcome.get().cloned()
        };
        (JsWaiter { resolve, slot }, wait)
    }

    fn wake(waiter: JsWaiter, outcome: Option<&Outcome>) {
        if let Some(o) = outcome {
            let _ = waiter.slot.set(o.clone());
        }
        if let Some(resolve) = waiter.resolve {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    fn spawn(&self, flight: impl Future<Output = ()> + 'static) {
        let promise = future_to_promise(async move {
            flight.await;
            Ok(JsValue::UNDEFINED)
        });
        self.0.keep(&promise);
    }

    fn patience_ms(&self) -> Option<u64> {
        Some(JOIN_TIMEOUT_MS)
    }
}

/// The isolate's cache (or the broker object's).
pub struct IsolateTokens {
    config: Rc<GatewayConfig>,
    cache: RefCell<TokenCache<ScopeSet, JsWaiter>>,
}

impl IsolateTokens {
    /// An empty cache for the gateway's settings.
    pub fn new(config: Rc<GatewayConfig>) -> Rc<Self> {
        let cache = RefCell::new(TokenCache::new(config.settings.margins));
        Rc::new(IsolateTokens { config, cache })
    }

    /// Runs `f` on the cache (the broker object's generations and storage).
    pub fn with_cache<R>(&self, f: impl FnOnce(&mut TokenCache<ScopeSet, JsWaiter>) -> R) -> R {
        f(&mut self.cache.borrow_mut())
    }

    /// Refreshes `scope`'s token now if it is due (refresh-ahead or later) and waits for
    /// it: the broker's alarm. A fresh token or a cooldown leave nothing to do, so the
    /// alarm may run twice.
    pub async fn refresh(self: &Rc<Self>, scope: &ScopeSet, keep_alive: &KeepAlive) {
        if let Some(wait) = driver::refresh_due(self, scope, &IsolateHost(keep_alive.clone())) {
            let _ = wait.await;
        }
    }
}

impl Flights for IsolateTokens {
    type Key = ScopeSet;
    type Host = IsolateHost;

    fn with<R>(&self, _scope: &ScopeSet, f: impl FnOnce(&mut TokenCache<ScopeSet, JsWaiter>) -> R) -> R {
        f(&mut self.cache.borrow_mut())
    }

    async fn fetch(&self, scope: &ScopeSet) -> Result<Token, VccError> {
        request_token(&self.config.settings, scope).await
    }
}

impl TokenSource for Rc<IsolateTokens> {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, caller: &str, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        let (token, got) = driver::token(self, scope, caller, &IsolateHost(keep_alive.clone())).await?;
        Ok(Lease { token, cached: got == Got::Cached, via: Via::Local })
    }

    fn reject(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64) -> Rejected {
        self.cache.borrow_mut().invalidate_if(scope, caller, token, sent_at, now_ms())
    }

    fn confirm(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64, _keep_alive: &KeepAlive) {
        self.cache.borrow_mut().confirm(scope, caller, token, sent_at);
    }

    fn health(&self) -> Vec<(ScopeSet, Info)> {
        let cache = self.cache.borrow();
        cache.keys().filter_map(|k| Some((k.clone(), cache.info(k)?))).collect()
    }
}
