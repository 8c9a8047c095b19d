//! The JSON the gateway writes: refusals and the log line by hand (one string per
//! request, built without a serializer: measured, that is the cheapest way on the hot
//! path; every string is escaped, so the output is valid JSON whatever goes in), and
//! `/healthz` as a serde type.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Misconfigured, Refusal};
use crate::core::cache::Info;
use crate::core::url::push_u64;

/// `{"error": code, "message": message}`. Both are our own text (codes are
/// `[a-z_]`, messages static or setting names); quotes and backslashes are escaped
/// anyway so the output is always valid JSON.
pub fn error_json(code: &str, message: &str) -> String {
    let mut s = String::with_capacity(32 + message.len());
    s.push_str("{\"error\":\"");
    push_json_str(&mut s, code);
    s.push_str("\",\"message\":\"");
    push_json_str(&mut s, message);
    s.push_str("\"}");
    s
}

/// The 500 every request gets while a setting is bad:
/// `{"error":"gateway_misconfigured","message":"SETTING problem","setting":"SETTING"}`.
pub fn misconfigured_json(m: &Misconfigured) -> String {
    let mut s = error_json(Refusal::Misconfigured.code(), &m.message());
    s.pop();
    s.push_str(",\"setting\":\"");
    push_json_str(&mut s, m.setting);
    s.push_str("\"}");
    s
}

pub(super) fn push_json_str(s: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
}

/// What one request's log line says. Never a token, key, digest, secret, path or query:
/// the route is the matched prefix, the key its id.
#[derive(Clone, Debug, Default)]
pub struct LogLine<'a> {
    /// The request's method, as the caller sent it (escaped: it is untrusted).
    pub method: &'a str,
    /// What served it: `/healthz`, `assets`, a route prefix, or empty.
    pub route: &'a str,
    /// The answer's status.
    pub status: u16,
    /// Time to the answer's head, in ms.
    pub ms: u64,
    /// The key's id, once known.
    pub key: Option<&'a str>,
    /// The scope set the route needs.
    pub scope: Option<&'a str>,
    /// How the token cache served it (`hit`, `miss`, ...) or `-`.
    pub cache: &'a str,
    /// Where the token came from (`l1`, `broker`, `fallback`, `isolate`) or `-`.
    pub tokens: &'a str,
    /// A code: the refusal's, or the more precise one of what caused it.
    pub detail: Option<&'a str>,
}

/// The request's JSON log line: `{"method":..,"route":..,"status":n,"ms":n,"key":..|null,
/// "scope":..|null,"cache":..,"tokens":..[,"detail":..]}`. Written here rather than by
/// `JSON.stringify` in the glue: one string crosses to JS instead of an object built
/// member by member (measured: that was a tenth of the gateway's CPU per request).
pub fn log_json(l: &LogLine<'_>) -> String {
    let mut s = String::with_capacity(160);
    let string = |s: &mut String, name: &str, v: Option<&str>| {
        s.push_str(name);
        match v {
            Some(v) => {
                s.push('"');
                push_json_str(s, v);
                s.push('"');
            }
            None => s.push_str("null"),
        }
    };
    string(&mut s, "{\"method\":", Some(l.method));
    string(&mut s, ",\"route\":", Some(l.route));
    s.push_str(",\"status\":");
    push_u64(&mut s, u64::from(l.status));
    s.push_str(",\"ms\":");
    push_u64(&mut s, l.ms);
    string(&mut s, ",\"key\":", l.key);
    string(&mut s, ",\"scope\":", l.scope);
    string(&mut s, ",\"cache\":", Some(l.cache));
    string(&mut s, ",\"tokens\":", Some(l.tokens));
    if let Some(d) = l.detail {
        string(&mut s, ",\"detail\":", Some(d));
    }
    s.push('}');
    s
}

/// What `/healthz` says of the gateway as a whole.
#[derive(Clone, Debug, Default)]
pub struct HealthAbout<'a> {
    /// Where tokens come from: `"isolate"` (each isolate its own) or `"broker"`.
    pub tokens: &'a str,
    /// The broker's last error code, if any.
    pub broker_error: Option<&'a str>,
    /// Whether the `GATEWAY_RATE_LIMIT` binding is there.
    pub rate_limit: bool,
    /// Each key's id and expiry (Unix ms): ids only, never a key or digest.
    pub keys: Vec<(&'a str, Option<u64>)>,
}

