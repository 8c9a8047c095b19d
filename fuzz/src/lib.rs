//! What each fuzz target checks. One function per target, taking the raw input.
//!
//! The same file is the body of `tests/fuzz_corpus.rs` (stable, run by `make test` over
//! `fuzz/seeds/`), so a corpus input that once broke a property stays a regression test.
//! Every function panics (an `assert!`) when a property fails: libFuzzer saves the input,
//! the corpus test names the file.
//!
//! Inputs are text. Where a target needs several values, they are separated by NUL
//! bytes (`fields`), so seeds stay readable with `cat -v` and a fuzzer can still put
//! any other control character, quote or backslash inside a value.

use std::borrow::Cow;
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use serde_json::{Map, Value};
use vcc_auth::core::cache::Info;
use vcc_auth::core::config::RawConfig;
use vcc_auth::core::error::{ErrorCode, VccError};
use vcc_auth::core::gateway::identity::{
    judge_header, split, IdentityEnv, Matcher, Member, PolicyRow, MAX_ASSERTION_BYTES,
};
use vcc_auth::core::gateway::Refusal;
use vcc_auth::core::gateway::{
    digest_hex, error_json, health_json_about, log_json, mint, misconfigured_json, split_request_url, Caller, Decision,
    GatewayConfig, GatewayEnv, HealthAbout, Inbound, JsonRows, LogLine, Misconfigured, OriginCheck, RowValue, Verdict,
    BODY_LIMIT, KEY_PREFIX,
};
use vcc_auth::core::retry::RetryPolicy;
use vcc_auth::core::scope::ScopeSet;
use vcc_auth::core::secret::ClientSecret;
use vcc_auth::core::token::{
    classify_401, interpret_token_response, jwt_exp_from_field, jwt_payload_base64, parse_retry_after, Api401, Field,
    OAuthBody, TokenAnswer, MAX_LIFETIME_MS, MIN_LIFETIME_MS,
};
use vcc_auth::core::url::BaseUrl;

/// A target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target, by name: what `tests/fuzz_corpus.rs` runs each seed directory with.
pub const TARGETS: &[(&str, Check)] = &[
    ("scope", scope),
    ("target", target),
    ("token_response", token_response),
    ("error_body", error_body),
    ("api_401", api_401),
    ("retry_after", retry_after),
    ("settings", settings),
    ("decide", decide),
    ("json", json),
    ("identity", identity),
];

/// 2026-11-25T00:00:00Z, the clock of every target that needs one.
const NOW: u64 = 1_795_564_800_000;

/// The client secret of every configuration here: no output may hold it, or any
/// 8 characters of it.
const SECRET: &str = "Fz9-q!sEcReT-w2Lx7#Kp4";

/// The input as `N` text fields split on NUL (missing ones empty; invalid UTF-8 replaced,
/// as the JS host hands the core only valid strings).
fn fields<const N: usize>(data: &[u8]) -> [String; N] {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(N, '\0');
    std::array::from_fn(|_| parts.next().unwrap_or("").to_owned())
}

/// What a JSON string written by the core must read back as: the input with every
/// control character turned into a space, and nothing else changed.
fn cleaned(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Every 8 consecutive characters of the secret that `text` holds.
fn secret_parts(text: &str) -> Vec<String> {
    let chars: Vec<char> = SECRET.chars().collect();
    chars.windows(8).map(|w| w.iter().collect::<String>()).filter(|w| text.contains(w.as_str())).collect()
}

/// Whether `text` holds any 8 consecutive characters of the secret.
fn holds_secret_part(text: &str) -> bool {
    !secret_parts(text).is_empty()
}

fn json_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => o,
        other => panic!("the core wrote JSON that does not parse to an object: {text:?} -> {other:?}"),
    }
}

/// A JSON member as the glue reads it with `JSON.parse` + `Reflect.get`.
fn member(o: Option<&Value>) -> Field {
    match o {
        Some(Value::String(s)) => Field::Str(s.clone()),
        Some(Value::Number(n)) => n.as_f64().map_or(Field::Absent, Field::Num),
        _ => Field::Absent,
    }
}

fn oauth_body(text: &str) -> Option<OAuthBody> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(o) => Some(OAuthBody::from_fields(|k| member(o.get(k)))),
        _ => None,
    }
}

/// The JWT `exp` as the glue extracts it: base64 payload (`atob`), then `JSON.parse`.
fn jwt_exp(token: &str) -> Option<f64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(jwt_payload_base64(token)?).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    match serde_json::from_str::<Value>(&text).ok()? {
        Value::Object(o) => jwt_exp_from_field(member(o.get("exp"))),
        _ => None,
    }
}

