//! The token cache as a state machine: it never does I/O, it tells the caller what to do.
//!
//! For each key (the client uses auth base + client id + scope set; the gateway a scope
//! set) it holds at most one token and at most one in-flight request ("flight").
//! [`TokenCache::get`] answers with a [`Plan`]: use the cached token, use it and start a
//! background refresh, wait for the flight in progress, or start a flight and wait. The
//! caller performs the request and reports back with [`TokenCache::finish`], which hands
//! it the waiters to wake. Waiters are an opaque type `W` (a oneshot sender in wasm, a
//! plain value in tests), so single-flight is unit-tested without any runtime.

use litemap::LiteMap;

use super::error::VccError;
use super::retry::RetryPolicy;
use super::secret::AccessToken;
use super::token::{Freshness, Margins, Token};

/// Identifies one in-flight token request, for those who wait on it.
pub type FlightId = u64;

/// The duty to run one token request: given to the one caller that must start it, and
/// spent by [`TokenCache::finish`] with its result. Not `Clone`: one flight, one end.
/// A ticket dropped unspent leaves its flight in progress until its waiters give up on
/// it ([`TokenCache::abandon`]), so it must not be dropped.
#[must_use = "a flight must be finished (TokenCache::finish), or its waiters wait until they give up"]
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket(FlightId);

impl Ticket {
    /// The flight's id, to wait on it.
    pub fn id(&self) -> FlightId {
        self.0
    }
}

/// What the caller of [`TokenCache::get`] should do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// The cached token is good: read it with [`TokenCache::current`].
    Use,
    /// The cached token is good, and a background refresh must be run with this ticket.
    UseAndRefresh(Ticket),
    /// A request is already in flight: register a waiter for it.
    Wait(FlightId),
    /// No usable token: run a request with this ticket and wait for it.
    Fetch(Ticket),
    /// VCC rejected a token it had just issued: no token request until this time (ms
    /// since the epoch). The caller is refused with `token_rejected`.
    Cooldown(u64),
}

/// What a finished flight produced, for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first token for the key (or the first after it expired or was invalidated).
    Fetched,
    /// A new token replaced a cached one.
    Refreshed,
    /// The flight brought back the token already cached (a shared store whose refresh
    /// another process is making): its times are updated, nothing else changes.
    Unchanged,
    /// The request failed but the cached token is still valid and keeps being served.
    RefreshFailed(VccError),
    /// The request failed and there is no valid token.
    Failed(VccError),
}

/// The result of [`TokenCache::finish`]: who to wake and with what.
#[derive(Debug)]
pub struct Finished<W> {
    /// Everyone who waited on the flight.
    pub waiters: Vec<W>,
    /// What they get: a valid token (new, or the cached one if the refresh failed) or
    /// the error.
    pub outcome: Result<AccessToken, VccError>,
    /// What happened, for events and logs.
    pub event: Event,
}

/// Counters and times for one key, safe to show (no token text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// When the cached token was requested, if there is one.
    pub obtained_at: Option<u64>,
    /// When it expires.
    pub expires_at: Option<u64>,
    /// When a proactive refresh starts.
    pub refresh_at: Option<u64>,
    /// Tokens obtained with no cached token to replace.
    pub fetches: u32,
    /// Tokens that replaced a cached one.
    pub refreshes: u32,
    /// Failed token requests.
    pub failures: u32,
    /// Whether a request is in flight.
    pub in_flight: bool,
    /// The last failure, cleared by the next success.
    pub last_error: Option<VccError>,
    /// Until when no token is requested because VCC rejected fresh ones.
    pub cooldown_until: Option<u64>,
}

struct Flight<W> {
    id: FlightId,
    waiters: Vec<W>,
}

struct Entry<W> {
    token: Option<Token>,
    serial: u64,
    flight: Option<Flight<W>>,
    consecutive_failures: u32,
    /// No background refresh before this time (after a failed one).
    retry_at: u64,
    /// The token (cached or coming) replaces one VCC rejected, and has not yet been
    /// seen to work: the caller whose rejection started it. If another caller sees it
    /// rejected too, a new token is not what is missing (a storm).
    probation: Option<Box<str>>,
    /// Storms in a row; sets the scope's cooldown.
    storm_streak: u32,
    /// No token request before this time (a token storm's brake, for every caller).
    cooldown_until: u64,
    /// The latest send time of a call the current token was seen to work for: a 401 to
    /// a call sent no later says nothing against the token (the path's, or the caller's).
    confirmed_sent_at: u64,
    /// A shared cache this one copies (the broker) says the current token is not a
    /// fresh replacement: a rejection of it is a revocation, never a storm's sign.
    vouched: bool,
    /// Each caller's own brake (see [`Brake`]).
    brakes: LiteMap<Box<str>, Brake>,
    info: Info,
}

/// One caller's storm brake: what one caller's 401s do stays with that caller.
#[derive(Clone, Copy, Debug, Default)]
struct Brake {
    /// This caller's last rejection dropped a token, and it has not seen one work since.
    probation: bool,
    /// Its rejections on probation in a row.
    streak: u32,
    /// Its calls are refused until then.
    cooldown_until: u64,
}

