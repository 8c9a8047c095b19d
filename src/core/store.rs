//! The policy of a token store shared by a fleet of processes (Redis, Valkey, or any
//! store with a compare-and-set and a lock): what a process does with the record it
//! read, and what it writes back. No I/O and no crypto: the glue (`glue/client/store.rs`)
//! reads, seals, locks and writes as this module says.
//!
//! One record per (auth base, client id, scope set, client secret), under a name the
//! glue derives from them with a key only the secret gives, so no name shows a client
//! or a scope, and a process with another secret (one being rotated) has records of its
//! own. The record is sealed (AES-GCM) as a whole: it holds the token, its times, its
//! generation, and the fleet's storm state. It is what the gateway's broker keeps in
//! one object, kept here in the store, and changed only by compare-and-set:
//!
//! - **One fetch at a time.** A process that finds no usable token takes the scope
//!   set's lock (a lease of [`lock_lease_ms`]: twice the token request's `timeoutMs`),
//!   fetches, writes, and releases it; the others poll the record ([`poll_delay_ms`])
//!   until a token is there or the lock is free (its holder failed, or died and its
//!   lease ran out), and then take it themselves. In the refresh-ahead window the
//!   process that gets the lock refreshes, and the others keep the current token.
//! - **Generations.** Each token written gets a generation later than the last and than
//!   the clock ([`written`]): a 401 seen by any number of processes drops the token of
//!   that generation once ([`rejected`]), and never a newer one.
//! - **The storm rule, shared.** A token written after a rejection is on probation until
//!   some process sees it work ([`confirmed`]); if it is rejected in turn, fresh tokens
//!   die (a revoked client, skewed clocks): the whole fleet cools down before its next
//!   token request, 1 s doubling to 60 s, as one process alone does.

use zeroize::Zeroizing;

use super::retry::RetryPolicy;
use super::secret::AccessToken;
use super::token::{Freshness, Margins, Token};
use super::url::push_u64;

/// The record's format, first in its text: a reader of another format treats the record
/// as absent.
const FORMAT: &str = "vcc-auth-store-1";

/// One scope set's shared state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRecord {
    /// The generation of the token (or of the last one, once it is dropped).
    pub generation: u64,
    /// The token, unless a rejection dropped it.
    pub token: Option<Token>,
    /// The token replaces a rejected one and no process has seen it work yet.
    pub probation: bool,
    /// The last token was rejected: the next one written is on probation.
    pub rejected: bool,
    /// Storms in a row.
    pub storm_streak: u32,
    /// No token request before this time (ms since the epoch).
    pub cooldown_until: u64,
}

impl StoreRecord {
    /// The record as text, to be sealed. It holds the token: the text is zeroized when
    /// dropped, and only ever leaves for the sealing.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(1200));
        s.push_str(FORMAT);
        for n in [
            self.generation,
            self.token.as_ref().map_or(0, |t| t.obtained_at),
            self.token.as_ref().map_or(0, |t| t.expires_at),
            u64::from(self.probation) | u64::from(self.rejected) << 1,
            u64::from(self.storm_streak),
            self.cooldown_until,
        ] {
            s.push('|');
            push_u64(&mut s, n);
        }
        s.push('|');
        if let Some(t) = &self.token {
            s.push_str(t.value.expose());
        }
        s
    }

    /// A record from its text, or `None` for anything else (another format, a damaged
    /// record: the store is read as if it had none).
    pub fn decode(text: &str) -> Option<StoreRecord> {
        // The token is last, so whatever it holds (even a `|`) stays whole.
        let mut parts = text.splitn(8, '|');
        if parts.next()? != FORMAT {
            return None;
        }
        let mut num = || parts.next()?.parse::<u64>().ok();
        let (generation, obtained_at, expires_at, flags, streak, cooldown_until) =
            (num()?, num()?, num()?, num()?, num()?, num()?);
        let value = parts.next()?;
        if flags > 3 {
            return None;
        }
        let token = match value {
            "" => None,
            v if expires_at > obtained_at => {
                Some(Token { value: AccessToken::new(v.to_owned()), obtained_at, expires_at })
            }
            _ => return None,
        };
        Some(StoreRecord {
            generation,
            token,
            probation: flags & 1 == 1,
            rejected: flags & 2 == 2,
            storm_streak: u32::try_from(streak).ok()?,
            cooldown_until,
        })
    }
}

