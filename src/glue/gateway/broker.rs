//! The isolate's side of the fleet's token broker: [`BrokerTokens`], a [`TokenSource`]
//! that keeps the broker's answers until their refresh time (L1), asks the broker on a
//! miss, and falls back to a source of its own while the broker fails (a small circuit
//! breaker; callers see no failure). The object's side is `object.rs`; the policy is
//! the core's (`core::gateway::broker`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Promise;
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::bindings::{BrokerStub, DurableObjectNamespace};
use super::messages::{from_js, to_js};
use crate::core::cache::Info;
use crate::core::error::{ErrorCode, VccError};
use crate::core::gateway::broker::{
    l1_until, location_hint, object_name, Breaker, BrokerAnswer, BrokerAsk, BrokerConfirm, BROKER_TIMEOUT_MS,
};
use crate::core::gateway::GatewayConfig;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::glue::js::{console_error, now_ms, prop, KeepAlive, Obj, Timer};
use crate::glue::tokens::{Lease, TokenSource, Via};

/// What an isolate keeps of a broker answer.
struct L1 {
    token: AccessToken,
    generation: u64,
    until: u64,
    probation: bool,
}

/// The isolate's side: L1 copies of the broker's answers, the broker on a miss, the
/// `fallback` source while the broker fails.
pub struct BrokerTokens<F> {
    namespace: DurableObjectNamespace,
    config: Rc<GatewayConfig>,
    fallback: F,
    l1: RefCell<LiteMap<ScopeSet, L1>>,
    /// A generation to report as rejected on the next broker call for the scope.
    rejected: RefCell<LiteMap<ScopeSet, u64>>,
    /// What the broker said of each scope (times, last error), for `/healthz`.
    seen: RefCell<LiteMap<ScopeSet, Info>>,
    breaker: Cell<Breaker>,
    last_error: Cell<Option<&'static str>>,
    /// A do-nothing rejection handler, made once.
    ignore: Closure<dyn FnMut(JsValue)>,
}

/// Why a broker call failed (never retried: the isolate falls back).
enum BrokerFailure {
    Timeout,
    Overloaded,
    Unavailable,
}

impl<F: TokenSource<Key = ScopeSet>> BrokerTokens<F> {
    /// The broker behind `namespace`, with `fallback` for when it fails.
    pub fn new(namespace: DurableObjectNamespace, config: Rc<GatewayConfig>, fallback: F) -> Self {
        BrokerTokens {
            namespace,
            config,
            fallback,
            l1: RefCell::default(),
            rejected: RefCell::default(),
            seen: RefCell::default(),
            breaker: Cell::default(),
            last_error: Cell::new(None),
            ignore: Closure::new(|_: JsValue| {}),
        }
    }

