//! Fleet-wide tokens: the `TokenBroker` Durable Object's logic ([`Broker`]) and the
//! isolate's side of it ([`BrokerTokens`], a [`TokenSource`]). The policy is the core's
//! (`core::cache`, `core::gateway::broker`); this file moves tokens between storage,
//! RPC and the caches.
//!
//! - The object holds one scope set's token in the same `TokenCache` as an isolate,
//!   with single-flight (concurrent calls inside a Durable Object may share a fetch),
//!   and keeps `{token, times, generation, last use}` in its storage, so a restarted
//!   object serves the stored token. Storage holds a secret: nothing of it is logged.
//! - `token(scope, rejected?)`: drops generation `rejected` if it is still the current
//!   one (so a revocation seen by many isolates costs one fetch), then answers
//!   `{token, generation, refreshAt, useUntil, cached, probation}`, or `{error, retryAfterMs}`
//!   when VCC refused (an answer, not a broker failure).
//! - The alarm refreshes at the refresh-ahead time while the scope is in use; it can
//!   run twice (a fresh token makes it a no-op).
//! - Isolates keep each answer until its refresh time (L1). If the broker fails, they
//!   fetch tokens themselves behind a small circuit breaker; callers see no failure.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use super::gateway::IsolateTokens;
use super::js::{console_error, now_ms, Obj, Timer};
use super::tokens::{Lease, TokenSource};
use crate::core::cache::{Info, TokenCache};
use crate::core::error::{ErrorCode, VccError};
use crate::core::gateway::broker::{alarm_refreshes, l1_until, location_hint, object_name, Breaker, BROKER_TIMEOUT_MS};
use crate::core::gateway::GatewayConfig;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;
use crate::core::token::Token;

fn get(v: &JsValue, name: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn num(v: &JsValue, name: &str) -> Option<u64> {
    get(v, name).as_f64().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64)
}

/// Calls `target[method](...args)`, expecting a promise.
fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Result<Promise, JsValue> {
    let f: Function = get(target, method).dyn_into()?;
    let array = js_sys::Array::new();
    for a in args {
        array.push(a);
    }
    Ok(Promise::resolve(&Reflect::apply(&f, target, &array)?))
}

/// The `TokenBroker` Durable Object's logic; `worker/src/index.mjs` holds the thin class
/// that extends `DurableObject` and calls these.
#[wasm_bindgen]
pub struct Broker {
    inner: Rc<BrokerInner>,
}

struct BrokerInner {
    tokens: Option<Rc<IsolateTokens>>,
    /// The `DurableObjectState` (`storage`, `waitUntil`).
    state: JsValue,
    /// The object's scope set, from its first call or its storage.
    scope: RefCell<Option<ScopeSet>>,
    last_used: Cell<u64>,
    /// What storage holds: (generation, last use).
    stored: Cell<(u64, u64)>,
}

const RECORD: &str = "token";

#[wasm_bindgen]
impl Broker {
    /// Reads the settings from the Worker's `env`, as the gateway does.
    #[wasm_bindgen(constructor)]
    pub fn new(env: JsValue, state: JsValue) -> Broker {
        let tokens = super::gateway::read_env(&env).ok().map(|config| {
            let config = Rc::new(config);
            Rc::new(IsolateTokens { cache: RefCell::new(TokenCache::new(config.settings.margins)), config })
        });
        let inner = BrokerInner {
            tokens,
            state,
            scope: RefCell::new(None),
            last_used: Cell::new(0),
            stored: Cell::new((0, 0)),
        };
        Broker { inner: Rc::new(inner) }
    }

    /// Loads the stored token (run inside `blockConcurrencyWhile`, before any call).
    pub fn restore(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let storage = get(&inner.state, "storage");
            let record = JsFuture::from(call(&storage, "get", &[&RECORD.into()])?).await?;
            if !record.is_object() {
                return Ok(JsValue::UNDEFINED);
            }
            let (Some(scope), Some(value), Some(obtained_at), Some(expires_at), Some(generation)) = (
                get(&record, "scope").as_string().and_then(|s| ScopeSet::parse(&s).ok()),
                get(&record, "token").as_string(),
                num(&record, "obtainedAt"),
                num(&record, "expiresAt"),
                num(&record, "generation"),
            ) else {
                return Ok(JsValue::UNDEFINED);
            };
            let last_used = num(&record, "lastUsed").unwrap_or(0);
            if let Some(tokens) = &inner.tokens {
                let token = Token { value: AccessToken::new(value), obtained_at, expires_at };
                tokens.cache.borrow_mut().restore(&scope, token, generation);
            }
            inner.last_used.set(last_used);
            inner.stored.set((generation, last_used));
            *inner.scope.borrow_mut() = Some(scope);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A token for `scope`, after dropping generation `rejected` if it is still current.
    pub fn token(&self, scope: String, rejected: Option<f64>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { Ok(inner.token(&scope, rejected.map(|g| g as u64)).await) })
    }

