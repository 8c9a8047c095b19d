//! The `TokenBroker` Durable Object's logic ([`Broker`]): one scope set's token for the
//! whole fleet. `worker/src/index.mjs` holds the thin class that extends `DurableObject`
//! and calls these; the isolates' side is `broker.rs`.
//!
//! - The object holds its scope set's token in the same cache an isolate runs
//!   ([`IsolateTokens`], with single-flight: concurrent calls inside a Durable Object
//!   may share a fetch), and keeps a [`BrokerRecord`] in its storage, so a restarted
//!   object serves the stored token. Storage holds a secret: nothing of it is logged.
//! - `token(ask)`: drops each generation in `ask.rejected` if it is still the current one
//!   (so a revocation seen by many isolates costs one fetch; two callers seeing fresh
//!   tokens die is a storm, and the scope set cools down), then answers a
//!   [`BrokerAnswer`]: a token with its generation and times, or why there is none (an
//!   answer, not a broker failure).
//! - The alarm refreshes at the refresh-ahead time while the scope is in use; it can
//!   run twice (a fresh token makes it a no-op).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use super::bindings::DurableObjectState;
use super::env::read_env;
use super::isolate::IsolateTokens;
use super::messages::{from_js, to_js};
use crate::core::error::{ErrorCode, VccError};
use crate::core::gateway::broker::{
    alarm_refreshes, BrokerAnswer, BrokerAsk, BrokerConfirm, BrokerRecord, BrokerRefusal, BrokerToken,
};
use crate::core::gateway::{misconfigured_json, Misconfigured};
use crate::core::scope::ScopeSet;
use crate::core::token::Token;
use crate::glue::js::{console_error, now_ms, KeepAlive};
use crate::glue::tokens::TokenSource;

/// The `TokenBroker` Durable Object's logic.
#[wasm_bindgen]
pub struct Broker {
    inner: Rc<BrokerInner>,
}

struct BrokerInner {
    /// The cache, or the setting that is wrong.
    tokens: Result<Rc<IsolateTokens>, Misconfigured>,
    state: DurableObjectState,
    keep_alive: KeepAlive,
    /// The object's scope set, from its first call or its storage.
    scope: RefCell<Option<ScopeSet>>,
    last_used: Cell<u64>,
    /// What storage holds: (generation, last use).
    stored: Cell<(u64, u64)>,
}

const RECORD: &str = "token";

fn refusal_of(e: &VccError) -> BrokerRefusal {
    BrokerRefusal { error: e.code.as_str().into(), retry_after_ms: e.retry_after_ms, setting: None }
}

fn refusal(e: &VccError) -> BrokerAnswer {
    BrokerAnswer::Refused(refusal_of(e))
}

#[wasm_bindgen]
impl Broker {
    /// Reads the settings from the Worker's `env`, as the gateway does. A bad one is
    /// logged once here, and named in every answer.
    #[wasm_bindgen(constructor)]
    pub fn new(env: JsValue, state: JsValue) -> Broker {
        let tokens = read_env(&env).map(|config| IsolateTokens::new(Rc::new(config)));
        if let Err(m) = &tokens {
            console_error(&misconfigured_json(m));
        }
        let inner = BrokerInner {
            tokens,
            keep_alive: KeepAlive::from_js(state.clone()),
            state: state.unchecked_into(),
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
            let record = JsFuture::from(inner.state.storage().read(RECORD)?).await?;
            let Some(record) = from_js::<BrokerRecord>(record) else { return Ok(JsValue::UNDEFINED) };
            let Ok(scope) = ScopeSet::parse(&record.scope) else { return Ok(JsValue::UNDEFINED) };
            if let Ok(tokens) = &inner.tokens {
                let token =
                    Token { value: record.token, obtained_at: record.obtained_at, expires_at: record.expires_at };
                tokens.with_cache(|c| c.restore(&scope, token, record.generation));
            }
            inner.last_used.set(record.last_used);
            inner.stored.set((record.generation, record.last_used));
            *inner.scope.borrow_mut() = Some(scope);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A token for `ask.scope`, after dropping each generation of `ask.rejected` that is
    /// still current: a `BrokerAnswer`.
    pub fn token(&self, ask: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let answer = match from_js::<BrokerAsk>(ask) {
                Some(ask) => inner.token(ask).await,
                None => refusal(&VccError::new(ErrorCode::InvalidConfig, "not a BrokerAsk")),
            };
            Ok(to_js(&answer))
        })
    }