/// What a process does with the record it read (none: `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// Use this token.
    Use(Token),
    /// Use this token, unless the lock is free: then refresh it (refresh-ahead).
    Refresh(Token),
    /// No usable token: take the lock and fetch, or wait for whoever holds it.
    Fetch,
    /// The fleet cools down until then: no token request.
    Cooldown(u64),
}

/// Decides what a process does with `record` at `now`, with its cache's `margins`.
pub fn read(record: Option<&StoreRecord>, margins: Margins, now: u64) -> Read {
    let Some(r) = record else { return Read::Fetch };
    match r.token.as_ref().map(|t| (t, margins.freshness(t, now))) {
        Some((t, Freshness::Fresh)) => Read::Use(t.clone()),
        Some((t, Freshness::RefreshAhead)) => Read::Refresh(t.clone()),
        _ if now < r.cooldown_until => Read::Cooldown(r.cooldown_until),
        _ => Read::Fetch,
    }
}

/// The record after a process fetched `token` from VCC (with the lock), over `previous`.
pub fn written(previous: Option<&StoreRecord>, token: Token, now: u64) -> StoreRecord {
    let p = previous.cloned().unwrap_or_default();
    StoreRecord {
        // Later than the last one and than the clock: a generation is never reused, even
        // after the record is lost (evicted, expired, the store emptied).
        generation: p.generation.saturating_add(1).max(now),
        token: Some(token),
        probation: p.rejected || (p.probation && p.token.is_none()),
        rejected: false,
        storm_streak: p.storm_streak,
        cooldown_until: p.cooldown_until,
    }
}

/// What a rejection did to the shared record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not the current token any more (another process already dropped or replaced
    /// it): nothing to write.
    Stale,
    /// Dropped: write this record.
    Dropped(StoreRecord),
    /// Dropped, and it was a replacement no process had seen work: the fleet cools down
    /// (write this record).
    Storm(StoreRecord),
}

/// A process saw VCC reject the token of `generation` at `now`.
pub fn rejected(record: &StoreRecord, generation: u64, now: u64) -> Rejection {
    if record.generation != generation || record.token.is_none() {
        return Rejection::Stale;
    }
    let mut r = record.clone();
    r.token = None;
    r.rejected = true;
    if record.probation {
        r.storm_streak = r.storm_streak.saturating_add(1);
        r.cooldown_until = now.saturating_add(RetryPolicy::rejected_cooldown(r.storm_streak));
        r.probation = true;
        return Rejection::Storm(r);
    }
    Rejection::Dropped(r)
}

/// A process saw the token of `generation` work: its probation (and the storm streak)
/// ends. `None` when there is nothing to write.
pub fn confirmed(record: &StoreRecord, generation: u64) -> Option<StoreRecord> {
    if record.generation != generation || !record.probation || record.token.is_none() {
        return None;
    }
    Some(StoreRecord { probation: false, storm_streak: 0, cooldown_until: 0, ..record.clone() })
}

/// How long the store keeps a record: an hour past the later of its token's expiry and
/// its cooldown, so a record nobody uses goes away by itself.
pub fn record_ttl_ms(record: &StoreRecord, now: u64) -> u64 {
    let until = record.token.as_ref().map_or(0, |t| t.expires_at).max(record.cooldown_until).max(now);
    until - now + 3_600_000
}

