//! The token cache checked against a simple model (property test, native only).
//!
//! Random sequences of: callers asking for a token, flights finishing (a token of any
//! lifetime, or an error of any kind), time passing, 401 invalidations with the current
//! token and with stale ones (by value and by generation), waiters giving up on a
//! flight, and close (everything dropped). After every step the cache must agree with
//! the model on what matters to a caller:
//! - at most one flight per key, and a new one only when none is running;
//! - a token past its hard expiry is never served;
//! - a token that is still valid is served while a refresh fails;
//! - a stale invalidation never drops a newer token;
//! - every waiter is woken exactly once (by its flight's end, or handed back on abandon);
//! - a rejection drops the token unless it worked for a call sent no earlier;
//! - one caller's 401s never refuse another caller: a caller is refused only after it
//!   dropped two tokens in a row itself, or when two callers dropped fresh ones (a storm).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::cache::{Event, Plan, Rejected, Ticket, TokenCache};
use super::error::{ErrorCode, VccError};
use super::secret::AccessToken;
use super::token::{Margins, Token};

const KEYS: [&str; 2] = ["a", "b"];
const CALLERS: [&str; 3] = ["", "wallboard", "attacker"];

#[derive(Clone, Debug)]
enum Op {
    /// Caller `c` asks for key `k`'s token.
    Get(usize, usize),
    /// Key `k`'s flight ends: `Some(lifetime)` a token, `None` an error of kind `e`.
    Finish(usize, Option<u64>, usize),
    /// The clock moves.
    Advance(u64),
    /// The clock moves to an edge of key `k`'s token (refresh-ahead start, hard margin,
    /// expiry: `edge` 0, 1, 2), then `nudge` - 1 ms (one before, on, one after).
    ToEdge(usize, usize, u64),
    /// VCC rejects key `k`'s current token (by value or by generation) in a call caller
    /// `c` sent `lag` ms ago.
    RejectCurrent(usize, bool, usize, u64),
    /// VCC rejects an older token of key `k` (by value or by generation).
    RejectStale(usize, bool),
    /// An API accepts key `k`'s current token in a call caller `c` sent `lag` ms ago.
    Confirm(usize, usize, u64),
    /// Key `k`'s waiters give up on its flight.
    Abandon(usize),
    /// The owner drops every token (close).
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    prop_oneof![
        4 => (k.clone(), 0..CALLERS.len()).prop_map(|(k, c)| Op::Get(k, c)),
        3 => (k.clone(), prop::option::weighted(0.6, prop_oneof![Just(0u64), 1..20_000u64, Just(1u64 << 40)]), 0..ERRORS.len())
            .prop_map(|(k, l, e)| Op::Finish(k, l, e)),
        3 => prop_oneof![1..500u64, 500..10_000u64, Just(60_000u64)].prop_map(Op::Advance),
        3 => (k.clone(), 0..3usize, 0..3u64).prop_map(|(k, e, n)| Op::ToEdge(k, e, n)),
        2 => (k.clone(), any::<bool>(), 0..CALLERS.len(), 0..3u64).prop_map(|(k, g, c, l)| Op::RejectCurrent(k, g, c, l)),
        1 => (k.clone(), any::<bool>()).prop_map(|(k, g)| Op::RejectStale(k, g)),
        1 => (k.clone(), 0..CALLERS.len(), 0..3u64).prop_map(|(k, c, l)| Op::Confirm(k, c, l)),
        1 => k.prop_map(Op::Abandon),
        1 => Just(Op::Close),
    ]
}

const ERRORS: [ErrorCode; 6] = [
    ErrorCode::Network,
    ErrorCode::Timeout,
    ErrorCode::TokenEndpoint,
    ErrorCode::RateLimited,
    ErrorCode::InvalidClient,
    ErrorCode::BadResponse,
];

/// What the model knows of one key.
#[derive(Default)]
struct KeyModel {
    /// The flight running, its ticket and who waits on it.
    flight: Option<(Ticket, BTreeSet<u32>)>,
    /// Every token the key has held, oldest first: (value, expires_at, generation).
    history: Vec<(String, u64, u64)>,
    /// A refresh of the current token has failed: only then may it be served inside
    /// its hard margin (instead of waiting for a new one).
    refresh_failed: bool,
    /// The latest send time of a call the current token worked for.
    confirmed_sent: Option<u64>,
    /// Callers whose rejections dropped a token since a token last worked for anyone.
    droppers: BTreeSet<usize>,
    /// Per caller: tokens it dropped since one last worked for it.
    own_drops: [u32; CALLERS.len()],
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let margins = Margins::default();
    let mut cache: TokenCache<&'static str, u32> = TokenCache::new(margins);
    let mut model: Vec<KeyModel> = KEYS.iter().map(|_| KeyModel::default()).collect();
    let mut now: u64 = 1_000_000;
    let mut next_waiter: u32 = 0;
    let mut woken: BTreeSet<u32> = BTreeSet::new();
    let mut registered: BTreeSet<u32> = BTreeSet::new();
    let mut serial = 0u64;

