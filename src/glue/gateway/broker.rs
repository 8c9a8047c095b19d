//! The isolate's side of the fleet's token broker: [`BrokerTokens`], a [`TokenSource`].
//!
//! - L1: the broker's answers are kept by the isolate until their refresh time, in a
//!   token cache of their own, run by the one driver: concurrent misses of a scope set
//!   share one broker call (the request that asks keeps it alive; the others wait on
//!   it, and their log lines say `broker_wait`). Its brakes are this isolate's view of
//!   each caller: a caller whose 401s cooled it down is refused here, with no broker
//!   call.
//! - A rejection is reported to the broker with the next call for its scope set (the
//!   generation, the caller, when the call was sent), so a revocation seen by the whole
//!   fleet costs one token request.
//! - While the broker fails (error, overload, timeout), the isolate gets tokens from its
//!   `fallback` source behind a small circuit breaker; callers see no failure.
//!
//! The object's side is `object.rs`; the policy is the core's (`core::gateway::broker`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Promise;
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::bindings::{BrokerStub, DurableObjectNamespace};
use super::isolate::{IsolateHost, JsWaiter};
use super::messages::{from_js, to_js};
use crate::core::cache::{Info, Rejected, TokenCache};
use crate::core::error::{ErrorCode, VccError};
use crate::core::gateway::broker::{
    l1_until, location_hint, object_name, Breaker, BrokerAnswer, BrokerAsk, BrokerConfirm, BrokerRejection,
    BROKER_TIMEOUT_MS, MAX_REPORTED_REJECTIONS,
};
use crate::core::gateway::GatewayConfig;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::token::{Margins, Token};
use crate::glue::driver::{self, Flights, Got};
use crate::glue::js::{console_error, now_ms, prop, KeepAlive, Obj, Timer};
use crate::glue::tokens::{Lease, TokenSource, Via};

/// What the isolate knows of its L1 token for a scope set, beyond the token.
struct Meta {
    token: AccessToken,
    /// The broker's generation of it.
    generation: u64,
    /// Whether the broker had it cached.
    cached: bool,
    /// It replaced a rejected token: say to the broker when it works (once).
    probation: bool,
}