/// How many callers' brakes a key keeps. Past it, a new caller gets none (the scope's
/// storm rule still holds): a flood of callers cannot grow the cache.
const MAX_BRAKES: usize = 256;

/// What a rejection ([`TokenCache::invalidate_if`]) did.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The token was the current one and is gone: try again with a new one.
    Dropped,
    /// Another caller had already replaced it: try again with the current one.
    Stale,
    /// The token worked for a call sent no earlier than the rejected one: the 401 is
    /// the path's (or the caller's), not the token's. It stays; a retry would not help.
    Works,
}

impl<W> Default for Entry<W> {
    fn default() -> Self {
        Self {
            token: None,
            serial: 0,
            flight: None,
            consecutive_failures: 0,
            retry_at: 0,
            probation: None,
            storm_streak: 0,
            cooldown_until: 0,
            confirmed_sent_at: 0,
            vouched: false,
            brakes: LiteMap::new(),
            info: Info::default(),
        }
    }
}

/// `token_rejected` for a [`Plan::Cooldown`] until `until`: `retry_after_ms` says when
/// the cooldown ends. One error for every runtime (the client's rejection, the
/// gateway's 503 and its `Retry-After`).
pub fn cooldown_error(until: u64, now: u64) -> VccError {
    let mut e = VccError::new(
        super::error::ErrorCode::TokenRejected,
        "VCC rejected the tokens it just issued; no new token is requested until the cooldown ends",
    );
    e.retry_after_ms = Some(until.saturating_sub(now));
    e
}

/// The cache. `K` is the key type, `W` the waiter type.
pub struct TokenCache<K, W> {
    /// A sorted vector: a cache holds a few scope sets, and std's `HashMap` (hashbrown,
    /// SipHash and its random keys) cost the npm package's wasm 3.2 KB gzipped.
    entries: LiteMap<K, Entry<W>>,
    margins: Margins,
    next_flight: FlightId,
}

impl<K: Ord + Clone, W> TokenCache<K, W> {
    /// An empty cache with the given margins.
    pub fn new(margins: Margins) -> Self {
        Self { entries: LiteMap::new(), margins, next_flight: 1 }
    }

    /// The margins in use.
    pub fn margins(&self) -> Margins {
        self.margins
    }

