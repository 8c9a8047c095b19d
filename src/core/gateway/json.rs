//! The JSON the gateway writes itself: refusals and `/healthz`. Hand-written, because a
//! JSON serializer would add more to the wasm than these few shapes need; every string
//! is escaped, so the output is valid JSON whatever goes in.

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
    /// The signed-in person's `sub`, once known.
    pub person: Option<&'a str>,
    /// The person's email: only with `ACCESS_LOG_EMAIL`.
    pub email: Option<&'a str>,
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
    if let Some(p) = l.person {
        string(&mut s, ",\"person\":", Some(p));
    }
    if let Some(e) = l.email {
        string(&mut s, ",\"email\":", Some(e));
    }
    string(&mut s, ",\"scope\":", l.scope);
    string(&mut s, ",\"cache\":", Some(l.cache));
    string(&mut s, ",\"tokens\":", Some(l.tokens));
    if let Some(d) = l.detail {
        string(&mut s, ",\"detail\":", Some(d));
    }
    s.push('}');
    s
}

/// `/healthz` body, one member per cached scope, so a status page can draw a countdown:
/// `{"ok":true,"scopes":{"<scope>":{"expiresInSeconds":n,"lifetimeSeconds":n,
/// "refreshInSeconds":n,"cooldownSeconds":n,"fetches":n,"refreshes":n,"failures":n,
/// "lastError":"code"}}}`. `cooldownSeconds` is set while VCC's rejection of fresh tokens
/// holds token requests back.
/// Times are `null` while no token is cached; `lastError` is a stable code (never a
/// message, which could name upstream details) or `null`. Scopes are validated
/// (`[a-z0-9._:-]` and spaces), so escaping is a formality.
/// What `/healthz` says of the gateway as a whole.
#[derive(Clone, Debug, Default)]
pub struct HealthAbout<'a> {
    /// Where tokens come from: `"isolate"` (each isolate its own) or `"broker"`.
    pub tokens: &'a str,
    /// The broker's last error code, if any.
    pub broker_error: Option<&'a str>,
    /// Whether the `GATEWAY_RATE_LIMIT` binding is there.
    pub rate_limit: bool,
    /// People's sign-in: `off` (not configured), `on`, or `jwks_unavailable` (the
    /// issuer's keys could not be fetched last time; cached keys keep working).
    pub identity: &'a str,
    /// Each key's id and expiry (Unix ms): ids only, never a key or digest.
    pub keys: Vec<(&'a str, Option<u64>)>,
}

/// `/healthz` to a caller without the admin role: that the gateway is up, nothing more.
pub const HEALTH_LIVENESS: &str = "{\"ok\":true}";

/// `/whoami` without a credential.
pub const WHOAMI_NOBODY: &str = "{\"kind\":\"none\",\"scopes\":[],\"admin\":false}";

/// Who `/whoami` describes.
#[derive(Clone, Copy, Debug)]
pub enum Whom<'a> {
    /// A gateway key, by its id.
    Key(&'a str),
    /// A signed-in person: their `sub`, and `name` if the issuer gave one.
    Person(&'a str, Option<&'a str>),
}

/// `/whoami`: `{"kind":"key","id":..,"scopes":[..],"admin":bool}` or
/// `{"kind":"person","sub":..,"name":..|null,"scopes":[..],"admin":bool}`. Never a key,
/// a token or an email.
pub fn whoami_json(whom: Whom<'_>, scopes: &[String], admin: bool) -> String {
    let mut s = String::new();
    match whom {
        Whom::Key(id) => {
            s.push_str("{\"kind\":\"key\",\"id\":\"");
            push_json_str(&mut s, id);
            s.push('"');
        }
        Whom::Person(sub, name) => {
            s.push_str("{\"kind\":\"person\",\"sub\":\"");
            push_json_str(&mut s, sub);
            s.push_str("\",\"name\":");
            match name {
                Some(n) => {
                    s.push('"');
                    push_json_str(&mut s, n);
                    s.push('"');
                }
                None => s.push_str("null"),
            }
        }
    }
    s.push_str(",\"scopes\":[");
    for (i, scope) in scopes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        push_json_str(&mut s, scope);
        s.push('"');
    }
    s.push_str(if admin { "],\"admin\":true}" } else { "],\"admin\":false}" });
    s
}

/// `/healthz` with [`HealthAbout`]: `{"ok":true,"tokens":"isolate"|"broker",
/// "brokerError":code|null,"rateLimit":"on"|"off","keys":[{"id":..,
/// "expiresInSeconds":n|null,"expired":bool}],"scopes":{...}}` (scopes as in
/// [`health_json`]).
pub fn health_json_about(now_ms: u64, scopes: &[(&str, Info)], about: &HealthAbout<'_>) -> String {
    let mut s = String::from("{\"ok\":true,\"tokens\":\"");
    push_json_str(&mut s, about.tokens);
    s.push_str("\",\"brokerError\":");
    match about.broker_error {
        Some(code) => {
            s.push('"');
            push_json_str(&mut s, code);
            s.push('"');
        }
        None => s.push_str("null"),
    }
    s.push_str(if about.rate_limit { ",\"rateLimit\":\"on\"" } else { ",\"rateLimit\":\"off\"" });
    s.push_str(",\"identity\":\"");
    push_json_str(&mut s, if about.identity.is_empty() { "off" } else { about.identity });
    s.push_str("\",\"keys\":[");
    for (i, (id, expires)) in about.keys.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"id\":\"");
        push_json_str(&mut s, id);
        s.push_str("\",\"expiresInSeconds\":");
        match expires {
            Some(e) => push_u64(&mut s, e.saturating_sub(now_ms) / 1000),
            None => s.push_str("null"),
        }
        s.push_str(if expires.is_some_and(|e| now_ms >= e) { ",\"expired\":true}" } else { ",\"expired\":false}" });
    }
    s.push_str("],");
    let scopes = health_json(now_ms, scopes);
    s.push_str(scopes.strip_prefix("{\"ok\":true,").unwrap_or(&scopes));
    s
}

