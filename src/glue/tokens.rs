//! The token seam: the one interface between a request and the tokens it needs, and
//! the 401 flow written once on top of it.
//!
//! Modelled on Go's `oauth2.TokenSource`: callers ask a source for a token and tell it
//! what VCC said of it; how the source gets tokens (a cache in this process, a cache
//! shared by a fleet) is its own business. Three sources today: the client's cache
//! (`client/tokens.rs`), the gateway's per-isolate cache (`gateway/isolate.rs`) and the
//! fleet's broker (`gateway/broker.rs`, with a fallback source of its own). The caches
//! behind them are all run by one driver (`driver.rs`).

use web_sys::Response;

use super::http::{discard, is_invalid_token};
use super::js::{now_ms, KeepAlive};
use crate::core::cache::{Info, Rejected};
use crate::core::error::VccError;
use crate::core::secret::AccessToken;

/// Where a request's token came from (the gateway's log line says it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
pub enum Via {
    /// This process's (or isolate's) own cache.
    Local,
    /// The broker's answer, kept by this isolate until its refresh time.
    L1,
    /// The broker, asked by this request.
    Broker,
    /// The broker's answer to a call another request of this isolate made.
    BrokerWait,
    /// This isolate's own cache, while the broker fails.
    Fallback,
}

/// A token as one request got it.
pub struct Lease {
    /// The token.
    pub token: AccessToken,
    /// Whether it came from a cache without waiting for a token request.
    pub cached: bool,
    /// Where it came from.
    pub via: Via,
}

/// Where requests get their tokens.
pub trait TokenSource {
    /// What a token is for: a scope set (with, for the client, the credentials).
    type Key;

    /// A token for `key`, cached or fresh, for `caller` (the gateway's key id or
    /// person; `""` for the client's one caller): a caller whose 401s put it in a
    /// cooldown is refused (`token_rejected`). `keep_alive` keeps work this request
    /// starts running once the request is over (workerd's `waitUntil`; nothing
    /// elsewhere).
    async fn token(&self, key: &Self::Key, caller: &str, keep_alive: &KeepAlive) -> Result<Lease, VccError>;

    /// VCC answered 401 `invalid_token` to `token`, in `caller`'s call sent at
    /// `sent_at`: see `TokenCache::invalidate_if`.
    fn reject(&self, key: &Self::Key, caller: &str, token: &AccessToken, sent_at: u64) -> Rejected;

    /// VCC accepted `token` (any answer but a 401) in `caller`'s call sent at `sent_at`.
    /// `keep_alive` as for `token`.
    fn confirm(&self, key: &Self::Key, caller: &str, token: &AccessToken, sent_at: u64, keep_alive: &KeepAlive);

    /// Times and counters of every key the source has served: never a token.
    fn health(&self) -> Vec<(Self::Key, Info)>;
}

/// How a request's token was had, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// From the cache.
    Hit,
    /// Waited for a token request.
    Miss,
    /// The first token was rejected (401 `invalid_token`) and the call was retried.
    Refreshed,
}

/// Why [`exchange`] produced no response.
pub enum ExchangeError<E> {
    /// No token.
    Token(VccError),
    /// The send failed.
    Send(E),
}

/// One authenticated call for `caller`: a token for `key`, `send` with it; on a 401
/// `invalid_token`, the token is rejected and the call is sent once more with a new one.
/// If that one is rejected too, the source hears of it (its storm brake) and the caller
/// gets VCC's 401, unless that token came from a cache rather than a fresh request: a
/// fleet's shared cache can hold a newer generation that a revocation killed as well, so
/// it is rejected in turn and the call tried a third time (at most two generations per
/// call). A 401 to a token that worked for a call sent since is passed on at once: the
/// path (or the caller) is what VCC refuses, and a new token would not help.
pub async fn exchange<S: TokenSource, E>(
    source: &S,
    key: &S::Key,
    caller: &str,
    keep_alive: &KeepAlive,
    send: impl AsyncFn(&AccessToken) -> Result<Response, E>,
) -> Result<(Response, CacheUse, Via), ExchangeError<E>> {
    let mut lease = source.token(key, caller, keep_alive).await.map_err(ExchangeError::Token)?;
    let first_cached = lease.cached;
    let mut attempt = 0;
    loop {
        let sent_at = now_ms();
        let answer = send(&lease.token).await.map_err(ExchangeError::Send)?;
        if answer.status() != 401 {
            source.confirm(key, caller, &lease.token, sent_at, keep_alive);
        }
        let use_ = match (attempt, first_cached) {
            (0, true) => CacheUse::Hit,
            (0, false) => CacheUse::Miss,
            _ => CacheUse::Refreshed,
        };
        if answer.status() != 401 || !is_invalid_token(&answer).await {
            return Ok((answer, use_, lease.via));
        }
        let rejected = source.reject(key, caller, &lease.token, sent_at);
        if rejected == Rejected::Works || attempt == 2 || (attempt == 1 && !lease.cached) {
            return Ok((answer, use_, lease.via));
        }
        discard(&answer);
        lease = source.token(key, caller, keep_alive).await.map_err(ExchangeError::Token)?;
        attempt += 1;
    }
}