/// The `/healthz` body (JSON through serde: serde_json natively, serde-wasm-bindgen
/// and the host's `JSON.stringify` in the gateway):
/// `{"ok":true,"tokens":"isolate"|"broker","brokerError":code|null,"rateLimit":"on"|"off",
/// "keys":[{"id":..,"expiresInSeconds":n|null,"expired":bool}],"scopes":{"<scope>":
/// {"expiresInSeconds":n,"lifetimeSeconds":n,"refreshInSeconds":n,"cooldownSeconds":n,
/// "fetches":n,"refreshes":n,"failures":n,"lastError":"code"}}}`: one member per scope
/// so a status page can draw a countdown. `cooldownSeconds` is set while VCC's rejection
/// of fresh tokens holds token requests back. Times are `null` while no token is
/// cached; `lastError` is a stable code (never a message, which could name upstream
/// details) or `null`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health<'a> {
    /// Always true: the gateway answered.
    pub ok: bool,
    /// [`HealthAbout::tokens`].
    pub tokens: &'a str,
    /// [`HealthAbout::broker_error`].
    pub broker_error: Option<&'a str>,
    /// `"on"` or `"off"`.
    pub rate_limit: &'static str,
    /// The keys, in `GATEWAY_KEYS` order.
    pub keys: Vec<KeyHealth<'a>>,
    /// Each scope set the gateway has served.
    pub scopes: BTreeMap<&'a str, ScopeHealth>,
}

/// One key in [`Health`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyHealth<'a> {
    /// The key's id.
    pub id: &'a str,
    /// Seconds to its expiry (0 once past), `null` when it has none.
    pub expires_in_seconds: Option<u64>,
    /// Whether it has expired.
    pub expired: bool,
}

/// One scope set in [`Health`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeHealth {
    /// Seconds to the token's expiry (0 once past).
    pub expires_in_seconds: Option<u64>,
    /// The token's whole lifetime.
    pub lifetime_seconds: Option<u64>,
    /// Seconds to its refresh-ahead time.
    pub refresh_in_seconds: Option<u64>,
    /// Seconds until token requests resume after VCC rejected fresh tokens (rounded up).
    pub cooldown_seconds: Option<u64>,
    /// Tokens fetched with none to replace.
    pub fetches: u32,
    /// Tokens that replaced one.
    pub refreshes: u32,
    /// Failed token requests.
    pub failures: u32,
    /// The last failure's code.
    pub last_error: Option<&'static str>,
}

impl ScopeHealth {
    /// What `/healthz` says of a scope whose cache is `info`, at `now_ms`.
    pub fn of(info: &Info, now_ms: u64) -> Self {
        let secs = |ms: u64| ms / 1000;
        ScopeHealth {
            expires_in_seconds: info.expires_at.map(|e| secs(e.saturating_sub(now_ms))),
            lifetime_seconds: info.expires_at.zip(info.obtained_at).map(|(e, o)| secs(e.saturating_sub(o))),
            refresh_in_seconds: info.refresh_at.map(|r| secs(r.saturating_sub(now_ms))),
            cooldown_seconds: info
                .cooldown_until
                .filter(|until| *until > now_ms)
                .map(|until| secs(until - now_ms + 999)),
            fetches: info.fetches,
            refreshes: info.refreshes,
            failures: info.failures,
            last_error: info.last_error.as_ref().map(|e| e.code.as_str()),
        }
    }
}