/// The per-scope part of `/healthz`.
pub fn health_json(now_ms: u64, scopes: &[(&str, Info)]) -> String {
    let secs = |s: &mut String, name: &str, v: Option<u64>| {
        s.push_str(name);
        match v {
            Some(ms) => push_u64(s, ms / 1000),
            None => s.push_str("null"),
        }
    };
    let mut s = String::from("{\"ok\":true,\"scopes\":{");
    for (i, (scope, info)) in scopes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        push_json_str(&mut s, scope);
        s.push_str("\":{");
        secs(&mut s, "\"expiresInSeconds\":", info.expires_at.map(|e| e.saturating_sub(now_ms)));
        let lifetime = info.expires_at.zip(info.obtained_at).map(|(e, o)| e.saturating_sub(o));
        secs(&mut s, ",\"lifetimeSeconds\":", lifetime);
        secs(&mut s, ",\"refreshInSeconds\":", info.refresh_at.map(|r| r.saturating_sub(now_ms)));
        let cooldown = info.cooldown_until.filter(|until| *until > now_ms).map(|until| until - now_ms + 999);
        secs(&mut s, ",\"cooldownSeconds\":", cooldown);
        for (name, n) in [("fetches", info.fetches), ("refreshes", info.refreshes), ("failures", info.failures)] {
            s.push_str(",\"");
            s.push_str(name);
            s.push_str("\":");
            push_u64(&mut s, u64::from(n));
        }
        s.push_str(",\"lastError\":");
        match &info.last_error {
            Some(e) => {
                s.push('"');
                s.push_str(e.code.as_str());
                s.push('"');
            }
            None => s.push_str("null"),
        }
        s.push('}');
    }
    s.push_str("}}");
    s
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
            person: None,
            email: None,
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
    fn whoami_and_the_persons_log_line_parse_back() {
        let v: serde_json::Value =
            serde_json::from_str(&whoami_json(Whom::Person("7335\"d4", Some("Ana")), &["stats".into()], true)).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["sub"].as_str(), v["name"].as_str()),
            (Some("person"), Some("7335\"d4"), Some("Ana"))
        );
        assert_eq!((v["scopes"][0].as_str(), v["admin"].as_bool()), (Some("stats"), Some(true)));
        let v: serde_json::Value = serde_json::from_str(&whoami_json(Whom::Key("wallboard"), &[], false)).unwrap();
        assert_eq!((v["id"].as_str(), v.get("name")), (Some("wallboard"), None));
        let line =
            log_json(&LogLine { method: "GET", cache: "-", tokens: "-", person: Some("7335"), ..Default::default() });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!((v["person"].as_str(), v.get("email")), (Some("7335"), None));
    }

    #[test]
    fn json_bodies_are_valid() {
        let v: serde_json::Value = serde_json::from_str(&Refusal::RouteNotFound.json()).unwrap();
        assert_eq!(v["error"], "route_not_found");
        let v: serde_json::Value = serde_json::from_str(&error_json("x", "a \"quoted\" \\ thing\n")).unwrap();
        assert_eq!(v["message"], "a \"quoted\" \\ thing ");
        assert_eq!(health_json(0, &[]), "{\"ok\":true,\"scopes\":{}}");
    }

    #[test]
    fn health_says_the_mode_the_limit_and_the_key_ids() {
        let about = HealthAbout {
            tokens: "broker",
            broker_error: Some("timeout"),
            rate_limit: true,
            identity: "on",
            keys: vec![("wallboard", None), ("old", Some(5_000)), ("new", Some(70_000))],
        };
        let v: serde_json::Value = serde_json::from_str(&health_json_about(10_000, &[], &about)).unwrap();
        assert_eq!(v["tokens"], "broker");
        assert_eq!(v["brokerError"], "timeout");
        assert_eq!(v["rateLimit"], "on");
        assert_eq!(v["identity"], "on");
        assert_eq!(v["keys"][0]["id"], "wallboard");
        assert!(v["keys"][0]["expiresInSeconds"].is_null());
        assert_eq!(v["keys"][1]["expired"], true);
        assert_eq!(
            (v["keys"][2]["expired"].as_bool(), v["keys"][2]["expiresInSeconds"].as_u64()),
            (Some(false), Some(60))
        );
        assert!(v["scopes"].is_object());
        let off = health_json_about(0, &[], &HealthAbout { tokens: "isolate", ..HealthAbout::default() });
        let v: serde_json::Value = serde_json::from_str(&off).unwrap();
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
        let h = health_json(118_500, &[("stats", cached), ("a:read b:read", Info::default())]);
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
        let cooling = health_json(118_500, &[("stats", Info { cooldown_until: Some(120_000), ..Info::default() })]);
        assert!(cooling.contains("\"cooldownSeconds\":2,"), "rounded up: {cooling}");
        // past the expiry the countdown stops at zero rather than wrapping
        let late = health_json(200_000, &[("stats", Info { expires_at: Some(160_000), ..Info::default() })]);
        assert!(late.contains("\"expiresInSeconds\":0,"), "{late}");
    }
}