/// A path with no way back up: no dot segment, backslash or control character, even
/// after decoding three times and the normalisations servers apply (`;` parameters,
/// trailing dots and spaces dropped).
fn assert_plain_path(path: &str, what: &str) {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..3 {
        bytes = percent_encoding::percent_decode(&bytes).collect();
    }
    assert!(bytes.iter().all(|b| *b >= 0x20 && *b != 0x7f && *b < 0x80), "{what}: control or non-ASCII in {path:?}");
    let text = String::from_utf8_lossy(&bytes).replace('\\', "/");
    for seg in text.split('/').skip(1).filter(|s| !s.is_empty()) {
        let name = seg.split(';').next().unwrap_or("").trim_end_matches(['.', ' ']);
        assert!(!name.is_empty(), "{what}: {path:?} has a segment {seg:?} a server may read as . or ..");
    }
}

fn assert_plain_query(query: &str, what: &str) {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(query).collect();
    assert!(bytes.iter().all(|b| *b >= 0x20 && *b != 0x7f), "{what}: control character in query {query:?}");
    assert!(!query.contains('#'), "{what}: fragment in query {query:?}");
}

/// Error messages are shown and logged: printable, and never the secret.
fn assert_safe_error(e: &VccError, token: Option<&str>) {
    assert!(!e.message.chars().any(char::is_control), "control character in {:?}", e.message);
    assert!(!holds_secret_part(&e.message), "secret in {:?}", e.message);
    if let Some(t) = token.filter(|t| t.len() >= 12) {
        assert!(!e.message.contains(t) && !format!("{e:?}").contains(t), "token in {e:?}");
    }
    assert_eq!(ErrorCode::parse(e.code.as_str()), Some(e.code));
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Scope sets: a set is accepted exactly when each of its scopes is, and what is
/// accepted is canonical (sorted, deduplicated, single spaces), a fixed point, and the
/// same set as the input.
pub fn scope(data: &[u8]) {
    let [input] = fields::<1>(data);
    let parts: Vec<&str> = input.split_whitespace().collect();
    let each_ok = !parts.is_empty() && parts.iter().all(|p| ScopeSet::parse(p).is_ok());
    match ScopeSet::parse(&input) {
        Ok(set) => {
            assert!(each_ok, "{input:?} accepted though one of its scopes is not");
            let canonical: Vec<&str> = set.as_str().split(' ').collect();
            assert!(canonical.windows(2).all(|w| w[0] < w[1]), "not sorted and unique: {:?}", set.as_str());
            assert!(canonical.iter().all(|s| !s.is_empty() && parts.contains(s)), "{:?} from {input:?}", set.as_str());
            assert!(parts.iter().all(|p| canonical.contains(p)), "{input:?} lost a scope: {:?}", set.as_str());
            assert_eq!(ScopeSet::parse(set.as_str()).as_ref(), Ok(&set), "not a fixed point");
            assert!(set.is_subset_of(canonical.iter().copied()) && set.is_subset_of(["*"]));
        }
        Err(e) => {
            assert!(!each_ok, "{input:?} refused though each of its scopes is accepted");
            assert_eq!(e.code, ErrorCode::InvalidConfig);
            assert_safe_error(&e, None);
        }
    }
}

/// Request targets: what the client's `fetch` accepts never leaves the API origin or
/// its prefix, and is plain; the gateway's URL splitting gives back pieces of the URL
/// as sent, nothing normalised.
pub fn target(data: &[u8]) {
    let [input] = fields::<1>(data);
    for base in ["https://api.example:8443/vcc", "https://emea.api.example", "http://127.0.0.1:8080/a/b"] {
        let Ok(b) = BaseUrl::parse(base) else { panic!("fixture base {base}") };
        if let Ok(t) = b.resolve(&input) {
            let url = b.join(&t.path_and_query());
            assert!(url.starts_with(&[base, "/"].concat()), "{input:?} left {base}: {url}");
            assert_plain_path(&t.path, "fetch target");
            assert!(!t.path.contains("//"), "empty segment in {:?}", t.path);
            if let Some(q) = t.query {
                assert_plain_query(q, "fetch target");
            }
        }
    }
    if let Some((origin, path, query)) = split_request_url(&input) {
        assert!(input.starts_with(origin) && origin.contains("://"), "{input:?} -> origin {origin:?}");
        assert!(!origin[origin.find("://").map_or(0, |i| i + 3)..].contains('/'), "path in origin {origin:?}");
        assert!(path.starts_with('/') && !path.contains(['?', '#']), "{input:?} -> path {path:?}");
        let rest = &input[origin.len()..];
        assert!(rest.starts_with(path) || (path == "/" && !rest.starts_with('/')), "{input:?} -> path {path:?}");
        if let Some(q) = query {
            assert!(!q.contains('#') && input.contains(&["?", q].concat()), "{input:?} -> query {q:?}");
        }
    }
}

/// A 200 from the token endpoint: `[expires_in (JSON), token_type, exp payload (JSON),
/// raw access_token, requested_at]`. With no raw token, the token is a JWT whose payload
/// is the third field. A token is only ever accepted with a lifetime inside
/// (0, MAX_LIFETIME_MS], never later than `expires_in` or the JWT's `exp` says.
pub fn token_response(data: &[u8]) {
    let [expires_in, token_type, payload, raw, requested_at] = fields::<5>(data);
    let token = if raw.is_empty() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        ["eyJhbGciOiJSUzI1NiJ9.", &b64.encode(payload.as_bytes()), ".c2ln"].concat()
    } else {
        raw
    };
    let requested_at = requested_at.trim().parse::<u64>().unwrap_or(NOW).min(NOW * 4);
    let expires_in: Value = serde_json::from_str(&expires_in).unwrap_or(Value::String(expires_in));
    let answer = |access_token: &str| {
        let mut body = Map::new();
        body.insert("access_token".into(), Value::String(access_token.to_owned()));
        body.insert("token_type".into(), Value::String(token_type.clone()));
        body.insert("expires_in".into(), expires_in.clone());
        Value::Object(body).to_string()
    };
    let text = answer(&token);
    let parsed = oauth_body(&text);
    let expires_in_ms = parsed.as_ref().and_then(|b| b.expires_in).filter(|s| s.is_finite() && *s > 0.0);
    let exp = jwt_exp(&token);
    match interpret_token_response(200, parsed, jwt_exp, None, requested_at, SECRET) {
        TokenAnswer::Token(t) => {
            assert!(t.value.expose() == token && !token.is_empty());
            assert!(token_type.eq_ignore_ascii_case("bearer"), "accepted token_type {token_type:?}");
            assert_eq!(t.obtained_at, requested_at);
            assert!(t.lifetime() >= MIN_LIFETIME_MS, "a token born expired (or nearly): {t:?}");
            assert!(t.lifetime() <= MAX_LIFETIME_MS, "lifetime past the cap: {t:?}");
            if let Some(s) = expires_in_ms {
                assert!(t.expires_at as f64 <= requested_at as f64 + s * 1000.0 + 1.0, "later than expires_in");
            }
            if let Some(e) = exp.filter(|e| e.is_finite() && *e * 1000.0 > requested_at as f64) {
                assert!(t.expires_at as f64 <= e * 1000.0 + 1.0, "later than the JWT exp {e}");
            }
            assert!(!format!("{t:?}").contains(&token) || token.len() < 12, "Debug shows the token");
        }
        TokenAnswer::Failed { error, retryable } => {
            assert!(!retryable, "a 200 is never retried");
            assert_eq!(error.code, ErrorCode::BadResponse);
            assert_safe_error(&error, None);
            // The token's text never shapes the error: the same answer with another
            // token of the same length (and the same `exp`) fails with the same message.
            let other = answer(&"Q".repeat(token.chars().count()));
            if let TokenAnswer::Failed { error: e2, .. } =
                interpret_token_response(200, oauth_body(&other), |_| exp, None, requested_at, SECRET)
            {
                assert_eq!(e2.message, error.message, "the token's content changed the error");
            }
        }
    }
}

