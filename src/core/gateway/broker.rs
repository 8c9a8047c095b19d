//! The token broker's policy: which Durable Object holds a scope's token, where it is
//! placed, when its alarm refreshes, how long an isolate keeps the broker's answer, and
//! when an isolate stops asking a failing broker. No I/O: the glue (`glue/broker.rs`)
//! carries it out.
//!
//! One `TokenBroker` object per (auth base, client id, scope set) holds the token for
//! the whole fleet, in the same [`TokenCache`](crate::core::cache::TokenCache) the
//! isolates use, with the token's generation (its serial) so that a 401 seen by any
//! number of isolates drops it once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::config::Region;
use crate::core::scope::ScopeSet;
use crate::core::secret::AccessToken;

/// An isolate's call to the broker object of its scope set: `token(ask)`. One Rust
/// type for both sides of the RPC (serde-wasm-bindgen in each, `glue/gateway/messages.rs`),
/// so neither side reads the other's members by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerAsk {
    /// The scope set (an object serves one).
    pub scope: String,
    /// Generations this isolate saw VCC reject since its last call: each is dropped if
    /// it is still the current one (`TokenCache::invalidate_generation`).
    #[serde(default)]
    pub rejected: Vec<BrokerRejection>,
}

/// One 401 `invalid_token` an isolate saw: which generation, whose call, sent when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRejection {
    /// The rejected token's generation.
    pub generation: u64,
    /// Who called (a key id or a person; the storm rule tells callers apart).
    pub caller: String,
    /// When the rejected call was sent (ms since the epoch).
    pub sent_at: u64,
}

/// How many rejections an isolate keeps for its next call to the broker.
pub const MAX_REPORTED_REJECTIONS: usize = 8;

/// `confirm(c)`: a token of generation `generation`, which replaced a rejected one,
/// worked for `caller`'s call sent at `sent_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConfirm {
    /// The scope set.
    pub scope: String,
    /// The generation that worked.
    pub generation: u64,
    /// Whose call it was.
    #[serde(default)]
    pub caller: String,
    /// When that call was sent.
    #[serde(default)]
    pub sent_at: u64,
}

/// The broker's answer to a [`BrokerAsk`]: a token, or why there is none (an answer,
/// not a broker failure: VCC refused, or the broker is misconfigured). Externally tagged
/// (`{"token": {...}}` or `{"refused": {...}}`): read without buffering.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BrokerAnswer {
    /// A token.
    Token(BrokerToken),
    /// No token.
    Refused(BrokerRefusal),
}

/// A token from the broker, with what an isolate needs to keep it (L1) and to report on it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerToken {
    /// The token.
    #[serde(with = "crate::core::secret::exposed")]
    pub token: AccessToken,
    /// Its generation; 0 when it was replaced while the call ran (usable now, not worth
    /// keeping).
    pub generation: u64,
    /// Whether the broker had it cached.
    pub cached: bool,
    /// When the broker will refresh it.
    pub refresh_at: u64,
    /// Its hard expiry margin: no isolate keeps it past this.
    pub use_until: u64,
    /// When it was requested.
    #[serde(default)]
    pub obtained_at: Option<u64>,
    /// When it expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// It replaced a rejected token and has not been seen to work: an isolate that sees
    /// it work says so ([`BrokerConfirm`]).
    #[serde(default)]
    pub probation: bool,
    /// The broker's counters for the scope set (the fleet's).
    #[serde(default)]
    pub fetches: u32,
    /// As `fetches`.
    #[serde(default)]
    pub refreshes: u32,
    /// As `fetches`.
    #[serde(default)]
    pub failures: u32,
    /// Until when the broker cools down (VCC rejected fresh tokens), for `/healthz`.
    #[serde(default)]
    pub cooldown_until: Option<u64>,
}

/// Why the broker has no token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRefusal {
    /// The error's code (an `ErrorCode`'s string).
    pub error: String,
    /// When to ask again (a cooldown), in ms.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// For a broker whose settings are invalid: the setting at fault (never its value).
    #[serde(default)]
    pub setting: Option<String>,
}

/// What a broker object keeps in its storage: its token, so a restarted object serves
/// it instead of fetching one. Storage holds a secret: nothing of it is logged.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRecord {
    /// The scope set.
    pub scope: String,
    /// The token.
    #[serde(with = "crate::core::secret::exposed")]
    pub token: AccessToken,
    /// When it was requested.
    pub obtained_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// Its generation.
    pub generation: u64,
    /// When the scope set was last asked for (the alarm's idle rule).
    #[serde(default)]
    pub last_used: u64,
}

/// How long an isolate waits for the broker before it fetches the token itself.
pub const BROKER_TIMEOUT_MS: u64 = 3_000;
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

pub use crate::core::breaker::{Breaker, BREAKER_OPEN_MS};

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
    fn messages_cross_as_camel_case_json_and_a_token_needs_its_members() {
        let ask: BrokerAsk =
            serde_json::from_str(r#"{"scope":"stats","rejected":[{"generation":4,"caller":"ops","sentAt":9}]}"#)
                .unwrap();
        let r = BrokerRejection { generation: 4, caller: "ops".into(), sent_at: 9 };
        assert_eq!(ask, BrokerAsk { scope: "stats".into(), rejected: vec![r] });
        let ask: BrokerAsk = serde_json::from_str(r#"{"scope":"stats"}"#).unwrap();
        assert!(ask.rejected.is_empty());
        let answer: BrokerAnswer = serde_json::from_str(
            r#"{"token":{"token":"t","generation":3,"cached":true,"refreshAt":10,"useUntil":20}}"#,
        )
        .unwrap();
        let BrokerAnswer::Token(t) = answer else { panic!("a token") };
        assert_eq!((t.token.expose(), t.generation, t.refresh_at, t.use_until), ("t", 3, 10, 20));
        assert!(!format!("{t:?}").contains("\"t\""), "Debug shows no token");
        let answer: BrokerAnswer =
            serde_json::from_str(r#"{"refused":{"error":"token_rejected","retryAfterMs":900}}"#).unwrap();
        assert!(matches!(answer, BrokerAnswer::Refused(BrokerRefusal { retry_after_ms: Some(900), .. })));
        let back = serde_json::to_value(BrokerAnswer::Refused(BrokerRefusal {
            error: "invalid_config".into(),
            retry_after_ms: None,
            setting: Some("VCC_CLIENT_ID".into()),
        }))
        .unwrap();
        assert_eq!(back["refused"]["setting"], "VCC_CLIENT_ID");
        assert!(
            serde_json::from_str::<BrokerAnswer>(r#"{"token":{"generation":3}}"#).is_err(),
            "a token needs its token"
        );
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
}