    /// The code of the broker's last failure, until it next answers.
    pub fn last_error(&self) -> Option<&'static str> {
        self.last_error.get()
    }

    fn stub(&self, scope: &ScopeSet) -> Result<BrokerStub, JsValue> {
        let s = &self.config.settings;
        let name = object_name(&s.auth_base.as_string(), &s.client_id, scope);
        let id = self.namespace.id_from_name(&name)?;
        let options = Obj::new();
        if let Some(hint) = location_hint(self.config.region) {
            options.set("locationHint", hint);
        }
        self.namespace.stub(&id, &options.0)
    }

    /// One broker call within [`BROKER_TIMEOUT_MS`].
    async fn ask(&self, scope: &ScopeSet, rejected: Option<u64>) -> Result<BrokerAnswer, BrokerFailure> {
        let stub = self.stub(scope).map_err(|_| BrokerFailure::Unavailable)?;
        let ask = BrokerAsk { scope: scope.as_str().to_owned(), rejected };
        // An RPC call's result is a thenable: made a promise, so it can race the timer.
        let answer = Promise::resolve(&stub.token(&to_js(&ask)).map_err(|_| BrokerFailure::Unavailable)?);
        let mut resolve: Option<js_sys::Function> = None;
        let timeout = Promise::new(&mut |res, _| resolve = Some(res));
        let _timer = resolve.map(|r| {
            Timer::new(BROKER_TIMEOUT_MS, true, move || {
                let _ = r.call1(&JsValue::UNDEFINED, &"timeout".into());
            })
        });
        match JsFuture::from(Promise::race(&js_sys::Array::of2(&answer, &timeout))).await {
            Ok(v) if v.as_string().as_deref() == Some("timeout") => Err(BrokerFailure::Timeout),
            Ok(v) => from_js::<BrokerAnswer>(v).ok_or(BrokerFailure::Unavailable),
            // workerd marks an overloaded object's errors `overloaded`: never retried.
            Err(e) if prop(&e, "overloaded").as_bool() == Some(true) => Err(BrokerFailure::Overloaded),
            Err(_) => Err(BrokerFailure::Unavailable),
        }
    }

    async fn lease(&self, scope: &ScopeSet, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        let now = now_ms();
        if let Some(l) = self.l1.borrow().get(scope).filter(|l| now < l.until) {
            return Ok(Lease { token: l.token.clone(), cached: true, via: Via::L1 });
        }
        let mut breaker = self.breaker.get();
        if breaker.allows(now) {
            let rejected = self.rejected.borrow().get(scope).copied();
            match self.ask(scope, rejected).await {
                Ok(answer) => {
                    breaker.succeeded();
                    self.breaker.set(breaker);
                    self.last_error.set(None);
                    self.rejected.borrow_mut().remove(scope);
                    return self.keep(scope, answer, now);
                }
                Err(f) => {
                    breaker.failed(now);
                    self.breaker.set(breaker);
                    self.last_error.set(Some(match f {
                        BrokerFailure::Timeout => "broker_timeout",
                        BrokerFailure::Overloaded => "broker_overloaded",
                        BrokerFailure::Unavailable => "broker_unavailable",
                    }));
                    console_error(
                        "{\"error\":\"broker_failed\",\"message\":\"the token broker failed; this isolate fetches tokens itself for a while\"}",
                    );
                }
            }
        }
        let mut lease = self.fallback.token(scope, keep_alive).await?;
        lease.via = Via::Fallback;
        Ok(lease)
    }

    /// Keeps a broker answer (L1, and what `/healthz` says), or turns a refusal into
    /// the caller's error.
    fn keep(&self, scope: &ScopeSet, answer: BrokerAnswer, now: u64) -> Result<Lease, VccError> {
        let mut seen = self.seen.borrow_mut();
        let info = seen.entry(scope.clone()).or_default();
        let t = match answer {
            BrokerAnswer::Refused(r) => {
                let mut e = VccError::new(
                    ErrorCode::parse(&r.error).unwrap_or(ErrorCode::TokenEndpoint),
                    "the token broker could not get a token",
                );
                e.retry_after_ms = r.retry_after_ms;
                info.failures += 1;
                info.last_error = Some(e.clone());
                return Err(e);
            }
            BrokerAnswer::Token(t) => t,
        };
        let until = l1_until(t.refresh_at, t.use_until, now);
        let l1 = L1 { token: t.token.clone(), generation: t.generation, until, probation: t.probation };
        self.l1.borrow_mut().insert(scope.clone(), l1);
        info.obtained_at = t.obtained_at;
        info.expires_at = t.expires_at;
        info.refresh_at = Some(t.refresh_at);
        info.last_error = None;
        // The broker's counters: the fleet's fetches of this scope set.
        info.fetches = t.fetches;
        info.refreshes = t.refreshes;
        info.failures = t.failures;
        Ok(Lease { token: t.token, cached: t.cached, via: Via::Broker })
    }

    /// Tells the broker that a generation on probation works (once per isolate).
    fn confirm_to_broker(&self, scope: &ScopeSet, generation: u64, keep_alive: &KeepAlive) {
        let Ok(stub) = self.stub(scope) else { return };
        let confirm = BrokerConfirm { scope: scope.as_str().to_owned(), generation };
        if let Ok(p) = stub.confirm(&to_js(&confirm)) {
            keep_alive.keep(&Promise::resolve(&p).catch(&self.ignore));
        }
    }
}

impl<F: TokenSource<Key = ScopeSet>> TokenSource for Rc<BrokerTokens<F>> {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        self.lease(scope, keep_alive).await
    }

    fn reject(&self, scope: &ScopeSet, token: &AccessToken) {
        let mut l1 = self.l1.borrow_mut();
        if let Some(l) = l1.get(scope).filter(|l| &l.token == token) {
            self.rejected.borrow_mut().insert(scope.clone(), l.generation);
            l1.remove(scope);
        }
        drop(l1);
        self.fallback.reject(scope, token);
    }

    /// A token on probation (it replaced a rejected one) is confirmed to the broker
    /// once by this isolate, when it works.
    fn confirm(&self, scope: &ScopeSet, token: &AccessToken, keep_alive: &KeepAlive) {
        let mut l1 = self.l1.borrow_mut();
        if let Some(l) = l1.get_mut(scope).filter(|l| &l.token == token && l.probation) {
            l.probation = false;
            let generation = l.generation;
            drop(l1);
            self.confirm_to_broker(scope, generation, keep_alive);
            return;
        }
        drop(l1);
        self.fallback.confirm(scope, token, keep_alive);
    }

    /// What the broker last said of each scope; the fallback's own for scopes it has
    /// only fetched itself (while the broker failed).
    fn health(&self) -> Vec<(ScopeSet, Info)> {
        let seen = self.seen.borrow();
        let mut out: Vec<_> = seen.iter().map(|(s, i)| (s.clone(), i.clone())).collect();
        out.extend(self.fallback.health().into_iter().filter(|(s, _)| !seen.contains_key(s)));
        out
    }
}
