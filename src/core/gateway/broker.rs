//! The token broker's policy: which Durable Object holds a scope's token, where it is
//! placed, when its alarm refreshes, how long an isolate keeps the broker's answer, and
//! when an isolate stops asking a failing broker. No I/O: the glue (`glue/broker.rs`)
//! carries it out.
//!
//! One `TokenBroker` object per (auth base, client id, scope set) holds the token for
//! the whole fleet, in the same [`TokenCache`](crate::core::cache::TokenCache) the
//! isolates use, with the token's generation (its serial) so that a 401 seen by any
//! number of isolates drops it once.

use sha2::{Digest, Sha256};

use crate::core::config::Region;
use crate::core::scope::ScopeSet;

/// How long an isolate waits for the broker before it fetches the token itself.
pub const BROKER_TIMEOUT_MS: u64 = 3_000;
/// How long an isolate leaves a failing broker alone (then one call tries it again).
pub const BREAKER_OPEN_MS: u64 = 5_000;
/// How long an isolate keeps an answer whose refresh time has passed (the broker is
/// refreshing it): one broker call per isolate per second at most, not one per request.
pub const L1_GRACE_MS: u64 = 1_000;

/// The broker object's name: the hex SHA-256 of auth base, client id and scope set, so
/// two gateways with the same client share tokens and no name reveals the client.
pub fn object_name(auth_base: &str, client_id: &str, scope: &ScopeSet) -> String {
    let mut h = Sha256::new();
    for part in [auth_base, client_id, scope.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Where to create the object: next to the region's VCC (none for custom base URLs).
pub fn location_hint(region: Option<Region>) -> Option<&'static str> {
    match region? {
        Region::Emea => Some("weur"),
        Region::Nam => Some("enam"),
        Region::Apac => Some("apac"),
    }
}

/// Whether the refresh alarm should fetch a new token: only if the token was asked
/// for within its last lifetime, so an idle scope stops costing token requests.
pub fn alarm_refreshes(last_used: u64, lifetime: u64, now: u64) -> bool {
    last_used.saturating_add(lifetime) > now
}

/// Until when an isolate keeps the broker's answer: its refresh time, or a short grace
/// when that has passed (never past the hard expiry the broker gave).
pub fn l1_until(refresh_at: u64, use_until: u64, now: u64) -> u64 {
    refresh_at.max(now.saturating_add(L1_GRACE_MS).min(use_until))
}

/// A small circuit breaker in front of the broker: after a failure, the isolate fetches
/// tokens itself for [`BREAKER_OPEN_MS`]; then the next call tries the broker again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breaker {
    open_until: u64,
}

impl Breaker {
    /// Whether to ask the broker now.
    pub fn allows(&self, now: u64) -> bool {
        now >= self.open_until
    }

    /// The broker failed (error, overload, timeout): leave it alone for a while.
    pub fn failed(&mut self, now: u64) {
        self.open_until = now.saturating_add(BREAKER_OPEN_MS);
    }

    /// The broker answered.
    pub fn succeeded(&mut self) {
        self.open_until = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_auth_base_client_and_scope_set() {
        let s = |x| ScopeSet::parse(x).unwrap();
        let a = object_name("https://emea.cc.vonage.com", "client", &s("stats"));
        assert_eq!(a.len(), 64);
        assert_eq!(a, object_name("https://emea.cc.vonage.com", "client", &s("stats")));
        assert_ne!(a, object_name("https://nam.cc.vonage.com", "client", &s("stats")));
        assert_ne!(a, object_name("https://emea.cc.vonage.com", "client2", &s("stats")));
        assert_ne!(a, object_name("https://emea.cc.vonage.com", "client", &s("users:read")));
        // the separator keeps the parts apart
        assert_ne!(object_name("ab", "c", &s("stats")), object_name("a", "bc", &s("stats")));
        assert!(!a.contains("client"));
    }

    #[test]
    fn placement_follows_the_region() {
        assert_eq!(location_hint(Some(Region::Emea)), Some("weur"));
        assert_eq!(location_hint(Some(Region::Nam)), Some("enam"));
        assert_eq!(location_hint(Some(Region::Apac)), Some("apac"));
        assert_eq!(location_hint(None), None);
    }

    #[test]
    fn the_alarm_refreshes_only_scopes_used_within_a_lifetime() {
        assert!(alarm_refreshes(10_000, 5_000, 12_500));
        assert!(!alarm_refreshes(10_000, 5_000, 15_000));
        assert!(!alarm_refreshes(0, 5_000, 20_000));
    }

    #[test]
    fn isolates_keep_the_answer_until_refresh_time_then_briefly() {
        assert_eq!(l1_until(50_000, 60_000, 10_000), 50_000);
        assert_eq!(l1_until(5_000, 60_000, 10_000), 11_000);
        assert_eq!(l1_until(5_000, 10_500, 10_000), 10_500, "never past the hard expiry");
    }

    #[test]
    fn the_breaker_opens_on_failure_and_closes_on_success() {
        let mut b = Breaker::default();
        assert!(b.allows(0));
        b.failed(1_000);
        assert!(!b.allows(1_000 + BREAKER_OPEN_MS - 1));
        assert!(b.allows(1_000 + BREAKER_OPEN_MS));
        b.failed(10_000);
        b.succeeded();
        assert!(b.allows(10_001));
    }
}