    let wake = |woken: &mut BTreeSet<u32>, ws: Vec<u32>| -> Result<(), TestCaseError> {
        for w in ws {
            prop_assert!(woken.insert(w), "waiter {w} woken twice");
        }
        Ok(())
    };

    for op in ops {
        match *op {
            Op::Get(k, c) => {
                let key = &KEYS[k];
                let m = &mut model[k];
                match cache.get(key, CALLERS[c], now) {
                    Plan::Use => {
                        let (t, _) = cache.current(key).ok_or_else(|| TestCaseError::fail("Use with no token"))?;
                        prop_assert!(now < t.expires_at, "served a token past its expiry");
                        prop_assert!(
                            now < margins.stale_at(t) || m.refresh_failed,
                            "served inside the hard margin with no failed refresh to excuse it"
                        );
                    }
                    Plan::UseAndRefresh(id) => {
                        let (t, _) = cache.current(key).ok_or_else(|| TestCaseError::fail("Use with no token"))?;
                        prop_assert!(now < t.expires_at, "served a token past its expiry");
                        prop_assert!(m.flight.is_none(), "a background refresh while a flight runs");
                        m.flight = Some((id, BTreeSet::new()));
                    }
                    Plan::Wait(id) => {
                        let Some((fid, waiters)) = m.flight.as_mut() else {
                            return Err(TestCaseError::fail("Wait with no flight"));
                        };
                        prop_assert_eq!(fid.id(), id, "Wait on a flight that is not the running one");
                        let w = next_waiter;
                        next_waiter += 1;
                        prop_assert!(cache.wait(key, id, w).is_ok());
                        waiters.insert(w);
                        registered.insert(w);
                    }
                    Plan::Fetch(id) => {
                        prop_assert!(m.flight.is_none(), "a second flight for one key");
                        prop_assert!(
                            cache.current(key).is_none_or(|(t, _)| now >= margins.stale_at(t)),
                            "fetched while a usable token was cached"
                        );
                        let w = next_waiter;
                        next_waiter += 1;
                        prop_assert!(cache.wait(key, id.id(), w).is_ok());
                        m.flight = Some((id, BTreeSet::from([w])));
                        registered.insert(w);
                    }
                    Plan::Cooldown(until) => {
                        prop_assert!(until > now);
                        prop_assert!(
                            m.own_drops[c] >= 2 || m.droppers.len() >= 2,
                            "caller {} refused, having dropped {} token(s) itself, with droppers {:?}",
                            CALLERS[c],
                            m.own_drops[c],
                            m.droppers
                        );
                        if m.own_drops[c] < 2 {
                            prop_assert!(cache.current(key).is_none(), "a storm refuses only while no token is cached");
                        }
                    }
                }
            }
            Op::Finish(k, lifetime, e) => {
                let key = &KEYS[k];
                let Some((id, waiters)) = model[k].flight.take() else { continue };
                let before = cache.current(key).map(|(t, _)| (t.value.expose().to_owned(), t.expires_at));
                let result = match lifetime {
                    Some(l) => {
                        serial += 1;
                        let value = format!("tok-{serial}");
                        Ok(Token {
                            value: AccessToken::new(value),
                            obtained_at: now,
                            expires_at: now.saturating_add(l),
                        })
                    }
                    None => Err(VccError::new(ERRORS[e % ERRORS.len()], "model")),
                };
                let f = cache.finish(key, id, result, now);
                let got: BTreeSet<u32> = f.waiters.iter().copied().collect();
                prop_assert_eq!(&got, &waiters, "the flight's waiters, exactly");
                wake(&mut woken, f.waiters)?;
                match (&f.event, &before) {
                    (Event::Fetched | Event::Refreshed, _) => {
                        model[k].confirmed_sent = None;
                        let (t, generation) = cache.current(key).ok_or_else(|| TestCaseError::fail("no token"))?;
                        prop_assert_eq!(f.outcome.as_ref().map(AccessToken::expose).ok(), Some(t.value.expose()));
                        model[k].history.push((t.value.expose().to_owned(), t.expires_at, generation));
                        model[k].refresh_failed = false;
                    }
                    (Event::RefreshFailed(_), Some((value, expires))) => {
                        prop_assert!(now < *expires, "kept a token past its expiry");
                        model[k].refresh_failed = true;
                        prop_assert_eq!(f.outcome.as_ref().map(AccessToken::expose).ok(), Some(value.as_str()));
                    }
                    (Event::Failed(_), Some((_, expires))) => {
                        prop_assert!(now >= *expires, "a still-valid token was not served while the refresh failed");
                        prop_assert!(f.outcome.is_err());
                    }
                    (Event::Failed(_), None) => prop_assert!(f.outcome.is_err()),
                    (Event::RefreshFailed(_), None) => prop_assert!(false, "RefreshFailed with no token"),
                    // Every fetched token here is new (tok-<serial>).
                    (Event::Unchanged, _) => prop_assert!(false, "Unchanged for a new token"),
                }
            }
            Op::Advance(dt) => now += dt,
            Op::ToEdge(k, edge, nudge) => {
                if let Some((t, _)) = cache.current(&KEYS[k]) {
                    let at = [margins.refresh_at(t), margins.stale_at(t), t.expires_at][edge % 3];
                    // Time never goes back.
                    now = now.max((at + nudge).saturating_sub(1));
                }
            }
            Op::RejectCurrent(k, by_generation, c, lag) => {
                let key = &KEYS[k];
                let sent_at = now.saturating_sub(lag);
                if let Some((t, generation)) = cache.current(key).map(|(t, g)| (t.value.clone(), g)) {
                    let got = if by_generation {
                        cache.invalidate_generation(key, CALLERS[c], generation, sent_at, now)
                    } else {
                        cache.invalidate_if(key, CALLERS[c], &t, sent_at, now)
                    };
                    let m = &mut model[k];
                    if m.confirmed_sent.is_some_and(|confirmed| confirmed >= sent_at) {
                        prop_assert_eq!(got, Rejected::Works, "a token that worked since was dropped");
                        prop_assert!(cache.current(key).is_some());
                    } else {
                        prop_assert_eq!(got, Rejected::Dropped);
                        prop_assert!(cache.current(key).is_none());
                        m.confirmed_sent = None;
                        m.droppers.insert(c);
                        m.own_drops[c] += 1;
                    }
                }
            }
            Op::RejectStale(k, by_generation) => {
                let key = &KEYS[k];
                let current = cache.current(key).map(|(t, g)| (t.value.expose().to_owned(), g));
                let stale = model[k].history.iter().rev().find(|(v, _, _)| Some(v) != current.as_ref().map(|c| &c.0));
                if let Some((value, _, generation)) = stale.cloned() {
                    let got = if by_generation {
                        cache.invalidate_generation(key, "", generation, now, now)
                    } else {
                        cache.invalidate_if(key, "", &AccessToken::new(value), now, now)
                    };
                    prop_assert_eq!(got, Rejected::Stale, "a stale rejection dropped something");
                    let after = cache.current(key).map(|(t, g)| (t.value.expose().to_owned(), g));
                    prop_assert_eq!(after, current, "a stale rejection changed the token");
                }
            }
            Op::Confirm(k, c, lag) => {
                let key = &KEYS[k];
                let sent_at = now.saturating_sub(lag);
                if let Some(t) = cache.current(key).map(|(t, _)| t.value.clone()) {
                    cache.confirm(key, CALLERS[c], &t, sent_at);
                    prop_assert!(!cache.on_probation(key));
                    let m = &mut model[k];
                    m.confirmed_sent = Some(m.confirmed_sent.unwrap_or(0).max(sent_at));
                    m.droppers.clear();
                    m.own_drops[c] = 0;
                }
            }
            Op::Abandon(k) => {
                let key = &KEYS[k];
                if let Some((ticket, waiters)) = model[k].flight.take() {
                    // A waiter gives up: the ticket's holder never finishes it.
                    let back = cache.abandon(key, ticket.id());
                    let got: BTreeSet<u32> = back.iter().copied().collect();
                    prop_assert_eq!(&got, &waiters);
                    wake(&mut woken, back)?;
                    prop_assert!(!cache.info(key).is_some_and(|i| i.in_flight));
                }
            }
            Op::Close => {
                cache.invalidate(None);
                for m in &mut model {
                    m.confirmed_sent = None;
                }
                for key in KEYS {
                    prop_assert!(cache.current(&key).is_none());
                }
            }
        }
        // At most one flight per key, and the cache says so when there is one.
        for (k, key) in KEYS.iter().enumerate() {
            let in_flight = cache.info(key).is_some_and(|i| i.in_flight);
            prop_assert_eq!(in_flight, model[k].flight.is_some(), "flight bookkeeping for {}", key);
        }
    }
    // The end: every flight finishes; then every waiter has been woken exactly once.
    for (k, key) in KEYS.iter().enumerate() {
        if let Some((id, _)) = model[k].flight.take() {
            let f = cache.finish(key, id, Err(VccError::new(ErrorCode::Network, "end")), now);
            wake(&mut woken, f.waiters)?;
        }
    }
    prop_assert_eq!(woken, registered, "every waiter woken");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cache_agrees_with_its_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