/// The lock's lease: twice the token request's deadline. A holder that dies holds it no
/// longer; one that is merely slow may see another process fetch beside it (two tokens,
/// never none).
pub fn lock_lease_ms(timeout_ms: u32) -> u64 {
    2 * u64::from(timeout_ms)
}

/// How long a process polls the record while another holds the lock, before its
/// `attempt`-th look (from 0): 25 ms doubling to 400 ms. A token request takes tens to
/// hundreds of ms; a lock whose holder died frees itself only at the lease's end.
pub fn poll_delay_ms(attempt: u32) -> u64 {
    (25u64 << attempt.min(4)).min(400)
}

/// How long one store operation may take before the store counts as failing.
pub fn op_timeout_ms(timeout_ms: u32) -> u64 {
    u64::from(timeout_ms).min(2_000)
}

/// How long a refresh that found another process refreshing waits before it looks again
/// (the token is still in use meanwhile).
pub const REFRESH_HOLD_MS: u64 = 1_000;

pub use super::breaker::{Breaker, BREAKER_OPEN_MS};

#[cfg(test)]
mod tests {
    use super::*;

    const M: Margins = Margins { soft_cap_ms: 300_000, hard_cap_ms: 60_000 };

    fn tok(v: &str, at: u64, lifetime: u64) -> Token {
        Token { value: AccessToken::new(v.into()), obtained_at: at, expires_at: at + lifetime }
    }

    #[test]
    fn a_record_reads_back_as_written_and_nothing_else_reads_as_one() {
        let r = StoreRecord {
            generation: 1_795_564_800_123,
            token: Some(tok("eyJ.a|b.c", 10, 3_600_000)),
            probation: true,
            rejected: false,
            storm_streak: 2,
            cooldown_until: 99,
        };
        assert_eq!(StoreRecord::decode(&r.encode()), Some(r.clone()));
        let empty = StoreRecord { token: None, rejected: true, ..r };
        assert_eq!(StoreRecord::decode(&empty.encode()), Some(empty));
        for bad in [
            "",
            "vcc-auth-store-0|1|2|3|0|0|0|t",
            "vcc-auth-store-1|1|2|3|0|0|0",
            "vcc-auth-store-1|x|2|3|0|0|0|t",
            "vcc-auth-store-1|1|5|3|0|0|0|t",
            "vcc-auth-store-1|1|2|3|9|0|0|t",
            "vcc-auth-store-1|1|2|3|0|99999999999|0|t",
        ] {
            assert_eq!(StoreRecord::decode(bad), None, "{bad}");
        }
        assert!(!format!("{:?}", StoreRecord::decode("vcc-auth-store-1|1|2|3|0|0|0|secret-tok")).contains("secret-tok"));
    }

    #[test]
    fn fresh_is_used_refresh_ahead_is_refreshed_by_one_and_stale_is_fetched() {
        let r = written(None, tok("A", 0, 3_600_000), 0);
        assert_eq!(read(Some(&r), M, 1_000), Read::Use(tok("A", 0, 3_600_000)));
        assert_eq!(read(Some(&r), M, 3_300_000), Read::Refresh(tok("A", 0, 3_600_000)));
        assert_eq!(read(Some(&r), M, 3_540_000), Read::Fetch, "inside the hard margin");
        assert_eq!(read(Some(&r), M, 3_600_000), Read::Fetch);
        assert_eq!(read(None, M, 0), Read::Fetch);
    }