/// The isolate's side: L1, the broker on a miss, `fallback` while the broker fails.
pub struct BrokerTokens<F> {
    namespace: DurableObjectNamespace,
    config: Rc<GatewayConfig>,
    fallback: F,
    /// The broker's answers, each until its L1 time (no margins: fresh until then).
    l1: RefCell<TokenCache<ScopeSet, JsWaiter>>,
    meta: RefCell<LiteMap<ScopeSet, Meta>>,
    /// Rejections to report on the next broker call for the scope set.
    rejected: RefCell<LiteMap<ScopeSet, Vec<BrokerRejection>>>,
    /// What the broker said of each scope set (times, counters, last error), for `/healthz`.
    seen: RefCell<LiteMap<ScopeSet, Info>>,
    /// Until when the broker said a scope set cools down: asked again only after.
    cooling: RefCell<LiteMap<ScopeSet, u64>>,
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

impl<F: TokenSource<Key = ScopeSet> + 'static> BrokerTokens<F> {
    /// The broker behind `namespace`, with `fallback` for when it fails.
    pub fn new(namespace: DurableObjectNamespace, config: Rc<GatewayConfig>, fallback: F) -> Self {
        BrokerTokens {
            namespace,
            config,
            fallback,
            l1: RefCell::new(TokenCache::new(Margins { soft_cap_ms: 0, hard_cap_ms: 0 })),
            meta: RefCell::default(),
            rejected: RefCell::default(),
            seen: RefCell::default(),
            cooling: RefCell::default(),
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
    async fn ask(&self, ask: &BrokerAsk) -> Result<BrokerAnswer, BrokerFailure> {
        let scope = ScopeSet::parse(&ask.scope).map_err(|_| BrokerFailure::Unavailable)?;
        let stub = self.stub(&scope).map_err(|_| BrokerFailure::Unavailable)?;
        // An RPC call's result is a thenable: made a promise, so it can race the timer.
        let answer = Promise::resolve(&stub.token(&to_js(ask)).map_err(|_| BrokerFailure::Unavailable)?);
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

    /// Keeps a broker answer (L1 meta, what `/healthz` says), as the L1 flight's result.
    fn keep(&self, scope: &ScopeSet, answer: BrokerAnswer, now: u64) -> Result<Token, VccError> {
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
                if e.code == ErrorCode::TokenRejected {
                    // The broker dropped its token and cools down: say so, and do not
                    // ask again before it ends.
                    let until = now.saturating_add(e.retry_after_ms.unwrap_or(0));
                    (info.obtained_at, info.expires_at, info.refresh_at) = (None, None, None);
                    info.cooldown_until = Some(until);
                    self.cooling.borrow_mut().insert(scope.clone(), until);
                }
                return Err(e);
            }
            BrokerAnswer::Token(t) => t,
        };
        let until = l1_until(t.refresh_at, t.use_until, now);
        let meta = Meta { token: t.token.clone(), generation: t.generation, cached: t.cached, probation: t.probation };
        self.meta.borrow_mut().insert(scope.clone(), meta);
        info.obtained_at = t.obtained_at;
        info.expires_at = t.expires_at;
        info.refresh_at = Some(t.refresh_at);
        info.cooldown_until = t.cooldown_until;
        info.last_error = None;
        // The broker's counters: the fleet's fetches of this scope set.
        info.fetches = t.fetches;
        info.refreshes = t.refreshes;
        info.failures = t.failures;
        Ok(Token { value: t.token, obtained_at: now, expires_at: until.max(now + 1) })
    }

    /// Tells the broker that a generation on probation works (once per isolate).
    fn confirm_to_broker(&self, confirm: BrokerConfirm, keep_alive: &KeepAlive) {
        let Ok(scope) = ScopeSet::parse(&confirm.scope) else { return };
        let Ok(stub) = self.stub(&scope) else { return };
        if let Ok(p) = stub.confirm(&to_js(&confirm)) {
            keep_alive.keep(&Promise::resolve(&p).catch(&self.ignore));
        }
    }

    async fn fall_back(&self, scope: &ScopeSet, caller: &str, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        let mut lease = self.fallback.token(scope, caller, keep_alive).await?;
        lease.via = Via::Fallback;
        Ok(lease)
    }
}

/// L1 as a cache the driver runs: a flight is one broker call.
impl<F: TokenSource<Key = ScopeSet> + 'static> Flights for BrokerTokens<F> {
    type Key = ScopeSet;
    type Host = IsolateHost;

    fn with<R>(&self, _scope: &ScopeSet, f: impl FnOnce(&mut TokenCache<ScopeSet, JsWaiter>) -> R) -> R {
        f(&mut self.l1.borrow_mut())
    }

    /// After a broker answer lands in L1: a token the broker does not have on probation
    /// has worked (or is not a replacement), and L1 says so to its brakes.
    fn landed(self: &Rc<Self>, scope: &ScopeSet, _event: &crate::core::cache::Event, _now: u64) {
        let current = self.l1.borrow().current(scope).map(|(t, _)| t.value.clone());
        let vouched = self.meta.borrow().get(scope).is_some_and(|m| !m.probation && current.as_ref() == Some(&m.token));
        if vouched {
            self.l1.borrow_mut().vouch(scope);
        }
    }

    async fn fetch(&self, scope: &ScopeSet) -> Result<Token, VccError> {
        let rejected = self.rejected.borrow_mut().remove(scope).unwrap_or_default();
        let ask = BrokerAsk { scope: scope.as_str().to_owned(), rejected };
        let outcome = self.ask(&ask).await;
        let now = now_ms();
        let mut breaker = self.breaker.get();
        match outcome {
            Ok(answer) => {
                breaker.succeeded();
                self.breaker.set(breaker);
                self.last_error.set(None);
                self.keep(scope, answer, now)
            }
            Err(f) => {
                breaker.failed(now);
                self.breaker.set(breaker);
                self.last_error.set(Some(match f {
                    BrokerFailure::Timeout => "broker_timeout",
                    BrokerFailure::Overloaded => "broker_overloaded",
                    BrokerFailure::Unavailable => "broker_unavailable",
                }));
                // Not delivered: kept for the next call.
                self.rejected.borrow_mut().entry(scope.clone()).or_default().extend(ask.rejected);
                console_error(
                    "{\"error\":\"broker_failed\",\"message\":\"the token broker failed; this isolate fetches tokens itself for a while\"}",
                );
                // Its waiters see the breaker open and fall back (`token`).
                Err(VccError::new(ErrorCode::Network, "the token broker failed"))
            }
        }
    }
}