    /// An isolate saw a generation work (a `BrokerConfirm`): ends the probation a
    /// rejection began.
    pub fn confirm(&self, confirm: JsValue) {
        let Some(c) = from_js::<BrokerConfirm>(confirm) else { return };
        if let (Ok(tokens), Ok(scope)) = (&self.inner.tokens, ScopeSet::parse(&c.scope)) {
            tokens.with_cache(|cache| cache.confirm_generation(&scope, &c.caller, c.generation, c.sent_at));
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

impl BrokerInner {
    async fn token(self: &Rc<Self>, ask: BrokerAsk) -> BrokerAnswer {
        let tokens = match &self.tokens {
            Ok(t) => t,
            Err(m) => {
                let e = VccError::new(ErrorCode::InvalidConfig, "the broker's settings are invalid");
                return BrokerAnswer::Refused(BrokerRefusal { setting: Some(m.setting.into()), ..refusal_of(&e) });
            }
        };
        let Ok(scope) = ScopeSet::parse(&ask.scope) else {
            return refusal(&VccError::new(ErrorCode::InvalidConfig, "not a scope set"));
        };
        let same = self.scope.borrow().as_ref().is_none_or(|s| *s == scope);
        if !same {
            return refusal(&VccError::new(ErrorCode::InvalidConfig, "this broker object serves another scope set"));
        }
        *self.scope.borrow_mut() = Some(scope.clone());
        let now = now_ms();
        for r in &ask.rejected {
            let _ = tokens.with_cache(|c| c.invalidate_generation(&scope, &r.caller, r.generation, r.sent_at, now));
        }
        self.last_used.set(now);
        // No caller: the isolates brake their callers; here only the scope set's own
        // brake (a storm) refuses.
        let lease = match tokens.token(&scope, "", &self.keep_alive).await {
            Ok(l) => l,
            Err(e) => return refusal(&e),
        };
        let answer = tokens.with_cache(|cache| {
            let margins = cache.margins();
            let info = cache.info(&scope).unwrap_or_default();
            let mut t = BrokerToken {
                token: lease.token.clone(),
                generation: 0,
                cached: lease.cached,
                // Replaced meanwhile: usable now, not worth keeping.
                refresh_at: 0,
                use_until: now,
                obtained_at: None,
                expires_at: None,
                probation: false,
                fetches: info.fetches,
                refreshes: info.refreshes,
                failures: info.failures,
                cooldown_until: info.cooldown_until,
            };
            if let Some((current, generation)) = cache.current(&scope).filter(|(c, _)| c.value == lease.token) {
                t.generation = generation;
                t.refresh_at = margins.refresh_at(current);
                t.use_until = margins.stale_at(current);
                t.obtained_at = Some(current.obtained_at);
                t.expires_at = Some(current.expires_at);
                t.probation = cache.on_probation(&scope);
            }
            BrokerAnswer::Token(t)
        });
        self.persist(tokens, &scope);
        answer
    }

    /// Writes the record when the token changed or its last use moved on by a quarter
    /// of its lifetime (the alarm only needs it that precise), and sets the alarm.
    fn persist(&self, tokens: &IsolateTokens, scope: &ScopeSet) {
        let storage = self.state.storage();
        let (stored_gen, stored_used) = self.stored.get();
        let last_used = self.last_used.get();
        tokens.with_cache(|cache| {
            let Some((t, generation)) = cache.current(scope) else { return };
            if generation != stored_gen || last_used.saturating_sub(stored_used) > t.lifetime() / 4 {
                let record = BrokerRecord {
                    scope: scope.as_str().into(),
                    token: t.value.clone(),
                    obtained_at: t.obtained_at,
                    expires_at: t.expires_at,
                    generation,
                    last_used,
                };
                // The output gate holds the answer until the write is durable.
                let _ = storage.write(RECORD, &to_js(&record));
                self.stored.set((generation, last_used));
            }
            if generation != stored_gen {
                if let Some(at) = cache.next_wakeup(scope) {
                    let _ = storage.set_alarm(at as f64);
                }
            }
        });
    }

    async fn alarm(self: &Rc<Self>) {
        let (Ok(tokens), Some(scope)) = (&self.tokens, self.scope.borrow().clone()) else { return };
        let now = now_ms();
        let Some(lifetime) = tokens.with_cache(|c| c.current(&scope).map(|(t, _)| t.lifetime())) else { return };
        if !alarm_refreshes(self.last_used.get(), lifetime, now) {
            return; // idle: no token request, no next alarm
        }
        tokens.refresh(&scope, &self.keep_alive).await;
        // A new token: `persist` stores it and sets the next alarm. None (the refresh
        // failed and the cache backs off, or the token was already fresh): set it here.
        let before = self.stored.get().0;
        self.persist(tokens, &scope);
        if self.stored.get().0 == before {
            if let Some(at) = tokens.with_cache(|c| c.next_wakeup(&scope)) {
                let _ = self.state.storage().set_alarm(at.max(now + 1000) as f64);
            }
        }
    }
}