    #[test]
    fn a_revocation_seen_by_many_drops_one_generation_once() {
        let r = written(None, tok("A", 1_000, 3_600_000), 1_000);
        assert_eq!((r.generation, r.probation), (1_000, false));
        let Rejection::Dropped(dropped) = rejected(&r, r.generation, 2_000) else { panic!() };
        assert_eq!((dropped.token.as_ref(), dropped.rejected), (None, true));
        assert_eq!(rejected(&dropped, r.generation, 2_001), Rejection::Stale, "already dropped");
        // The replacement is on probation, with a later generation.
        let b = written(Some(&dropped), tok("B", 2_100, 3_600_000), 2_100);
        assert!(b.generation > r.generation && b.probation && !b.rejected);
        assert_eq!(rejected(&b, r.generation, 2_200), Rejection::Stale, "an old generation never drops a newer one");
        // Seen to work: off probation.
        let ok = confirmed(&b, b.generation).unwrap();
        assert!(!ok.probation);
        assert_eq!(confirmed(&ok, b.generation), None, "nothing more to write");
        // A revocation of the confirmed one is a revocation again, not a storm.
        assert!(matches!(rejected(&ok, ok.generation, 3_000), Rejection::Dropped(_)));
    }

    #[test]
    fn a_replacement_rejected_in_turn_cools_the_fleet_down() {
        let a = written(None, tok("A", 0, 3_600_000), 0);
        let Rejection::Dropped(d) = rejected(&a, a.generation, 10) else { panic!() };
        let b = written(Some(&d), tok("B", 20, 3_600_000), 20);
        let Rejection::Storm(s) = rejected(&b, b.generation, 30) else { panic!() };
        assert_eq!((s.storm_streak, s.cooldown_until), (1, 1_030));
        assert_eq!(read(Some(&s), M, 500), Read::Cooldown(1_030));
        assert_eq!(read(Some(&s), M, 1_030), Read::Fetch);
        // The next one is on probation too; dying again doubles the cooldown.
        let c = written(Some(&s), tok("C", 1_040, 3_600_000), 1_040);
        assert!(c.probation);
        let Rejection::Storm(s2) = rejected(&c, c.generation, 1_050) else { panic!() };
        assert_eq!((s2.storm_streak, s2.cooldown_until), (2, 3_050));
        // Working ends the streak.
        let d = written(Some(&s2), tok("D", 3_060, 3_600_000), 3_060);
        let ok = confirmed(&d, d.generation).unwrap();
        assert_eq!((ok.storm_streak, ok.cooldown_until, ok.probation), (0, 0, false));
    }

    #[test]
    fn generations_only_grow_and_records_expire_after_their_token() {
        let old = StoreRecord { generation: 5_000, ..StoreRecord::default() };
        assert_eq!(written(Some(&old), tok("A", 0, 10), 100).generation, 5_001);
        assert_eq!(written(Some(&old), tok("A", 0, 10), 9_000).generation, 9_000);
        let r = written(None, tok("A", 0, 60_000), 0);
        assert_eq!(record_ttl_ms(&r, 1_000), 59_000 + 3_600_000);
        assert_eq!(lock_lease_ms(10_000), 20_000);
        assert_eq!([0, 1, 4, 9].map(poll_delay_ms), [25, 50, 400, 400]);
        assert_eq!(op_timeout_ms(10_000), 2_000);
        assert_eq!(op_timeout_ms(500), 500);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a record holds (a token of any text, `|` included), it reads back
            /// as written; and a record's text with anything appended to a number field
            /// is no record.
            #[test]
            fn every_record_reads_back_as_written(
                generation in any::<u64>(),
                obtained in 0u64..u64::MAX / 2,
                lifetime in 1u64..u64::MAX / 2,
                token in proptest::option::of(".{1,40}"),
                probation in any::<bool>(),
                rejected in any::<bool>(),
                storm_streak in any::<u32>(),
                cooldown_until in any::<u64>(),
            ) {
                let token = token.map(|v| tok(&v, obtained, lifetime));
                let r = StoreRecord { generation, token, probation, rejected, storm_streak, cooldown_until };
                let text = r.encode();
                prop_assert_eq!(StoreRecord::decode(&text), Some(r));
                let damaged = text.replacen('|', "|x", 1);
                prop_assert_eq!(StoreRecord::decode(&damaged), None);
            }
        }
    }
}