/// A token endpoint error: `[status, body]`. Retried exactly for 429 and 5xx; the
/// RFC 6749 code maps to ours; the server's description, shortened and with the secret
/// scrubbed as the glue does, leaves no part of the secret and no control character.
pub fn error_body(data: &[u8]) {
    let [status, body] = fields::<2>(data);
    let status = status.trim().parse::<u16>().ok().filter(|s| (100..=599).contains(s) && *s != 200).unwrap_or(400);
    let parsed = oauth_body(&body);
    let error = parsed.as_ref().and_then(|b| b.error.clone());
    let description = parsed.as_ref().and_then(|b| b.error_description.clone()).unwrap_or_default();
    let TokenAnswer::Failed { error: e, retryable } =
        interpret_token_response(status, parsed, |_| None, Some(1000), NOW, SECRET)
    else {
        panic!("a {status} gave a token");
    };
    let e = e.scrub(SECRET);
    assert_eq!(retryable, status == 429 || status >= 500, "{status}");
    assert_eq!(e.status, Some(status));
    // A server may send text that merely resembles the secret; what may not reach the
    // message is any part of the secret where the server sent the secret itself.
    let innocent = description.chars().filter(|c| !c.is_control()).collect::<String>().replace(SECRET, "\0");
    for part in secret_parts(&e.message) {
        assert!(innocent.contains(&part), "part of the secret ({part:?}) in {:?}", e.message);
    }
    assert!(!e.message.chars().any(char::is_control), "control character in {:?}", e.message);
    assert_eq!(ErrorCode::parse(e.code.as_str()), Some(e.code));
    assert!(e.message.chars().count() <= 300, "an unbounded message: {} chars", e.message.chars().count());
    if status < 500 && status != 429 {
        let want = match error.as_deref() {
            Some("invalid_client") => ErrorCode::InvalidClient,
            Some("invalid_scope") => ErrorCode::InvalidScope,
            Some("unsupported_grant_type") => ErrorCode::UnsupportedGrantType,
            Some("invalid_request") => ErrorCode::InvalidRequest,
            None if status == 401 => ErrorCode::InvalidClient,
            _ => ErrorCode::TokenEndpoint,
        };
        assert_eq!(e.code, want, "{status} {error:?}");
    }
}