    /// Decides what `caller` (a key id, a person; `""` for one that is not told apart,
    /// such as a refresh timer) wanting a token for `key` at `now` must do. A caller
    /// whose own brake is on is refused whatever is cached.
    pub fn get(&mut self, key: &K, caller: &str, now: u64) -> Plan {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.clone(), Entry::default());
        }
        let margins = self.margins;
        let next = &mut self.next_flight;
        let Some(e) = self.entries.get_mut(key) else {
            return Plan::Use;
        };
        if let Some(until) = e.brakes.get(caller).map(|b| b.cooldown_until).filter(|u| now < *u) {
            return Plan::Cooldown(until);
        }
        let mut start = |e: &mut Entry<W>| {
            let id = *next;
            *next += 1;
            e.flight = Some(Flight { id, waiters: Vec::new() });
            e.info.in_flight = true;
            Ticket(id)
        };
        match e.token.as_ref().map(|t| margins.freshness(t, now)) {
            Some(Freshness::Fresh) => Plan::Use,
            Some(Freshness::RefreshAhead) => {
                if e.flight.is_none() && now >= e.retry_at {
                    Plan::UseAndRefresh(start(e))
                } else {
                    Plan::Use
                }
            }
            Some(Freshness::MustRefresh) => match &e.flight {
                Some(f) => Plan::Wait(f.id),
                // A refresh just failed: keep serving the still-valid token until the
                // backoff ends instead of hammering a failing endpoint.
                None if now < e.retry_at => Plan::Use,
                None => Plan::Fetch(start(e)),
            },
            Some(Freshness::Expired) | None => {
                e.token = None;
                match &e.flight {
                    Some(f) => Plan::Wait(f.id),
                    None if now < e.cooldown_until => Plan::Cooldown(e.cooldown_until),
                    None => Plan::Fetch(start(e)),
                }
            }
        }
    }

    /// The cached token for `key` with its serial number (changes whenever the token
    /// does; lets the glue keep a converted copy).
    pub fn current(&self, key: &K) -> Option<(&Token, u64)> {
        let e = self.entries.get(key)?;
        e.token.as_ref().map(|t| (t, e.serial))
    }

    /// Registers a waiter on flight `id`. Gives the waiter back if that flight is over.
    pub fn wait(&mut self, key: &K, id: FlightId, waiter: W) -> Result<(), W> {
        match self.entries.get_mut(key).and_then(|e| e.flight.as_mut()).filter(|f| f.id == id) {
            Some(f) => {
                f.waiters.push(waiter);
                Ok(())
            }
            None => Err(waiter),
        }
    }

    /// Records the result of the flight `ticket` stands for and returns who to wake.
    pub fn finish(&mut self, key: &K, ticket: Ticket, result: Result<Token, VccError>, now: u64) -> Finished<W> {
        let id = ticket.0;
        let Some(e) = self.entries.get_mut(key) else {
            return Finished { waiters: Vec::new(), outcome: result.map(|t| t.value), event: Event::Fetched };
        };
        let waiters = match e.flight.take() {
            Some(f) if f.id == id => f.waiters,
            other => {
                e.flight = other;
                Vec::new()
            }
        };
        e.info.in_flight = e.flight.is_some();
        match result {
            Ok(token) if e.token.as_ref().is_some_and(|t| t.value == token.value) => {
                // The same token: same serial, so whatever was known of it (confirmed,
                // vouched, on probation) still holds.
                e.info.last_error = None;
                e.consecutive_failures = 0;
                let value = token.value.clone();
                e.token = Some(token);
                Finished { waiters, outcome: Ok(value), event: Event::Unchanged }
            }
            Ok(token) => {
                let event = if e.token.is_some() { Event::Refreshed } else { Event::Fetched };
                match event {
                    Event::Refreshed => e.info.refreshes += 1,
                    _ => e.info.fetches += 1,
                }
                e.info.last_error = None;
                e.consecutive_failures = 0;
                e.retry_at = 0;
                e.serial += 1;
                e.confirmed_sent_at = 0;
                e.vouched = false;
                let value = token.value.clone();
                e.token = Some(token);
                Finished { waiters, outcome: Ok(value), event }
            }
            Err(error) => {
                e.info.failures += 1;
                e.info.last_error = Some(error.clone());
                e.consecutive_failures += 1;
                match e.token.as_ref().filter(|t| now < t.expires_at) {
                    Some(t) => {
                        e.retry_at = now + RetryPolicy::background_retry_in(e.consecutive_failures);
                        Finished { waiters, outcome: Ok(t.value.clone()), event: Event::RefreshFailed(error) }
                    }
                    None => {
                        e.token = None;
                        e.retry_at = 0;
                        Finished { waiters, outcome: Err(error.clone()), event: Event::Failed(error) }
                    }
                }
            }
        }
    }

    /// Clears flight `id` of `key` if it is still the one in flight, handing back its
    /// waiters. For runtimes where a waiter can stop trusting a flight (workerd: the
    /// request that started it may be gone); the next `get` starts a fresh one.
    pub fn abandon(&mut self, key: &K, id: FlightId) -> Vec<W> {
        match self.entries.get_mut(key) {
            Some(e) if e.flight.as_ref().is_some_and(|f| f.id == id) => {
                e.info.in_flight = false;
                e.flight.take().map(|f| f.waiters).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// VCC answered 401 `invalid_token` to `rejected`, used by `caller` in a call sent
    /// at `sent_at`. It is dropped only if it is still the cached token (one another
    /// caller has already replaced must not be thrown away: [`Rejected::Stale`]) and it
    /// has not worked for a call sent since ([`Rejected::Works`]: the 401 is the path's).
    ///
    /// The storm brake, one per caller and one for the key: when a rejected token was
    /// itself a replacement for one this caller's rejection dropped, and was never seen
    /// to work, this caller cools down (1 s, doubling to 60 s): its calls are refused,
    /// and its 401s cost no more tokens. When it was a replacement for one *another*
    /// caller's rejection dropped, two callers agree that fresh tokens die (a revoked
    /// client, a broken tenant, skewed clocks), so the whole key cools down before its
    /// next token request.
    pub fn invalidate_if(&mut self, key: &K, caller: &str, rejected: &AccessToken, sent_at: u64, now: u64) -> Rejected {
        self.reject_where(key, caller, sent_at, now, |t, _| &t.value == rejected)
    }

    /// [`Self::invalidate_if`] by generation (the serial [`Self::current`] gives): for a
    /// cache shared by many callers that hold a generation rather than the token (the
    /// gateway's broker). However many callers report generation `n`, it is dropped
    /// once; a newer token stays.
    pub fn invalidate_generation(
        &mut self,
        key: &K,
        caller: &str,
        generation: u64,
        sent_at: u64,
        now: u64,
    ) -> Rejected {
        self.reject_where(key, caller, sent_at, now, |_, serial| serial == generation)
    }

    fn reject_where(
        &mut self,
        key: &K,
        caller: &str,
        sent_at: u64,
        now: u64,
        is_rejected: impl Fn(&Token, u64) -> bool,
    ) -> Rejected {
        let Some(e) = self.entries.get_mut(key) else { return Rejected::Stale };
        if !e.token.as_ref().is_some_and(|t| is_rejected(t, e.serial)) {
            return Rejected::Stale;
        }
        if e.confirmed_sent_at > 0 && e.confirmed_sent_at >= sent_at {
            return Rejected::Works;
        }
        e.token = None;
        e.retry_at = 0;
        let rejected =
            || Some(VccError::new(super::error::ErrorCode::TokenRejected, "VCC rejected a token it had just issued"));
        let fresh = !std::mem::take(&mut e.vouched);
        if e.brakes.len() < MAX_BRAKES || e.brakes.contains_key(caller) {
            let brake = e.brakes.entry(caller.into()).or_default();
            if brake.probation && fresh {
                brake.streak += 1;
                brake.cooldown_until = now + RetryPolicy::rejected_cooldown(brake.streak);
                e.info.last_error = rejected();
            }
            brake.probation = true;
        }
        if fresh && e.probation.as_deref().is_some_and(|first| first != caller) {
            e.storm_streak += 1;
            e.cooldown_until = now + RetryPolicy::rejected_cooldown(e.storm_streak);
            e.info.last_error = rejected();
        }
        e.probation = Some(caller.into());
        Rejected::Dropped
    }

    /// An API accepted `token` in a call `caller` sent at `sent_at`: a rejection of a
    /// call sent no later is not the token's, and if the token was on probation, the
    /// key's storm streak and `caller`'s are over. Cheap when there is nothing to end
    /// (the common case, once per request).
    pub fn confirm(&mut self, key: &K, caller: &str, token: &AccessToken, sent_at: u64) {
        self.confirm_where(key, caller, sent_at, |t, _| &t.value == token)
    }

    /// [`Self::confirm`] by generation.
    pub fn confirm_generation(&mut self, key: &K, caller: &str, generation: u64, sent_at: u64) {
        self.confirm_where(key, caller, sent_at, |_, serial| serial == generation)
    }

    fn confirm_where(&mut self, key: &K, caller: &str, sent_at: u64, works: impl Fn(&Token, u64) -> bool) {
        let Some(e) = self.entries.get_mut(key) else { return };
        if !e.token.as_ref().is_some_and(|t| works(t, e.serial)) {
            return;
        }
        e.confirmed_sent_at = e.confirmed_sent_at.max(sent_at);
        if e.probation.is_some() {
            e.probation = None;
            e.storm_streak = 0;
            e.cooldown_until = 0;
        }
        if let Some(b) = e.brakes.get_mut(caller) {
            *b = Brake::default();
        }
    }

    /// Marks `key`'s current token as vouched for by the shared cache it was copied
    /// from (the broker says it is not on probation): rejecting it then counts as a
    /// revocation (a new token, and a retry), never toward a brake.
    pub fn vouch(&mut self, key: &K) {
        if let Some(e) = self.entries.get_mut(key).filter(|e| e.token.is_some()) {
            e.vouched = true;
        }
    }

    /// Whether `key`'s token replaces a rejected one and has not yet been seen to work:
    /// the broker asks the isolates that use such a token to say when it works.
    pub fn on_probation(&self, key: &K) -> bool {
        self.entries.get(key).is_some_and(|e| e.probation.is_some())
    }

    /// Puts back a token kept in storage, with its generation, if `key` has none (a
    /// restarted broker serves its stored token instead of fetching one). Later tokens
    /// get later generations, so a generation is never reused across restarts.
    pub fn restore(&mut self, key: &K, token: Token, generation: u64) {
        let e = self.entries.entry(key.clone()).or_default();
        if e.token.is_none() && e.flight.is_none() {
            e.token = Some(token);
            e.serial = generation;
        }
    }

    /// No background refresh of `key` before `until` (the token stays in use): a
    /// refresh that found another process making it waits this long before it looks
    /// again, instead of looking on every call.
    pub fn hold_refresh(&mut self, key: &K, until: u64) {
        if let Some(e) = self.entries.get_mut(key) {
            e.retry_at = e.retry_at.max(until);
        }
    }

    /// Drops the cached token for `key`, or for every key. Flights in progress finish.
    pub fn invalidate(&mut self, key: Option<&K>) {
        let clear = |e: &mut Entry<W>| {
            e.token = None;
            e.retry_at = 0;
            e.consecutive_failures = 0;
        };
        match key {
            Some(k) => {
                if let Some(e) = self.entries.get_mut(k) {
                    clear(e);
                }
            }
            None => self.entries.iter_mut().for_each(|(_, e)| clear(e)),
        }
    }

    /// When the owner of a timer should next call [`TokenCache::get`] for `key` to start a
    /// proactive refresh: the start of the refresh-ahead window, or the end of a failure
    /// backoff. `None` when there is nothing to refresh or a request is in flight.
    pub fn next_wakeup(&self, key: &K) -> Option<u64> {
        let e = self.entries.get(key)?;
        if e.flight.is_some() {
            return None;
        }
        let t = e.token.as_ref()?;
        Some(self.margins.refresh_at(t).max(e.retry_at))
    }

    /// Counters and times for `key`.
    pub fn info(&self, key: &K) -> Option<Info> {
        let e = self.entries.get(key)?;
        let mut info = e.info.clone();
        // The longest brake on: the key's, or a caller's.
        let until = e.brakes.iter().map(|(_, b)| b.cooldown_until).fold(e.cooldown_until, u64::max);
        info.cooldown_until = Some(until).filter(|until| *until > 0);
        if let Some(t) = &e.token {
            info.obtained_at = Some(t.obtained_at);
            info.expires_at = Some(t.expires_at);
            info.refresh_at = Some(self.margins.refresh_at(t));
        }
        Some(info)
    }

    /// Every key the cache has seen.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::Rejected;
    use super::*;
    use crate::core::error::ErrorCode;

    type Cache = TokenCache<&'static str, u32>;

    fn tok(text: &str, at: u64, lifetime: u64) -> Token {
        Token { value: AccessToken::new(text.into()), obtained_at: at, expires_at: at + lifetime }
    }

    fn net_err() -> VccError {
        VccError::new(ErrorCode::Network, "down")
    }

    #[test]
    fn never_served_at_its_expiry_instant_even_in_a_refresh_backoff() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.finish(&"k", id, Ok(tok("A", 0, 5_000)), 0);
        // Inside the hard margin (500 ms): a refresh, which fails; the backoff (1 s)
        // outlasts the token.
        let Plan::Fetch(r) = c.get(&"k", "", 4_600) else { panic!() };
        let f = c.finish(&"k", r, Err(net_err()), 4_600);
        assert!(matches!(f.event, Event::RefreshFailed(_)));
        assert_eq!(c.get(&"k", "", 4_999), Plan::Use, "still valid: served during the backoff");
        assert!(matches!(c.get(&"k", "", 5_000), Plan::Fetch(_)), "at its expiry instant it is gone");
        assert!(c.current(&"k").is_none());
    }

    /// A refresh that brings back the cached token (a shared store whose refresh another
    /// process is making) changes nothing but the times, and can hold the next look.
    #[test]
    fn a_refresh_that_brings_back_the_same_token_is_unchanged() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.finish(&"k", id, Ok(tok("A", 0, 5_000)), 0);
        c.confirm(&"k", "", &AccessToken::new("A".into()), 100);
        let serial = c.current(&"k").unwrap().1;
        let Plan::UseAndRefresh(r) = c.get(&"k", "", 2_500) else { panic!() };
        let f = c.finish(&"k", r, Ok(tok("A", 0, 5_000)), 2_510);
        assert_eq!(f.event, Event::Unchanged);
        assert_eq!(c.current(&"k").unwrap().1, serial, "same serial: the published copy stays");
        assert_eq!(c.info(&"k").unwrap().refreshes, 0);
        assert_eq!(
            c.invalidate_if(&"k", "", &AccessToken::new("A".into()), 50, 2_520),
            Rejected::Works,
            "still known to work"
        );
        c.hold_refresh(&"k", 3_510);
        assert_eq!(c.get(&"k", "", 3_000), Plan::Use, "no new look while held");
        assert_eq!(c.next_wakeup(&"k"), Some(3_510));
        assert!(matches!(c.get(&"k", "", 3_510), Plan::UseAndRefresh(_)));
    }

    #[test]
    fn concurrent_cold_callers_share_one_flight() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.wait(&"k", id.id(), 0).unwrap();
        for i in 1..1000 {
            assert_eq!(c.get(&"k", "", 1), Plan::Wait(id.id()));
            c.wait(&"k", id.id(), i).unwrap();
        }
        let flight = id.id();
        let f = c.finish(&"k", id, Ok(tok("A", 0, 3_600_000)), 5);
        assert_eq!(f.waiters.len(), 1000);
        assert_eq!(f.outcome.unwrap().expose(), "A");
        assert_eq!(f.event, Event::Fetched);
        assert_eq!(c.get(&"k", "", 6), Plan::Use);
        assert_eq!(c.current(&"k").unwrap().0.value.expose(), "A");
        // the flight is over: late waiters are handed back
        assert_eq!(c.wait(&"k", flight, 7), Err(7));
        assert_eq!(c.info(&"k").unwrap().fetches, 1);
    }

    #[test]
    fn refresh_ahead_serves_cached_and_starts_exactly_one_background_refresh() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.finish(&"k", id, Ok(tok("A", 0, 5_000)), 0);
        assert_eq!(c.next_wakeup(&"k"), Some(2_500));
        assert_eq!(c.get(&"k", "", 2_499), Plan::Use);
        let Plan::UseAndRefresh(r) = c.get(&"k", "", 2_500) else { panic!() };
        assert_eq!(c.get(&"k", "", 2_600), Plan::Use, "only one background refresh");
        assert_eq!(c.next_wakeup(&"k"), None, "no timer while a flight runs");
        // inside the hard margin callers wait for the flight already running
        assert_eq!(c.get(&"k", "", 4_600), Plan::Wait(r.id()));
        let f = c.finish(&"k", r, Ok(tok("B", 2_500, 5_000)), 2_700);
        assert_eq!(f.event, Event::Refreshed);
        assert_eq!(c.current(&"k").unwrap().0.value.expose(), "B");
        let info = c.info(&"k").unwrap();
        assert_eq!((info.fetches, info.refreshes), (1, 1));
    }

    #[test]
    fn a_5s_token_is_refreshed_a_few_times_not_refetched_per_call() {
        let mut c = Cache::new(Margins::default());
        let mut requests = 0;
        let mut now = 0;
        while now < 20_000 {
            match c.get(&"k", "", now) {
                Plan::Use => {}
                Plan::UseAndRefresh(id) | Plan::Fetch(id) => {
                    requests += 1;
                    c.finish(&"k", id, Ok(tok("t", now, 5_000)), now + 50);
                }
                Plan::Wait(_) | Plan::Cooldown(_) => panic!("nothing is in flight or cooling down here"),
            }
            now += 10; // a call every 10 ms: 2000 calls
        }
        assert!((7..=9).contains(&requests), "{requests} token requests for 20 s of 5 s tokens");
    }

    #[test]
    fn failed_refresh_keeps_serving_a_valid_token_then_retries_later() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.finish(&"k", id, Ok(tok("A", 0, 10_000)), 0);
        // hard margin at 9 s: callers wait for the fetch...
        let Plan::Fetch(id) = c.get(&"k", "", 9_100) else { panic!() };
        c.wait(&"k", id.id(), 1).unwrap();
        let f = c.finish(&"k", id, Err(net_err()), 9_200);
        // ...which failed, so they get the still-valid cached token
        assert_eq!(f.outcome.unwrap().expose(), "A");
        assert!(matches!(f.event, Event::RefreshFailed(_)));
        assert_eq!(c.info(&"k").unwrap().last_error.unwrap().code, ErrorCode::Network);
        // and the next caller within the backoff does not hammer the endpoint
        assert_eq!(c.get(&"k", "", 9_300), Plan::Use);
        assert_eq!(c.next_wakeup(&"k"), Some(10_200));
        // once expired, the error surfaces
        let Plan::Fetch(id) = c.get(&"k", "", 10_000) else { panic!() };
        let f = c.finish(&"k", id, Err(net_err()), 10_100);
        assert_eq!(f.outcome.unwrap_err().code, ErrorCode::Network);
        assert!(c.current(&"k").is_none());
        assert_eq!(c.next_wakeup(&"k"), None);
    }

    #[test]
    fn invalidate_only_if_same_token() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.finish(&"k", id, Ok(tok("A", 0, 60_000)), 0);
        let a = c.current(&"k").unwrap().0.value.clone();
        // another caller already replaced A with B
        c.invalidate(Some(&"k"));
        let Plan::Fetch(id) = c.get(&"k", "", 1) else { panic!() };
        c.finish(&"k", id, Ok(tok("B", 1, 60_000)), 1);
        assert_ne!(c.invalidate_if(&"k", "", &a, 1, 1), Rejected::Dropped, "a stale rejection must not drop B");
        assert_eq!(c.current(&"k").unwrap().0.value.expose(), "B");
        let b = c.current(&"k").unwrap().0.value.clone();
        assert_eq!(c.invalidate_if(&"k", "", &b, 2, 2), Rejected::Dropped);
        assert!(matches!(c.get(&"k", "", 2), Plan::Fetch(_)));
    }

    #[test]
    fn keys_are_independent_and_serial_tracks_changes() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(a) = c.get(&"a", "", 0) else { panic!() };
        let Plan::Fetch(b) = c.get(&"b", "", 0) else { panic!() };
        assert_ne!(a, b);
        c.finish(&"a", a, Ok(tok("A", 0, 60_000)), 0);
        assert_eq!(c.get(&"b", "", 1), Plan::Wait(b.id()));
        let s1 = c.current(&"a").unwrap().1;
        c.invalidate(None);
        let Plan::Fetch(a2) = c.get(&"a", "", 2) else { panic!() };
        c.finish(&"a", a2, Ok(tok("A2", 2, 60_000)), 2);
        assert!(c.current(&"a").unwrap().1 > s1);
        assert_eq!(c.keys().count(), 2);
    }

    #[test]
    fn an_abandoned_flight_is_replaced_and_its_late_result_still_counts() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(a) = c.get(&"k", "", 0) else { panic!() };
        c.wait(&"k", a.id(), 1).unwrap();
        c.wait(&"k", a.id(), 2).unwrap();
        assert_eq!(c.abandon(&"k", a.id()), vec![1, 2]);
        assert_eq!(c.abandon(&"k", a.id()), Vec::<u32>::new(), "only once");
        let Plan::Fetch(b) = c.get(&"k", "", 1) else { panic!("a fresh flight") };
        assert_ne!(a, b);
        assert_eq!(c.abandon(&"k", a.id()), Vec::<u32>::new(), "a stale id leaves the new flight alone");
        assert_eq!(c.get(&"k", "", 2), Plan::Wait(b.id()));
        // the abandoned flight finishing late still stores a good token, wakes nobody
        assert!(c.finish(&"k", a, Ok(tok("A", 0, 60_000)), 3).waiters.is_empty());
        assert_eq!(c.get(&"k", "", 4), Plan::Use);
    }

    #[test]
    fn finishing_an_unknown_flight_wakes_nobody() {
        let mut c = Cache::new(Margins::default());
        let Plan::Fetch(id) = c.get(&"k", "", 0) else { panic!() };
        c.wait(&"k", id.id(), 1).unwrap();
        let f = c.finish(&"k", Ticket(id.id() + 100), Ok(tok("X", 0, 60_000)), 0);
        assert!(f.waiters.is_empty());
        assert_eq!(c.get(&"k", "", 1), Plan::Use);
        // the real flight still holds its waiter
        assert_eq!(c.finish(&"k", id, Ok(tok("Y", 0, 60_000)), 1).waiters, vec![1]);
    }

    fn fetch_ok(c: &mut Cache, text: &str, now: u64) -> AccessToken {
        let Plan::Fetch(id) = c.get(&"k", "", now) else { panic!("expected a fetch at {now}") };
        c.finish(&"k", id, Ok(tok(text, now, 3_600_000)), now);
        c.current(&"k").unwrap().0.value.clone()
    }

    #[test]
    fn a_rejected_replacement_starts_a_cooldown_that_doubles() {
        let mut c = Cache::new(Margins::default());
        let a = fetch_ok(&mut c, "A", 0);
        // A revoked token: drop it and fetch one replacement, no cooldown.
        assert_eq!(c.invalidate_if(&"k", "", &a, 10, 10), Rejected::Dropped);
        let b = fetch_ok(&mut c, "B", 10);
        // The replacement is rejected too: a new token is not what is missing.
        assert_eq!(c.invalidate_if(&"k", "", &b, 20, 20), Rejected::Dropped);
        assert_eq!(c.get(&"k", "", 21), Plan::Cooldown(1_020));
        assert_eq!(c.get(&"k", "", 1_019), Plan::Cooldown(1_020), "no token request inside the window");
        assert_eq!(c.info(&"k").unwrap().last_error.unwrap().code, crate::core::error::ErrorCode::TokenRejected);
        assert_eq!(c.info(&"k").unwrap().cooldown_until, Some(1_020));
        let c2 = fetch_ok(&mut c, "C", 1_020);
        assert_eq!(c.invalidate_if(&"k", "", &c2, 1_030, 1_030), Rejected::Dropped);
        assert_eq!(c.get(&"k", "", 1_031), Plan::Cooldown(3_030), "the second cooldown is twice as long");
        // A stale rejection of an older token neither drops anything nor extends it.
        assert_ne!(c.invalidate_if(&"k", "", &b, 1_040, 1_040), Rejected::Dropped);
        assert_eq!(c.get(&"k", "", 1_041), Plan::Cooldown(3_030));
    }

    #[test]
    fn a_token_seen_to_work_ends_the_streak() {
        let mut c = Cache::new(Margins::default());
        let a = fetch_ok(&mut c, "A", 0);
        assert_eq!(c.invalidate_if(&"k", "", &a, 1, 1), Rejected::Dropped);
        let b = fetch_ok(&mut c, "B", 2);
        // a request made with an older token succeeding says nothing about B
        c.confirm(&"k", "", &a, 2);
        c.confirm(&"k", "", &b, 2);
        // B worked; hours later it is revoked: one replacement, no cooldown
        assert_eq!(c.invalidate_if(&"k", "", &b, 3_000_000, 3_000_000), Rejected::Dropped);
        assert!(matches!(c.get(&"k", "", 3_000_001), Plan::Fetch(_)));
        assert_eq!(c.info(&"k").unwrap().cooldown_until, None);
    }

    #[test]
    fn confirming_an_old_token_does_not_clear_probation() {
        let mut c = Cache::new(Margins::default());
        let a = fetch_ok(&mut c, "A", 0);
        assert_eq!(c.invalidate_if(&"k", "", &a, 1, 1), Rejected::Dropped);
        let b = fetch_ok(&mut c, "B", 2);
        c.confirm(&"k", "", &a, 2);
        assert_eq!(c.invalidate_if(&"k", "", &b, 3, 3), Rejected::Dropped);
        assert_eq!(c.get(&"k", "", 4), Plan::Cooldown(1_003));
    }

    fn fetch_for(c: &mut Cache, caller: &str, text: &str, now: u64) -> AccessToken {
        let Plan::Fetch(id) = c.get(&"k", caller, now) else { panic!("expected a fetch for {caller} at {now}") };
        c.finish(&"k", id, Ok(tok(text, now, 3_600_000)), now);
        c.current(&"k").unwrap().0.value.clone()
    }

    #[test]
    fn one_callers_401s_stay_with_that_caller() {
        let mut c = Cache::new(Margins::default());
        let t1 = fetch_for(&mut c, "victim", "T1", 0);
        c.confirm(&"k", "victim", &t1, 5);
        // The attacker's path answers 401 to every token: its first rejection drops T1
        // (T1 last worked for a call sent before), its second drops the replacement.
        assert_eq!(c.invalidate_if(&"k", "attacker", &t1, 10, 11), Rejected::Dropped);
        let t2 = fetch_for(&mut c, "attacker", "T2", 12);
        assert_eq!(c.invalidate_if(&"k", "attacker", &t2, 13, 14), Rejected::Dropped);
        // The attacker cools down: refused, even with a token cached later.
        assert_eq!(c.get(&"k", "attacker", 15), Plan::Cooldown(1_014));
        // The victim does not: it gets a new token, which works for it.
        let t3 = fetch_for(&mut c, "victim", "T3", 15);
        c.confirm(&"k", "victim", &t3, 16);
        assert_eq!(c.get(&"k", "attacker", 500), Plan::Cooldown(1_014));
        assert_eq!(c.get(&"k", "victim", 500), Plan::Use);
        // After its cooldown, the attacker's 401 for a call sent before the victim's last
        // success says nothing against T3; one sent after drops it, and doubles its brake.
        assert_eq!(c.invalidate_if(&"k", "attacker", &t3, 16, 1_100), Rejected::Works);
        assert_eq!(c.get(&"k", "victim", 1_100), Plan::Use);
        assert_eq!(c.invalidate_if(&"k", "attacker", &t3, 1_100, 1_101), Rejected::Dropped);
        assert_eq!(c.get(&"k", "attacker", 1_102), Plan::Cooldown(3_101));
        assert!(matches!(c.get(&"k", "victim", 1_102), Plan::Fetch(_)), "the victim is never refused");
    }

    #[test]
    fn two_callers_seeing_fresh_tokens_die_is_a_storm_for_everyone() {
        let mut c = Cache::new(Margins::default());
        let t1 = fetch_for(&mut c, "a", "T1", 0);
        assert_eq!(c.invalidate_if(&"k", "a", &t1, 10, 10), Rejected::Dropped);
        let t2 = fetch_for(&mut c, "b", "T2", 11);
        // b's call with the replacement fails too: two callers agree.
        assert_eq!(c.invalidate_if(&"k", "b", &t2, 12, 12), Rejected::Dropped);
        for caller in ["a", "b", "c"] {
            assert_eq!(c.get(&"k", caller, 13), Plan::Cooldown(1_012), "{caller}");
        }
        assert_eq!(c.info(&"k").unwrap().last_error.unwrap().code, ErrorCode::TokenRejected);
        // A genuine revocation, by contrast, costs one new token and refuses nobody.
        let mut c = Cache::new(Margins::default());
        let t1 = fetch_for(&mut c, "a", "T1", 0);
        c.confirm(&"k", "b", &t1, 1);
        assert_eq!(c.invalidate_if(&"k", "a", &t1, 10, 10), Rejected::Dropped);
        assert_eq!(c.invalidate_if(&"k", "b", &t1, 10, 10), Rejected::Stale, "b's in-flight call just retries");
        let t2 = fetch_for(&mut c, "a", "T2", 11);
        c.confirm(&"k", "a", &t2, 12);
        assert_eq!((c.get(&"k", "a", 13), c.get(&"k", "b", 13)), (Plan::Use, Plan::Use));
        assert_eq!(c.info(&"k").unwrap().fetches, 2);
    }

    #[test]
    fn a_vouched_for_token_rejected_is_a_revocation_not_a_brake() {
        let mut c = Cache::new(Margins::default());
        let t1 = fetch_for(&mut c, "a", "T1", 0);
        assert_eq!(c.invalidate_if(&"k", "a", &t1, 10, 10), Rejected::Dropped);
        // The next token comes from a shared cache that has seen it work: dead as well
        // (everything was revoked), but not a fresh one dying.
        let t2 = fetch_for(&mut c, "a", "T2", 11);
        c.vouch(&"k");
        assert_eq!(c.invalidate_if(&"k", "a", &t2, 12, 12), Rejected::Dropped);
        assert!(matches!(c.get(&"k", "a", 13), Plan::Fetch(_)), "no brake on a's calls");
    }

    #[test]
    fn generations_survive_a_restore_and_are_dropped_once() {
        let mut c = Cache::new(Margins::default());
        c.restore(&"s", tok("stored", 0, 3_600_000), 41);
        assert_eq!(c.get(&"s", "", 1000), Plan::Use);
        assert_eq!(c.current(&"s").map(|(t, g)| (t.value.expose().to_owned(), g)), Some(("stored".into(), 41)));
        // a stale generation changes nothing; the current one is dropped once
        assert_ne!(c.invalidate_generation(&"s", "", 40, 1000, 1000), Rejected::Dropped);
        assert_eq!(c.invalidate_generation(&"s", "", 41, 1000, 1000), Rejected::Dropped);
        assert_ne!(c.invalidate_generation(&"s", "", 41, 1000, 1000), Rejected::Dropped);
        let Plan::Fetch(id) = c.get(&"s", "", 1000) else { panic!() };
        c.finish(&"s", id, Ok(tok("next", 1000, 3_600_000)), 1000);
        assert_eq!(c.current(&"s").map(|(_, g)| g), Some(42), "the next token's generation follows the stored one");
        // a confirmed replacement ends the probation the rejection started
        assert!(c.on_probation(&"s"));
        c.confirm_generation(&"s", "", 41, 1000);
        assert!(c.on_probation(&"s"), "an old generation confirms nothing");
        c.confirm_generation(&"s", "", 42, 1000);
        assert!(!c.on_probation(&"s"));
        // so the next rejection is a plain one: a new token, no cooldown
        assert_eq!(c.invalidate_generation(&"s", "", 42, 2000, 2000), Rejected::Dropped);
        let Plan::Fetch(id) = c.get(&"s", "", 2000) else { panic!("cooled down after a confirmed token") };
        c.finish(&"s", id, Ok(tok("third", 2000, 3_600_000)), 2000);
        // restoring over a live token does nothing
        c.restore(&"s", tok("older", 0, 3_600_000), 7);
        assert_eq!(c.current(&"s").map(|(_, g)| g), Some(43));
    }
}