impl<F: TokenSource<Key = ScopeSet> + 'static> TokenSource for Rc<BrokerTokens<F>> {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, caller: &str, keep_alive: &KeepAlive) -> Result<Lease, VccError> {
        let now = now_ms();
        if let Some(until) = self.cooling.borrow().get(scope).copied().filter(|u| now < *u) {
            return Err(crate::core::cache::cooldown_error(until, now));
        }
        if !self.breaker.get().allows(now) {
            return self.fall_back(scope, caller, keep_alive).await;
        }
        match driver::token(self, scope, caller, &IsolateHost(keep_alive.clone())).await {
            Ok((token, got)) => {
                let cached = got == Got::Cached || self.meta.borrow().get(scope).is_some_and(|m| m.cached);
                let via = match got {
                    Got::Cached => Via::L1,
                    Got::Fetched => Via::Broker,
                    Got::Joined => Via::BrokerWait,
                };
                Ok(Lease { token, cached, via })
            }
            // The broker failed during the call (the breaker is open now): fall back.
            Err(_) if !self.breaker.get().allows(now_ms()) => self.fall_back(scope, caller, keep_alive).await,
            Err(e) => Err(e),
        }
    }

    fn reject(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64) -> Rejected {
        let generation = self.meta.borrow().get(scope).filter(|m| &m.token == token).map(|m| m.generation);
        let Some(generation) = generation else {
            // Not the broker's token: the fallback's, or one already replaced.
            return self.fallback.reject(scope, caller, token, sent_at);
        };
        let rejected = self.l1.borrow_mut().invalidate_if(scope, caller, token, sent_at, now_ms());
        if rejected == Rejected::Dropped {
            // `/healthz` stops showing the times of a token this isolate knows is dead.
            if let Some(info) = self.seen.borrow_mut().get_mut(scope) {
                (info.obtained_at, info.expires_at, info.refresh_at) = (None, None, None);
            }
        }
        if rejected == Rejected::Dropped && generation > 0 {
            let mut pending = self.rejected.borrow_mut();
            let list = pending.entry(scope.clone()).or_default();
            if list.len() < MAX_REPORTED_REJECTIONS {
                list.push(BrokerRejection { generation, caller: caller.to_owned(), sent_at });
            }
        }
        rejected
    }

    /// A token on probation (it replaced a rejected one) is confirmed to the broker
    /// once by this isolate, when it works.
    fn confirm(&self, scope: &ScopeSet, caller: &str, token: &AccessToken, sent_at: u64, keep_alive: &KeepAlive) {
        let mut meta = self.meta.borrow_mut();
        let Some(m) = meta.get_mut(scope).filter(|m| &m.token == token) else {
            drop(meta);
            return self.fallback.confirm(scope, caller, token, sent_at, keep_alive);
        };
        self.l1.borrow_mut().confirm(scope, caller, token, sent_at);
        if m.probation {
            m.probation = false;
            let confirm = BrokerConfirm {
                scope: scope.as_str().to_owned(),
                generation: m.generation,
                caller: caller.into(),
                sent_at,
            };
            drop(meta);
            self.confirm_to_broker(confirm, keep_alive);
        }
    }

    /// What the broker last said of each scope set, with this isolate's own brakes on
    /// its callers; the fallback's own for scope sets it has only fetched itself.
    fn health(&self) -> Vec<(ScopeSet, Info)> {
        let seen = self.seen.borrow();
        let l1 = self.l1.borrow();
        let mut out: Vec<_> = seen
            .iter()
            .map(|(s, i)| {
                let mut info = i.clone();
                // This isolate's own brake on a caller (or on the scope set) counts too.
                if let Some(local) = l1.info(s).filter(|l| l.cooldown_until.is_some()) {
                    info.cooldown_until = info.cooldown_until.max(local.cooldown_until);
                    if info.last_error.is_none() {
                        info.last_error = local.last_error;
                    }
                }
                (s.clone(), info)
            })
            .collect();
        out.extend(self.fallback.health().into_iter().filter(|(s, _)| !seen.contains_key(s)));
        out
    }
}