/// An API 401: `[WWW-Authenticate, body]`. Only VCC's "token invalid or expired" answers
/// may trigger a refresh and retry; everything else (a missing scope's
/// `{"message":"Unauthorized"}` above all) must not, or a caller loops.
pub fn api_401(data: &[u8]) {
    let [header, body] = fields::<2>(data);
    let header = (!header.is_empty()).then_some(header);
    let parsed = oauth_body(&body);
    let says = header.as_deref().is_some_and(|h| h.to_ascii_lowercase().contains("error=\"invalid_token\""))
        || parsed.as_ref().is_some_and(|b| {
            b.error.as_deref() == Some("invalid_token")
                || b.error_description.as_deref().is_some_and(|d| d.contains("invalid or has expired"))
        });
    let got = classify_401(header.as_deref(), parsed.as_ref());
    assert_eq!(got == Api401::InvalidToken, says, "{header:?} {body:?} -> {got:?}");
}

/// `Retry-After` and the backoff it feeds: `[value, now_ms, retry, random]`. Whatever
/// the value, a wait is never longer than the policy's caps, and a server's `Retry-After`
/// within the cap is honoured.
pub fn retry_after(data: &[u8]) {
    let [value, now, retry, random] = fields::<4>(data);
    let now = now.trim().parse::<u64>().unwrap_or(NOW);
    let date =
        |v: &str| httpdate::parse_http_date(v).ok()?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64);
    let got = parse_retry_after(&value, now, date);
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(got, v.parse::<u64>().ok().map(|s| s.saturating_mul(1000)), "{value:?}");
    } else if let Some(ms) = got {
        let at = date(v).unwrap_or_else(|| panic!("{value:?} read as {ms} ms but is no HTTP-date"));
        assert_eq!(ms, at.saturating_sub(now));
    }
    let policy = RetryPolicy::default();
    let retry = retry.trim().parse::<u32>().unwrap_or(0);
    let random = random.trim().parse::<f64>().unwrap_or(0.5);
    match policy.delay(retry, got, random) {
        Some(d) => {
            assert!(retry < policy.max_retries);
            assert!(d <= policy.cap_ms.max(policy.retry_after_cap_ms), "{d} ms");
            if let Some(ra) = got {
                assert!(d >= ra, "Retry-After {ra} not honoured: {d}");
            }
        }
        None => assert!(retry >= policy.max_retries || got.is_some_and(|ra| ra > policy.retry_after_cap_ms)),
    }
}