    /// An isolate saw generation `generation` work: ends the probation a rejection began.
    pub fn confirm(&self, scope: String, generation: f64) {
        if let (Some(tokens), Ok(scope)) = (&self.inner.tokens, ScopeSet::parse(&scope)) {
            tokens.cache.borrow_mut().confirm_generation(&scope, generation as u64);
        }
    }

    /// The refresh alarm.
    pub fn alarm(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner.alarm().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

fn failure(e: &VccError) -> JsValue {
    let out = Obj::new();
    out.set("error", e.code.as_str());
    out.set_opt("retryAfterMs", e.retry_after_ms);
    out.0.into()
}

impl BrokerInner {
    async fn token(self: &Rc<Self>, scope: &str, rejected: Option<u64>) -> JsValue {
        let Some(tokens) = &self.tokens else {
            return failure(&VccError::new(ErrorCode::InvalidConfig, "the broker's settings are invalid"));
        };
        let Ok(scope) = ScopeSet::parse(scope) else {
            return failure(&VccError::new(ErrorCode::InvalidConfig, "not a scope set"));
        };
        let same = self.scope.borrow().as_ref().is_none_or(|s| *s == scope);
        if !same {
            return failure(&VccError::new(ErrorCode::InvalidConfig, "this broker object serves another scope set"));
        }
        *self.scope.borrow_mut() = Some(scope.clone());
        let now = now_ms();
        if let Some(g) = rejected {
            tokens.cache.borrow_mut().invalidate_generation(&scope, g, now);
        }
        self.last_used.set(now);
        let lease = match tokens.lease(&scope, &self.state).await {
            Ok(l) => l,
            Err(e) => return failure(&e),
        };
        let cache = tokens.cache.borrow();
        let margins = cache.margins();
        let out = Obj::new();
        out.set("token", lease.token.expose()).set("cached", lease.cached);
        match cache.current(&scope).filter(|(t, _)| t.value == lease.token) {
            Some((t, generation)) => {
                out.set("generation", generation as f64)
                    .set("refreshAt", margins.refresh_at(t) as f64)
                    .set("useUntil", margins.stale_at(t) as f64)
                    .set("obtainedAt", t.obtained_at as f64)
                    .set("expiresAt", t.expires_at as f64)
                    .set("probation", cache.on_probation(&scope));
                if let Some(info) = cache.info(&scope) {
                    out.set("fetches", info.fetches).set("refreshes", info.refreshes).set("failures", info.failures);
                }
            }
            // Replaced meanwhile: usable now, not worth keeping.
            None => {
                out.set("generation", 0).set("refreshAt", 0).set("useUntil", now as f64);
            }
        }
        drop(cache);
        self.persist(&scope);
        out.0.into()
    }

    /// Writes the record when the token changed or its last use moved on by a quarter
    /// of its lifetime (the alarm only needs it that precise), and sets the alarm.
    fn persist(&self, scope: &ScopeSet) {
        let Some(tokens) = &self.tokens else { return };
        let cache = tokens.cache.borrow();
        let Some((t, generation)) = cache.current(scope) else { return };
        let (stored_gen, stored_used) = self.stored.get();
        let last_used = self.last_used.get();
        let storage = get(&self.state, "storage");
        if generation != stored_gen || last_used.saturating_sub(stored_used) > t.lifetime() / 4 {
            let record = Obj::new();
            record
                .set("scope", scope.as_str())
                .set("token", t.value.expose())
                .set("obtainedAt", t.obtained_at as f64)
                .set("expiresAt", t.expires_at as f64)
                .set("generation", generation as f64)
                .set("lastUsed", last_used as f64);
            // The output gate holds the answer until the write is durable.
            let _ = call(&storage, "put", &[&RECORD.into(), &record.0]);
            self.stored.set((generation, last_used));
        }
        if generation != stored_gen {
            if let Some(at) = cache.next_wakeup(scope) {
                let _ = call(&storage, "setAlarm", &[&(at as f64).into()]);
            }
        }
    }

    async fn alarm(self: &Rc<Self>) {
        let (Some(tokens), Some(scope)) = (&self.tokens, self.scope.borrow().clone()) else { return };
        let now = now_ms();
        let lifetime = tokens.cache.borrow().current(&scope).map(|(t, _)| t.lifetime());
        let Some(lifetime) = lifetime else { return };
        if !alarm_refreshes(self.last_used.get(), lifetime, now) {
            return; // idle: no token request, no next alarm
        }
        tokens.refresh(&scope, &self.state).await;
        // A new token: `persist` stores it and sets the next alarm. None (the refresh
        // failed and the cache backs off, or the token was already fresh): set it here.
        let before = self.stored.get().0;
        self.persist(&scope);
        if self.stored.get().0 == before {
            if let Some(at) = tokens.cache.borrow().next_wakeup(&scope) {
                let _ = call(&get(&self.state, "storage"), "setAlarm", &[&(at.max(now + 1000) as f64).into()]);
            }
        }
    }
}

/// What an isolate keeps of a broker answer.
struct L1 {
    token: AccessToken,
    generation: u64,
    until: u64,
    probation: bool,
}

/// The isolate's side: L1 copies of the broker's answers, the broker on a miss, this
/// isolate's own cache while the broker fails.
pub(super) struct BrokerTokens {
    namespace: JsValue,
    config: Rc<GatewayConfig>,
    fallback: Rc<IsolateTokens>,
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

impl BrokerTokens {
    pub(super) fn new(namespace: JsValue, config: Rc<GatewayConfig>, fallback: Rc<IsolateTokens>) -> Self {
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

    pub(super) fn last_error(&self) -> Option<&'static str> {
        self.last_error.get()
    }

    fn stub(&self, scope: &ScopeSet) -> Result<JsValue, JsValue> {
        let s = &self.config.settings;
        let name = object_name(&s.auth_base.as_string(), &s.client_id, scope);
        let id_from_name: Function = get(&self.namespace, "idFromName").dyn_into()?;
        let id = id_from_name.call1(&self.namespace, &name.into())?;
        let options = Obj::new();
        if let Some(hint) = location_hint(self.config.region) {
            options.set("locationHint", hint);
        }
        let get_stub: Function = get(&self.namespace, "get").dyn_into()?;
        get_stub.call2(&self.namespace, &id, &options.0)
    }

    /// One broker call within [`BROKER_TIMEOUT_MS`].
    async fn ask(&self, scope: &ScopeSet, rejected: Option<u64>) -> Result<JsValue, BrokerFailure> {
        let stub = self.stub(scope).map_err(|_| BrokerFailure::Unavailable)?;
        let rejected = rejected.map_or(JsValue::UNDEFINED, |g| JsValue::from(g as f64));
        let answer =
            call(&stub, "token", &[&scope.as_str().into(), &rejected]).map_err(|_| BrokerFailure::Unavailable)?;
        let mut resolve: Option<Function> = None;
        let timeout = Promise::new(&mut |res, _| resolve = Some(res));
        let _timer = resolve.map(|r| {
            Timer::new(BROKER_TIMEOUT_MS, true, move || {
                let _ = r.call1(&JsValue::UNDEFINED, &"timeout".into());
            })
        });
        match JsFuture::from(Promise::race(&js_sys::Array::of2(&answer, &timeout))).await {
            Ok(v) if v.as_string().as_deref() == Some("timeout") => Err(BrokerFailure::Timeout),
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(BrokerFailure::Unavailable),
            // workerd marks an overloaded object's errors `overloaded`: never retried.
            Err(e) if get(&e, "overloaded").as_bool() == Some(true) => Err(BrokerFailure::Overloaded),
            Err(_) => Err(BrokerFailure::Unavailable),
        }
    }

    async fn lease(&self, scope: &ScopeSet, ctx: &JsValue) -> Result<Lease, VccError> {
        let now = now_ms();
        if let Some(l) = self.l1.borrow().get(scope).filter(|l| now < l.until) {
            return Ok(Lease { token: l.token.clone(), cached: true, via: "l1" });
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
                    if let Some(code) = get(&answer, "error").as_string() {
                        let mut e = VccError::new(
                            ErrorCode::parse(&code).unwrap_or(ErrorCode::TokenEndpoint),
                            "the token broker could not get a token",
                        );
                        e.retry_after_ms = num(&answer, "retryAfterMs");
                        let mut seen = self.seen.borrow_mut();
                        let info = seen.entry(scope.clone()).or_default();
                        info.failures += 1;
                        info.last_error = Some(e.clone());
                        return Err(e);
                    }
                    let Some(token) = get(&answer, "token").as_string().map(AccessToken::new) else {
                        return Err(VccError::new(ErrorCode::BadResponse, "the token broker answered without a token"));
                    };
                    let generation = num(&answer, "generation").unwrap_or(0);
                    let refresh_at = num(&answer, "refreshAt").unwrap_or(0);
                    let use_until = num(&answer, "useUntil").unwrap_or(now);
                    let probation = get(&answer, "probation").as_bool() == Some(true);
                    let until = l1_until(refresh_at, use_until, now);
                    let cached = get(&answer, "cached").as_bool() == Some(true);
                    self.l1
                        .borrow_mut()
                        .insert(scope.clone(), L1 { token: token.clone(), generation, until, probation });
                    let mut seen = self.seen.borrow_mut();
                    let info = seen.entry(scope.clone()).or_default();
                    info.obtained_at = num(&answer, "obtainedAt");
                    info.expires_at = num(&answer, "expiresAt");
                    info.refresh_at = Some(refresh_at);
                    info.last_error = None;
                    // The broker's counters: the fleet's fetches of this scope set.
                    let count = |name| num(&answer, name).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32);
                    info.fetches = count("fetches");
                    info.refreshes = count("refreshes");
                    info.failures = count("failures");
                    return Ok(Lease { token, cached, via: "broker" });
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
        let mut lease = self.fallback.lease(scope, ctx).await?;
        lease.via = "fallback";
        Ok(lease)
    }

    /// Tells the broker that a generation on probation works (once per isolate).
    fn confirm_to_broker(&self, scope: &ScopeSet, generation: u64, ctx: &JsValue) {
        let Ok(stub) = self.stub(scope) else { return };
        if let Ok(p) = call(&stub, "confirm", &[&scope.as_str().into(), &JsValue::from(generation as f64)]) {
            let p = p.catch(&self.ignore);
            super::gateway::wait_until(ctx, &p);
        }
    }
}

impl TokenSource for Rc<BrokerTokens> {
    type Key = ScopeSet;

    async fn token(&self, scope: &ScopeSet, ctx: &JsValue) -> Result<Lease, VccError> {
        self.lease(scope, ctx).await
    }

    fn reject(&self, scope: &ScopeSet, token: &AccessToken) {
        let mut l1 = self.l1.borrow_mut();
        if let Some(l) = l1.get(scope).filter(|l| &l.token == token) {
            self.rejected.borrow_mut().insert(scope.clone(), l.generation);
            l1.remove(scope);
        }
        self.fallback.reject(scope, token);
    }

    /// A token on probation (it replaced a rejected one) is confirmed to the broker
    /// once by this isolate, when it works.
    fn confirm(&self, scope: &ScopeSet, token: &AccessToken, ctx: &JsValue) {
        let mut l1 = self.l1.borrow_mut();
        if let Some(l) = l1.get_mut(scope).filter(|l| &l.token == token && l.probation) {
            l.probation = false;
            let generation = l.generation;
            drop(l1);
            self.confirm_to_broker(scope, generation, ctx);
            return;
        }
        drop(l1);
        self.fallback.confirm(scope, token, ctx);
    }

    /// What the broker last said of each scope; this isolate's own cache for scopes
    /// it has only fetched itself (while the broker failed).
    fn health(&self) -> Vec<(ScopeSet, Info)> {
        let seen = self.seen.borrow();
        let mut out: Vec<_> = seen.iter().map(|(s, i)| (s.clone(), i.clone())).collect();
        out.extend(self.fallback.health().into_iter().filter(|(s, _)| !seen.contains_key(s)));
        out
    }
}

/// `env.TOKEN_BROKER`, if bound.
pub(super) fn namespace(env: &JsValue) -> Option<JsValue> {
    Some(get(env, "TOKEN_BROKER")).filter(|n| n.is_object() && get(n, "idFromName").is_function())
}