/// `/healthz` for `scopes` (each scope set's cache) and the gateway as a whole.
pub fn health<'a>(now_ms: u64, scopes: &[(&'a str, Info)], about: &HealthAbout<'a>) -> Health<'a> {
    Health {
        ok: true,
        tokens: about.tokens,
        broker_error: about.broker_error,
        rate_limit: if about.rate_limit { "on" } else { "off" },
        keys: about
            .keys
            .iter()
            .map(|(id, expires)| KeyHealth {
                id,
                expires_in_seconds: expires.map(|e| e.saturating_sub(now_ms) / 1000),
                expired: expires.is_some_and(|e| now_ms >= e),
            })
            .collect(),
        scopes: scopes.iter().map(|(scope, info)| (*scope, ScopeHealth::of(info, now_ms))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misconfiguration_names_the_setting_as_a_member() {
        let m = Misconfigured { setting: "VCC_CLIENT_ID", problem: "is required".into() };
        let v: serde_json::Value = serde_json::from_str(&misconfigured_json(&m)).unwrap();
        assert_eq!(v["error"], "gateway_misconfigured");
        assert_eq!(v["message"], "VCC_CLIENT_ID is required");
        assert_eq!(v["setting"], "VCC_CLIENT_ID");
    }

    #[test]
    fn log_line_parses_back_and_untrusted_text_stays_in_its_field() {
        let line = LogLine {
            method: "GE\"T\\\n\u{7}\",\"status\":1",
            route: "/stats",
            status: 502,
            ms: 17,
            key: Some("wallboard"),
            scope: None,
            cache: "hit",
            tokens: "l1",
            detail: Some("upstream_timeout"),
        };
        let text = log_json(&line);
        assert!(!text.contains('\n') && !text.contains('\u{7}'), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["method"], "GE\"T\\  \",\"status\":1");
        assert_eq!(v["status"], 502);
        assert_eq!(v["ms"], 17);
        assert_eq!(v["key"], "wallboard");
        assert_eq!(v["scope"], serde_json::Value::Null);
        assert_eq!((v["cache"].as_str(), v["tokens"].as_str()), (Some("hit"), Some("l1")));
        assert_eq!(v["detail"], "upstream_timeout");
        assert_eq!(v.as_object().unwrap().len(), 9);
        let v: serde_json::Value =
            serde_json::from_str(&log_json(&LogLine { cache: "-", tokens: "-", ..line })).unwrap();
        assert_eq!(v["cache"], "-");
        let v: serde_json::Value =
            serde_json::from_str(&log_json(&LogLine { method: "GET", cache: "-", tokens: "-", ..Default::default() }))
                .unwrap();
        assert!(v.get("detail").is_none() && v["key"].is_null());
    }

    #[test]
    fn json_bodies_are_valid() {
        let v: serde_json::Value = serde_json::from_str(&Refusal::RouteNotFound.json()).unwrap();
        assert_eq!(v["error"], "route_not_found");
        let v: serde_json::Value = serde_json::from_str(&error_json("x", "a \"quoted\" \\ thing\n")).unwrap();
        assert_eq!(v["message"], "a \"quoted\" \\ thing ");
        let empty = serde_json::to_value(health(0, &[], &HealthAbout::default())).unwrap();
        assert_eq!((empty["ok"].as_bool(), empty["scopes"].as_object().map(|o| o.len())), (Some(true), Some(0)));
    }

    #[test]
    fn health_says_the_mode_the_limit_and_the_key_ids() {
        let about = HealthAbout {
            tokens: "broker",
            broker_error: Some("timeout"),
            rate_limit: true,
            keys: vec![("wallboard", None), ("old", Some(5_000)), ("new", Some(70_000))],
        };
        let v = serde_json::to_value(health(10_000, &[], &about)).unwrap();
        assert_eq!(v["tokens"], "broker");
        assert_eq!(v["brokerError"], "timeout");
        assert_eq!(v["rateLimit"], "on");
        assert_eq!(v["keys"][0]["id"], "wallboard");
        assert!(v["keys"][0]["expiresInSeconds"].is_null());
        assert_eq!(v["keys"][1]["expired"], true);
        assert_eq!(
            (v["keys"][2]["expired"].as_bool(), v["keys"][2]["expiresInSeconds"].as_u64()),
            (Some(false), Some(60))
        );
        assert!(v["scopes"].is_object());
        let v =
            serde_json::to_value(health(0, &[], &HealthAbout { tokens: "isolate", ..HealthAbout::default() })).unwrap();
        assert_eq!((v["rateLimit"].as_str(), v["brokerError"].is_null()), (Some("off"), true));
    }

    #[test]
    fn health_gives_a_countdown_and_never_an_error_message() {
        let cached = Info {
            obtained_at: Some(100_000),
            expires_at: Some(160_000),
            refresh_at: Some(130_000),
            fetches: 1,
            refreshes: 3,
            failures: 2,
            last_error: Some(crate::core::error::VccError::new(
                crate::core::error::ErrorCode::TokenEndpoint,
                "upstream said something private",
            )),
            ..Info::default()
        };
        let about = HealthAbout::default();
        let h =
            serde_json::to_string(&health(118_500, &[("stats", cached), ("a:read b:read", Info::default())], &about))
                .unwrap();
        assert!(!h.contains("private"), "{h}");
        let v: serde_json::Value = serde_json::from_str(&h).unwrap();
        let stats = &v["scopes"]["stats"];
        assert_eq!(stats["expiresInSeconds"], 41);
        assert_eq!(stats["lifetimeSeconds"], 60);
        assert_eq!(stats["refreshInSeconds"], 11);
        assert_eq!(
            (stats["fetches"].as_u64(), stats["refreshes"].as_u64(), stats["failures"].as_u64()),
            (Some(1), Some(3), Some(2))
        );
        assert_eq!(stats["lastError"], "token_endpoint");
        let empty = &v["scopes"]["a:read b:read"];
        assert!(
            empty["expiresInSeconds"].is_null() && empty["lifetimeSeconds"].is_null() && empty["lastError"].is_null()
        );
        assert!(stats["cooldownSeconds"].is_null());
        let cooling = ScopeHealth::of(&Info { cooldown_until: Some(120_000), ..Info::default() }, 118_500);
        assert_eq!(cooling.cooldown_seconds, Some(2), "rounded up");
        // past the expiry the countdown stops at zero rather than wrapping
        let late = ScopeHealth::of(&Info { expires_at: Some(160_000), ..Info::default() }, 200_000);
        assert_eq!(late.expires_in_seconds, Some(0));
    }
}