/// `GATEWAY_KEYS` / `GATEWAY_ROUTES` as the glue reads them: the host's JSON parser,
/// then rows of flat members.
fn json_rows(text: &str) -> JsonRows {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return JsonRows::NotJson };
    let rows = match v {
        Value::Array(rows) => rows,
        Value::Object(_) => return JsonRows::Object,
        _ => return JsonRows::NotArray,
    };
    JsonRows::Rows(
        rows.into_iter()
            .map(|row| match row {
                Value::Object(o) => Some(
                    o.into_iter()
                        .map(|(k, v)| {
                            let f = match v {
                                Value::String(s) => RowValue::Text(s),
                                Value::Bool(b) => RowValue::Bool(b),
                                Value::Array(items) => items
                                    .into_iter()
                                    .map(|i| match i {
                                        Value::String(s) => Some(s),
                                        _ => None,
                                    })
                                    .collect::<Option<Vec<_>>>()
                                    .map_or(RowValue::Other, RowValue::List),
                                _ => RowValue::Other,
                            };
                            (k, f)
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect(),
    )
}

fn some(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

/// The gateway's settings: `[GATEWAY_KEYS, ALLOWED_ORIGINS, GATEWAY_ROUTES,
/// UPSTREAM_TIMEOUT_MS, BODY_TIMEOUT_MS, GATEWAY_RATE_LIMIT_PERIOD, VCC_REGION,
/// VCC_API_BASE_URL, VCC_AUTH_BASE_URL, REFRESH_AHEAD_MS, EXPIRY_MARGIN_MS]`. A refusal names a setting and never a value
/// (no key, no digest, no part of the secret); an accepted configuration has only
/// origins, bases and limits that mean what they say.
pub fn settings(data: &[u8]) {
    let [keys, origins, routes, upstream, body, period, region, api, auth, ahead, margin] = fields::<11>(data);
    let region = some(region).or_else(|| Some("emea".into()));
    let env = GatewayEnv {
        vcc: RawConfig {
            region,
            client_id: Some("fuzz-client".into()),
            client_secret: Some(ClientSecret::new(SECRET.into())),
            auth_base_url: some(auth),
            api_base_url: some(api),
            ..RawConfig::default()
        },
        allowed_origins: some(origins),
        gateway_keys: some(keys.clone()).map(|k| json_rows(&k)),
        gateway_routes: some(routes).map(|r| json_rows(&r)),
        rate_limit_period: some(period),
        upstream_timeout_ms: some(upstream),
        body_timeout_ms: some(body),
        body_buffer_limit: None,
        identity: Default::default(),
        refresh_ahead_ms: some(ahead),
        expiry_margin_ms: some(margin),
    };
    match env.validate() {
        Err(m) => {
            let text = misconfigured_json(&m);
            for shown in [&m.message(), &text] {
                assert!(!holds_secret_part(shown), "secret in {shown:?}");
                assert!(!shown.contains(KEY_PREFIX), "a key (or its prefix) in {shown:?}");
                for hex in keys.split(|c: char| !c.is_ascii_hexdigit()).filter(|h| h.len() >= 16) {
                    assert!(!shown.contains(hex), "a digest from GATEWAY_KEYS in {shown:?}");
                }
            }
            let o = json_object(&text);
            assert_eq!(o.get("setting").and_then(Value::as_str), Some(m.setting));
            assert_eq!(o.get("message").and_then(Value::as_str), Some(cleaned(&m.message()).as_str()));
        }
        Ok(cfg) => {
            let debug = format!("{cfg:?}");
            assert!(!holds_secret_part(&debug), "secret in the settings' Debug");
            assert!(cfg.upstream_timeout_ms > 0 && cfg.body_timeout_ms > 0);
            assert!(matches!(cfg.rate_limit_period_s, 10 | 60));
            let m = cfg.settings.margins;
            assert!(m.soft_cap_ms <= 3_600_000 && m.hard_cap_ms <= 3_600_000);
            for lifetime in [1_000, 5_000, 3_600_000, 86_400_000] {
                assert!(m.hard(lifetime) <= m.soft(lifetime) && m.soft(lifetime) <= lifetime, "margins invert");
            }
            for b in [&cfg.settings.api_base, &cfg.settings.auth_base] {
                assert!(BaseUrl::parse(&b.as_string()).as_ref() == Ok(b), "base does not re-parse: {b:?}");
            }
            assert!(cfg.key_list().count() > 0);
        }
    }
}

/// The configuration `decide` is fuzzed against: three keys (all scopes; two scopes,
/// expiring 2099; expired 2020), two allowed origins and one extra route.
fn decide_config() -> (GatewayConfig, [String; 3]) {
    let keys = [mint(&[1; 32]), mint(&[2; 32]), mint(&[3; 32])];
    let rows = serde_json::json!([
        {"id": "all", "sha256": digest_hex(&keys[0]), "scopes": ["*"]},
        {"id": "wallboard", "sha256": digest_hex(&keys[1]),
         "scopes": ["stats", "agents-availability:read"], "expires": "2099-01-01T00:00:00Z"},
        {"id": "old", "sha256": digest_hex(&keys[2]), "scopes": ["*"], "expires": "2020-01-01"},
    ]);
    let env = GatewayEnv {
        vcc: RawConfig {
            region: Some("emea".into()),
            client_id: Some("fuzz-client".into()),
            client_secret: Some(ClientSecret::new(SECRET.into())),
            api_base_url: Some("https://api.example:8443/vcc".into()),
            ..RawConfig::default()
        },
        allowed_origins: Some("https://admin.example.com, http://localhost:5173".into()),
        gateway_keys: Some(json_rows(&rows.to_string())),
        gateway_routes: Some(json_rows(r#"[{"methods":"read","prefix":"/reports","scope":"stats"}]"#)),
        ..GatewayEnv::default()
    };
    match env.validate() {
        Ok(cfg) => (cfg, keys),
        Err(m) => panic!("fixture configuration refused: {}", m.message()),
    }
}

/// `decide` on `[method, URL, Origin, Authorization, Content-Length,
/// Access-Control-Request-Method]`; in Authorization, `#0`, `#1` and `#2` stand for the
/// three real keys. Forwarded requests stay under the API base with a plain path, for a
/// valid key that holds the route's scope; a caller without a valid key learns nothing
/// of the route table; every refusal's body parses.
pub fn decide(data: &[u8]) {
    use std::sync::OnceLock;
    static CFG: OnceLock<(GatewayConfig, [String; 3])> = OnceLock::new();
    let (cfg, keys) = CFG.get_or_init(decide_config);
    let [method, url, origin, auth, length, preflight] = fields::<6>(data);
    let auth = auth.replace("#0", &keys[0]).replace("#1", &keys[1]).replace("#2", &keys[2]);
    let Some((self_origin, path, query)) = split_request_url(&url) else { return };
    let req = Inbound {
        method: &method,
        path,
        query,
        self_origin,
        origin: (!origin.is_empty()).then_some(origin.as_str()),
        authorization: (!auth.is_empty()).then_some(auth.as_str()),
        content_length: (!length.is_empty()).then_some(length.as_str()),
        preflight_method: (!preflight.is_empty()).then_some(preflight.as_str()),
        access: None,
        person: None,
        now_ms: NOW,
    };
    let Verdict { decision, caller } = cfg.decide(&req);
    let key = match caller {
        Caller::Key(i) => Some(i),
        _ => None,
    };
    let authenticated = cfg.authenticate(req.authorization, NOW);
    match &decision {
        Decision::Forward(f, origin) => {
            let Ok(grant) = authenticated else { panic!("forwarded without a valid key: {req:?}") };
            assert_eq!(key, Some(grant));
            assert!(cfg.allows(grant, &f.scope), "key {grant} lacks {:?}", f.scope);
            assert!(*origin != OriginCheck::Denied);
            let base = [&cfg.settings.api_base.as_string(), "/"].concat();
            let rest = f.upstream.strip_prefix(&base).unwrap_or_else(|| panic!("{} left the base", f.upstream));
            let (p, q) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
            assert_plain_path(&["/", p].concat(), "forwarded path");
            assert!(!p.contains("//") && !f.upstream.contains('#'), "{}", f.upstream);
            if let Some(q) = q {
                assert_plain_query(q, "forwarded query");
            }
            // (unless the caller itself put its key in the URL)
            assert!(
                keys.iter().all(|k| !f.upstream.contains(k) || url.contains(k)),
                "the key went upstream in the URL"
            );
            assert!(path.starts_with("/api/") && path["/api".len()..].starts_with(f.route.as_ref()));
            if let Some(n) = req.content_length {
                assert!(n.trim().parse::<u64>().is_ok_and(|n| n <= BODY_LIMIT));
            }
        }
        Decision::Refuse(r, _) => {
            let o = json_object(&r.json());
            assert_eq!(o.get("error").and_then(Value::as_str), Some(r.code()));
            assert!((400..=504).contains(&r.status()));
            if authenticated.is_err() {
                assert!(
                    r.status() == 401 || r.code() == "origin_denied",
                    "a caller without a valid key was told {} (the route table leaks)",
                    r.code()
                );
            }
        }
        Decision::Preflight(o) => assert!(o == self_origin || o.starts_with("http")),
        Decision::Health { details } => {
            assert_eq!(path, "/healthz");
            // The details go to the admin role only: no key of this configuration has it.
            assert!(!details, "/healthz details for {req:?}");
        }
        Decision::WhoAmI => {
            assert_eq!(path, "/whoami");
            // A valid key, or no credential at all (no bearer: the answer is then "nobody").
            let nobody = matches!(authenticated, Err((Refusal::NoKey, None))) && caller == Caller::None;
            assert!(authenticated.is_ok() || nobody, "/whoami answered for an invalid credential");
        }
        Decision::Static => assert!(!(path == "/api" || path.starts_with("/api/")), "an API path served as static"),
    }
}

/// The JSON the core writes, from untrusted text in every string: `[method, route,
/// key, scope, cache, tokens, detail, status, ms, ids (comma-separated), problem]`.
/// Each parses back to exactly its members; no quote, backslash or control character
/// moves text from one member to another.
pub fn json(data: &[u8]) {
    let [method, route, key, scope, cache, tokens, detail, status, ms, ids, problem] = fields::<11>(data);
    let line = LogLine {
        method: &method,
        route: &route,
        status: status.trim().parse().unwrap_or(200),
        ms: ms.trim().parse().unwrap_or(0),
        key: opt(&key),
        person: None,
        email: None,
        scope: opt(&scope),
        cache: &cache,
        tokens: &tokens,
        detail: opt(&detail),
    };
    let text = log_json(&line);
    assert!(!text.contains('\n'), "a log line split in two: {text:?}");
    let o = json_object(&text);
    let want_len = if line.detail.is_some() { 9 } else { 8 };
    assert_eq!(o.len(), want_len, "members of {text:?}");
    let s = |v: Option<&str>| v.map_or(Value::Null, |v| Value::String(cleaned(v)));
    for (name, v) in [
        ("method", Some(line.method)),
        ("route", Some(line.route)),
        ("key", line.key),
        ("scope", line.scope),
        ("cache", Some(line.cache)),
        ("tokens", Some(line.tokens)),
    ] {
        assert_eq!(o.get(name), Some(&s(v)), "{name} in {text:?}");
    }
    if let Some(d) = line.detail {
        assert_eq!(o.get("detail"), Some(&s(Some(d))));
    }
    assert_eq!(o.get("status").and_then(Value::as_u64), Some(u64::from(line.status)));
    assert_eq!(o.get("ms").and_then(Value::as_u64), Some(line.ms));

    let e = json_object(&error_json(&cache, &problem));
    assert_eq!((e.get("error"), e.get("message")), (Some(&s(Some(&cache))), Some(&s(Some(&problem)))));

    let m = Misconfigured { setting: "GATEWAY_KEYS", problem: Cow::Owned(problem.clone()) };
    let o = json_object(&misconfigured_json(&m));
    assert_eq!(o.get("message"), Some(&s(Some(&["GATEWAY_KEYS ", &problem].concat()))));
    assert_eq!(o.len(), 3);

    let ids: Vec<&str> = ids.split(',').collect();
    let about = HealthAbout {
        tokens: &tokens,
        broker_error: opt(&detail),
        rate_limit: line.status % 2 == 0,
        identity: if line.status % 3 == 0 { "on" } else { "off" },
        keys: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, (i % 2 == 0).then_some(NOW.saturating_add(line.ms))))
            .collect(),
    };
    let info = Info {
        obtained_at: Some(NOW),
        expires_at: Some(NOW.saturating_add(line.ms)),
        refresh_at: (line.ms % 3 == 0).then_some(NOW.saturating_add(line.ms / 2)),
        fetches: u32::from(line.status),
        cooldown_until: (line.ms % 5 == 0).then_some(NOW.saturating_add(line.ms)),
        ..Info::default()
    };
    let scopes: Vec<(&str, Info)> = [&scope, &route].iter().map(|s| (s.as_str(), info.clone())).collect();
    let health = health_json_about(NOW, &scopes, &about);
    let h = json_object(&health);
    assert_eq!(h.get("ok"), Some(&Value::Bool(true)));
    assert_eq!(h.get("tokens"), Some(&s(Some(&tokens))));
    assert_eq!(h.get("brokerError"), Some(&s(about.broker_error)));
    let listed: Vec<Value> = ids.iter().map(|id| s(Some(id))).collect();
    let got: Vec<Value> =
        h.get("keys").and_then(Value::as_array).into_iter().flatten().filter_map(|k| k.get("id").cloned()).collect();
    assert_eq!(got, listed, "key ids in {health:?}");
    let scope_obj = h.get("scopes").and_then(Value::as_object).unwrap_or_else(|| panic!("scopes in {health:?}"));
    for (name, _) in &scopes {
        assert!(scope_obj.contains_key(&cleaned(name)), "scope {name:?} in {health:?}");
    }
}

/// A claim by its (dotted) path: `custom.groups` is `groups` inside `custom`.
fn claim<'a>(o: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(o, |v, step| v.as_object()?.get(step))
}

/// A JSON member as the gateway's glue reads one from the host's `JSON.parse`.
fn jwt_member(o: &Value, name: &str) -> Member {
    match claim(o, name) {
        Some(Value::String(t)) => Member::Text(t.clone()),
        Some(Value::Number(n)) => n.as_f64().map_or(Member::Other, Member::Number),
        Some(Value::Bool(b)) => Member::Bool(*b),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map_or(Member::Other, Member::List),
        _ => Member::Other,
    }
}

const ISSUER: &str = "https://team.cloudflareaccess.com";
const AUDIENCE: &str = "aud-tag";

fn identity_env(policy: &str) -> IdentityEnv {
    IdentityEnv {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        algorithms: Some("RS256,ES256".into()),
        policy: Some(json_rows(policy)),
        ..IdentityEnv::default()
    }
}

/// Whether a policy row matches claims `c`, said again here from the README's words:
/// `email` exact (the domain without case) or `*@domain` (no subdomains), only when the
/// email is not marked unverified; `claim` + `value`: the claim is that string or an
/// array holding it.
fn row_matches(row: &PolicyRow, c: &Value) -> bool {
    let verified = c.get("email_verified") != Some(&Value::Bool(false));
    let email = c.get("email").and_then(Value::as_str).filter(|_| verified);
    let parts = email.and_then(|e| e.rsplit_once('@')).filter(|(l, d)| !l.is_empty() && !d.is_empty());
    match &row.matcher {
        Matcher::Email(local, domain) => parts.is_some_and(|(l, d)| l == local && d.eq_ignore_ascii_case(domain)),
        Matcher::Domain(domain) => parts.is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
        Matcher::Claim(name, value) => match claim(c, name) {
            Some(Value::String(t)) => t == value,
            Some(Value::Array(items)) => {
                items.iter().all(Value::is_string) && items.iter().any(|i| i.as_str() == Some(value))
            }
            _ => false,
        },
    }
}

/// Sign-in assertions: `[assertion, header JSON, claims JSON, GATEWAY_ACCESS_POLICY]`.
/// An assertion over 16 KiB is refused unread; one that splits converts to base64 the
/// host decodes to the same bytes. A header passes only with `alg` RS256 or ES256 (never
/// `none`, never an HMAC), a `kid` and no `crit`. Claims pass only from the issuer, for
/// the audience, unexpired and not early (60 s leeway), with a `sub`, and grant only
/// what matching rows grant; a refusal is one of the identity codes. A bad policy is
/// named by its row, never by a value in it.
pub fn identity(data: &[u8]) {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let lenient = |alphabet| {
        GeneralPurpose::new(
            alphabet,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        )
    };
    let (std, url) = (lenient(&base64::alphabet::STANDARD), lenient(&base64::alphabet::URL_SAFE));
    let [jwt, header, claims, policy] = fields::<4>(data);

    match split(&jwt) {
        Err(r) => assert_eq!(r, Refusal::BadIdentity),
        Ok(parts) => {
            assert!(jwt.len() <= MAX_ASSERTION_BYTES, "an assertion of {} bytes was read", jwt.len());
            let segments: Vec<&str> = jwt.split('.').collect();
            assert_eq!(segments.len(), 3);
            assert_eq!(parts.signing_input, [segments[0], ".", segments[1]].concat());
            for (seg, b64) in segments.iter().zip([&parts.header, &parts.payload, &parts.signature]) {
                assert!(!seg.is_empty());
                let converted = std.decode(b64).unwrap_or_else(|e| panic!("{b64:?} is not base64: {e}"));
                let original = url.decode(seg.trim_end_matches('=')).ok();
                // (a segment of 4n+1 characters is refused by both)
                if let Some(original) = original {
                    assert_eq!(converted, original, "{seg:?} decodes differently once converted");
                }
            }
        }
    }
    if jwt.len() > MAX_ASSERTION_BYTES {
        assert_eq!(split(&jwt), Err(Refusal::BadIdentity));
    }

    let ids = match identity_env(&policy).validate() {
        Ok(Some(ids)) => ids,
        Ok(None) => panic!("an issuer was configured and validate() said people do not sign in"),
        Err(m) => {
            let said = m.message();
            assert_eq!(m.setting, "GATEWAY_ACCESS_POLICY", "{said}");
            if let Ok(v) = serde_json::from_str::<Value>(&policy) {
                let mut strings = Vec::new();
                let mut stack = vec![&v];
                while let Some(x) = stack.pop() {
                    match x {
                        Value::String(t) if t.len() >= 6 => strings.push(t.as_str()),
                        Value::Array(a) => stack.extend(a),
                        Value::Object(o) => stack.extend(o.values()),
                        _ => {}
                    }
                }
                for t in strings {
                    assert!(!said.contains(t) || POLICY_WORDS.contains(&t), "a policy value in the refusal: {said}");
                }
            }
            match identity_env(
                r#"[{"claim":"groups","value":"vcc-supervisors","scopes":["stats"]},
                {"email":"*@Example.com","scopes":["agents-availability:read"]},
                {"email":"lee@example.org","scopes":[],"admin":true}]"#,
            )
            .validate()
            {
                Ok(Some(ids)) => ids,
                _ => panic!("the fixture policy was refused"),
            }
        }
    };

    if let Ok(h) = serde_json::from_str::<Value>(&header) {
        if let Ok((alg, kid)) = judge_header(|n| jwt_member(&h, n), &ids) {
            let said = h.get("alg").and_then(Value::as_str);
            assert!(matches!(said, Some("RS256" | "ES256")), "alg {said:?} passed");
            assert_eq!(Some(alg.as_str()), said);
            assert_eq!(h.get("kid").and_then(Value::as_str), Some(kid.as_str()));
            assert!(!kid.is_empty() && kid.len() <= 256);
            assert!(matches!(h.get("crit"), None | Some(Value::Null)), "a crit header passed");
        }
    }

    let Ok(c) = serde_json::from_str::<Value>(&claims) else { return };
    let seconds = |name: &str| c.get(name).and_then(Value::as_f64);
    match ids.judge_claims(|n| jwt_member(&c, n), NOW) {
        Ok(p) => {
            assert_eq!(c.get("iss").and_then(Value::as_str), Some(ISSUER));
            let aud_ok = match c.get("aud") {
                Some(Value::String(a)) => a == AUDIENCE,
                Some(Value::Array(a)) => a.iter().all(Value::is_string) && a.iter().any(|x| x == AUDIENCE),
                _ => false,
            };
            assert!(aud_ok, "aud {:?} passed", c.get("aud"));
            let exp = seconds("exp").unwrap_or_else(|| panic!("no exp passed: {claims}"));
            assert!((NOW as f64) < exp * 1000.0 + 60_000.0, "expired at {exp}, passed at {NOW}");
            if let Some(nbf) = c.get("nbf").filter(|v| !v.is_null()) {
                let nbf = nbf.as_f64().unwrap_or_else(|| panic!("nbf {nbf:?} passed"));
                assert!(nbf * 1000.0 <= NOW as f64 + 60_000.0, "not before {nbf}, passed at {NOW}");
            }
            assert_eq!(c.get("sub").and_then(Value::as_str), Some(p.sub.as_str()));
            assert!(!p.sub.is_empty());
            let matching: Vec<&PolicyRow> = ids.policy.iter().filter(|r| row_matches(r, &c)).collect();
            assert!(!matching.is_empty(), "a person no row matches passed");
            for s in &p.scopes {
                assert!(matching.iter().any(|r| r.scopes.contains(s)), "scope {s} granted by no matching row");
            }
            for r in &matching {
                assert!(r.scopes.iter().all(|s| p.scopes.contains(s)), "a matching row's scopes were dropped");
            }
            assert_eq!(p.admin, matching.iter().any(|r| r.admin));
            if let Some(name) = &p.name {
                assert!(name.chars().count() <= 100 && !name.chars().any(char::is_control));
            }
        }
        Err(r) => assert!(
            matches!(
                r,
                Refusal::BadIdentity
                    | Refusal::IdentityExpired
                    | Refusal::IdentityNotYetValid
                    | Refusal::IdentityWrongIssuer
                    | Refusal::IdentityWrongAudience
                    | Refusal::IdentityNotAllowed
            ),
            "claims refused with {r:?}"
        ),
    }
}

/// Words the policy's refusals use themselves (a value equal to one may appear).
const POLICY_WORDS: &[&str] = &["scopes", "claim", "value", "admin", "email", "groups", "domain", "string"];
