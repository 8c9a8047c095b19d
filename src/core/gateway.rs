//! Gateway policy: everything the edge gateway decides about a request, with no I/O.
//!
//! The gateway (see DESIGN.md, "Gateway contract") keeps the VCC client secret
//! server-side and lets callers holding a gateway key reach the VCC APIs that key
//! allows. This module validates its settings, authenticates the key (constant time),
//! applies the CORS policy, validates and routes the path, and says which headers may
//! cross in each direction. The glue only carries out the resulting [`Decision`].

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cache::Info;
use super::config::{RawConfig, Settings};
use super::routes::{self, RouteMatch};
use super::scope::ScopeSet;
use super::secret::ClientSecret;
use super::url::{check_query, push_u64, BaseUrl, Target};

/// Largest request body the gateway forwards (VCC itself refuses bodies over 100 KB).
pub const BODY_LIMIT: u64 = 1 << 20;

/// Gateway keys shorter than this are refused as guessable.
pub const MIN_KEY_LEN: usize = 16;

/// `GATEWAY_KEYS` as the host's JSON parser read it: gateway key -> scopes, or `Err`
/// when it is not a JSON object of string arrays.
pub type ParsedKeys = Result<Vec<(String, Vec<String>)>, ()>;

/// The gateway's settings as read from the Worker's `env`, not yet validated.
#[derive(Debug, Default)]
pub struct GatewayEnv {
    /// `VCC_REGION`.
    pub region: Option<String>,
    /// `VCC_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `VCC_CLIENT_SECRET` (a Worker secret).
    pub client_secret: Option<ClientSecret>,
    /// `VCC_AUTH_BASE_URL`.
    pub auth_base_url: Option<String>,
    /// `VCC_API_BASE_URL`.
    pub api_base_url: Option<String>,
    /// `ALLOWED_ORIGINS`, comma-separated.
    pub allowed_origins: Option<String>,
    /// `GATEWAY_KEYS`; `None` when unset.
    pub gateway_keys: Option<ParsedKeys>,
    /// `UPSTREAM_TIMEOUT_MS` (default 30000).
    pub upstream_timeout_ms: Option<String>,
    /// `BODY_TIMEOUT_MS` (default 10000).
    pub body_timeout_ms: Option<String>,
}

/// A setting that is missing or invalid: every request gets 500 naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misconfigured {
    /// The setting's name, e.g. `VCC_CLIENT_ID`.
    pub setting: &'static str,
    /// What is wrong (never the value).
    pub problem: std::borrow::Cow<'static, str>,
}

impl Misconfigured {
    /// `SETTING problem`.
    pub fn message(&self) -> String {
        let mut m = String::from(self.setting);
        m.push(' ');
        m.push_str(&self.problem);
        m
    }
}

struct Grant {
    /// SHA-256 of the key: every comparison is of 32 bytes against 32 bytes, so its time
    /// tells nothing of a key's length or content, and the key itself is not kept.
    digest: [u8; 32],
    /// Allowed scopes; `*` allows all.
    scopes: Vec<String>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Validated gateway settings.
pub struct GatewayConfig {
    /// Token client settings (region or base URLs, client id and secret).
    pub settings: Settings,
    grants: Vec<Grant>,
    allowed_origins: Vec<String>,
    /// How long one exchange with VCC may take, from sending the request to the last byte
    /// of its answer: 504 if no answer came by then, a cut-off body if it was streaming.
    pub upstream_timeout_ms: u32,
    /// How long a caller may take to send its request body: 408 past it.
    pub body_timeout_ms: u32,
}

impl core::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("settings", &self.settings)
            .field("keys", &self.grants.len())
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

fn bad(setting: &'static str, problem: &'static str) -> Misconfigured {
    Misconfigured { setting, problem: problem.into() }
}

/// Maps a token-client config field to the gateway setting that feeds it.
fn setting_of(field: &str) -> &'static str {
    match field {
        "region" => "VCC_REGION",
        "clientId" => "VCC_CLIENT_ID",
        "clientSecret" => "VCC_CLIENT_SECRET",
        "authBaseUrl" => "VCC_AUTH_BASE_URL",
        "apiBaseUrl" => "VCC_API_BASE_URL",
        _ => "VCC_REGION",
    }
}

/// A timeout setting: whole milliseconds from 1 to 120000, or `default` when unset.
fn millis(setting: &'static str, value: Option<&str>, default: u32) -> Result<u32, Misconfigured> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=120_000).contains(n))
            .ok_or_else(|| bad(setting, "must be a number of milliseconds from 1 to 120000")),
    }
}

impl GatewayEnv {
    /// Validates every setting; the first problem names its setting.
    pub fn validate(self) -> Result<GatewayConfig, Misconfigured> {
        let raw = RawConfig {
            region: self.region,
            client_id: self.client_id,
            client_secret: self.client_secret,
            auth_base_url: self.auth_base_url,
            api_base_url: self.api_base_url,
            // workerd: no timers doing I/O outside a request; refresh-ahead is lazy.
            auto_refresh: Some(false),
            ..RawConfig::default()
        };
        let settings = raw.validate().map_err(|e| {
            // config.rs words these "<field> <problem>" and never quotes a value.
            let (field, problem) = e.message.split_once(' ').unwrap_or((&e.message, "is invalid"));
            Misconfigured { setting: setting_of(field), problem: problem.to_owned().into() }
        })?;
        let keys = match self.gateway_keys {
            None => return Err(bad("GATEWAY_KEYS", "is required (a JSON object: gateway key -> list of scopes)")),
            Some(Err(())) => return Err(bad("GATEWAY_KEYS", "must be a JSON object: gateway key -> list of scopes")),
            Some(Ok(k)) => k,
        };
        if keys.is_empty() {
            return Err(bad("GATEWAY_KEYS", "has no keys"));
        }
        let mut grants = Vec::with_capacity(keys.len());
        for (key, scopes) in keys {
            if key.chars().count() < MIN_KEY_LEN || key.chars().any(|c| c.is_control() || c == ' ') {
                return Err(bad("GATEWAY_KEYS", "has a key shorter than 16 characters or with spaces"));
            }
            if scopes.is_empty() {
                return Err(bad("GATEWAY_KEYS", "has a key with no scopes"));
            }
            if scopes.iter().any(|s| s != "*" && ScopeSet::parse(s).map(|p| p.as_str() != s).unwrap_or(true)) {
                return Err(bad("GATEWAY_KEYS", "has an invalid scope (one scope per entry, or \"*\")"));
            }
            let key = ClientSecret::new(key);
            grants.push(Grant { digest: digest(key.expose()), scopes });
        }
        let mut allowed_origins = Vec::new();
        for o in self.allowed_origins.as_deref().unwrap_or("").split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match BaseUrl::parse_origin(o) {
                Ok(b) => allowed_origins.push(b.origin()),
                _ => {
                    return Err(bad(
                        "ALLOWED_ORIGINS",
                        "must be comma-separated origins like https://admin.example.com",
                    ))
                }
            }
        }
        let upstream_timeout_ms = millis("UPSTREAM_TIMEOUT_MS", self.upstream_timeout_ms.as_deref(), 30_000)?;
        let body_timeout_ms = millis("BODY_TIMEOUT_MS", self.body_timeout_ms.as_deref(), 10_000)?;
        Ok(GatewayConfig { settings, grants, allowed_origins, upstream_timeout_ms, body_timeout_ms })
    }
}

/// What the gateway needs to know about an inbound request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inbound<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as received (`/api/stats/agent-status`), no query.
    pub path: &'a str,
    /// Query without `?`.
    pub query: Option<&'a str>,
    /// The gateway's own origin (`https://gw.example.com`).
    pub self_origin: &'a str,
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `Content-Length` header, if any (the glue also counts the streamed body).
    pub content_length: Option<&'a str>,
    /// `Access-Control-Request-Method` header (a CORS preflight).
    pub preflight_method: Option<&'a str>,
}

/// A refusal: status, stable code and a message safe to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Stable code (`error` in the JSON body).
    pub code: &'static str,
    /// Human message.
    pub message: &'static str,
}

impl Refusal {
    /// `{"error": code, "message": text}`.
    pub fn json(&self) -> String {
        error_json(self.code, self.message)
    }
}

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

fn push_json_str(s: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
}

/// A request to forward upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The full upstream URL, built from the fixed API base.
    pub upstream: String,
    /// The scope the route needs (what the token is requested for).
    pub scope: ScopeSet,
    /// The route's `Accept`, added when the caller sent none.
    pub accept: &'static str,
    /// The matched route's path prefix, for logs (never the full path or query).
    pub route: &'static str,
}

/// How the origin of a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header (server-to-server, curl).
    None,
    /// The gateway's own origin (the demo page).
    Same,
    /// A listed cross-origin: CORS headers for it.
    Allowed(String),
    /// Anything else: no CORS headers; refused unless it is no-CORS traffic.
    Denied,
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer with this refusal (with CORS headers when the origin is allowed).
    Refuse(Refusal, OriginCheck),
    /// Answer a CORS preflight for an allowed origin (204 with CORS headers).
    Preflight(String),
    /// `GET /healthz`.
    Health,
    /// Not an API path: serve static assets.
    Static,
    /// Forward to VCC.
    Forward(Forward, OriginCheck),
}

const fn refusal(status: u16, code: &'static str, message: &'static str) -> Refusal {
    Refusal { status, code, message }
}

/// 401: no gateway key, or an unknown one.
pub const NO_KEY: Refusal = refusal(401, "unauthorized", "send Authorization: Bearer <gateway key>");
/// 401: the key is not one of GATEWAY_KEYS.
pub const UNKNOWN_KEY: Refusal = refusal(401, "unauthorized", "unknown gateway key");
/// 403: the key does not grant the route's scope.
pub const KEY_LACKS_SCOPE: Refusal = refusal(403, "forbidden", "this gateway key may not use this API");
/// 403: the Origin is not allowed.
pub const ORIGIN_DENIED: Refusal = refusal(403, "forbidden", "this origin is not allowed (ALLOWED_ORIGINS)");
/// 404: no route.
pub const NO_ROUTE: Refusal = refusal(404, "not_found", "no VCC API route for this path");
/// 405: route known, method not.
pub const BAD_METHOD: Refusal = refusal(405, "method_not_allowed", "this API does not allow this method");
/// 413: body over [`BODY_LIMIT`].
pub const TOO_LARGE: Refusal = refusal(413, "payload_too_large", "request bodies are limited to 1 MiB");
/// 502: the token endpoint failed.
pub const TOKEN_FAILED: Refusal = refusal(502, "token_endpoint", "the gateway could not get a VCC token");
/// 504: VCC did not answer in time.
pub const UPSTREAM_TIMEOUT: Refusal = refusal(504, "upstream_timeout", "VCC did not answer in time");
/// 502: VCC could not be reached.
pub const UPSTREAM_FAILED: Refusal = refusal(502, "upstream_unreachable", "VCC could not be reached");
/// 502: VCC answered with a redirect; the gateway never follows one (the token would go
/// wherever `Location` says) and never passes one on.
pub const UPSTREAM_REDIRECT: Refusal =
    refusal(502, "upstream_redirect", "VCC answered with a redirect, which the gateway does not follow");
/// 408: the caller did not finish sending its body within `BODY_TIMEOUT_MS`.
pub const BODY_TIMEOUT: Refusal = refusal(408, "body_timeout", "the request body did not arrive in time");
/// 400: the caller's body could not be read (the connection broke while sending it).
pub const BODY_UNREADABLE: Refusal = refusal(400, "bad_request", "the request body could not be read");
/// 503: VCC rejected tokens it had just issued; no new one is asked for until the
/// cooldown ends (`Retry-After`).
pub const TOKEN_REJECTED: Refusal =
    refusal(503, "token_rejected", "VCC is rejecting the tokens it issues; the gateway is waiting before asking again");

impl GatewayConfig {
    /// The index of the grant whose key is presented, compared in constant time
    /// against every key (no early exit, so timing does not tell which key nearly
    /// matched).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<usize, Refusal> {
        let presented = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(NO_KEY)?;
        let presented = digest(presented);
        let mut found: Option<usize> = None;
        for (i, g) in self.grants.iter().enumerate() {
            if bool::from(g.digest.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found.ok_or(UNKNOWN_KEY)
    }

    /// Whether grant `index` allows every scope of `scope`.
    pub fn allows(&self, index: usize, scope: &ScopeSet) -> bool {
        self.grants.get(index).is_some_and(|g| scope.is_subset_of(g.scopes.iter().map(String::as_str)))
    }

    /// Classifies the request's `Origin`.
    pub fn check_origin(&self, origin: Option<&str>, self_origin: &str) -> OriginCheck {
        match origin {
            None => OriginCheck::None,
            Some(o) if o == self_origin => OriginCheck::Same,
            Some(o) if self.allowed_origins.iter().any(|a| a == o) => OriginCheck::Allowed(o.to_owned()),
            Some(_) => OriginCheck::Denied,
        }
    }

    /// Decides what to do with a request. Order: CORS origin, preflight, health and
    /// static paths, then for `/api/*`: key (401) before route (404/405) so callers
    /// without a key learn nothing of the table, then scope (403), then size (413).
    pub fn decide(&self, req: &Inbound<'_>) -> Decision {
        let origin = self.check_origin(req.origin, req.self_origin);
        let is_api = req.path == "/api" || req.path.starts_with("/api/");
        if req.method.eq_ignore_ascii_case("OPTIONS") && req.preflight_method.is_some() && is_api {
            return match origin {
                OriginCheck::Allowed(o) => Decision::Preflight(o),
                OriginCheck::Same => Decision::Preflight(req.self_origin.to_owned()),
                _ => Decision::Refuse(ORIGIN_DENIED, OriginCheck::Denied),
            };
        }
        if req.path == "/healthz" && (req.method == "GET" || req.method == "HEAD") {
            return Decision::Health;
        }
        if !is_api {
            return Decision::Static;
        }
        if origin == OriginCheck::Denied {
            return Decision::Refuse(ORIGIN_DENIED, origin);
        }
        let refuse = |r: Refusal| Decision::Refuse(r, origin.clone());
        let grant = match self.authenticate(req.authorization) {
            Ok(g) => g,
            Err(r) => return refuse(r),
        };
        let rest = req.path.strip_prefix("/api").unwrap_or("");
        let Ok(target) = Target::parse(rest) else { return refuse(NO_ROUTE) };
        let (scope, accept, route) = match routes::lookup(req.method, &target.path) {
            RouteMatch::Found(r) => (r.scope, r.accept, r.prefix),
            RouteMatch::MethodNotAllowed => return refuse(BAD_METHOD),
            RouteMatch::NotFound => return refuse(NO_ROUTE),
        };
        let Ok(scope) = ScopeSet::parse(scope) else { return refuse(NO_ROUTE) };
        if !self.allows(grant, &scope) {
            return refuse(KEY_LACKS_SCOPE);
        }
        if let Some(len) = req.content_length {
            if len.trim().parse::<u64>().map_or(true, |n| n > BODY_LIMIT) {
                return refuse(TOO_LARGE);
            }
        }
        let mut path_and_query = target.path.into_owned();
        if let Some(q) = req.query.filter(|q| !q.is_empty()) {
            if check_query(q).is_err() {
                return refuse(NO_ROUTE);
            }
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let upstream = self.settings.api_base.join(&path_and_query);
        // Defence in depth: the joined URL must still be under the fixed base.
        let mut base = self.settings.api_base.as_string();
        base.push('/');
        if !upstream.starts_with(&base) {
            return refuse(NO_ROUTE);
        }
        Decision::Forward(Forward { upstream, scope, accept, route }, origin)
    }
}

/// Splits a request URL as the runtime gave it (`http://host:port/path?query`) into
/// origin, raw path and query, without normalising anything: dot segments and
/// percent-escapes must reach [`GatewayConfig::decide`] as sent, to be refused there.
pub fn split_request_url(url: &str) -> Option<(&str, &str, Option<&str>)> {
    let after_scheme = url.find("://")? + 3;
    let path_start = url.get(after_scheme..)?.find('/').map_or(url.len(), |i| after_scheme + i);
    let (origin, rest) = url.split_at_checked(path_start)?;
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Some((origin, if path.is_empty() { "/" } else { path }, query))
}

/// Request headers forwarded to VCC: an allow-list, so the caller's `Authorization`
/// (the gateway key), cookies, hop-by-hop and forwarding headers never cross, nor
/// anything else we did not think of.
pub fn forward_request_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "accept"
            | "accept-language"
            | "content-type"
            | "content-language"
            | "if-match"
            | "if-none-match"
            | "if-modified-since"
            | "if-unmodified-since"
            | "cache-control"
            | "x-request-id"
            | "x-correlation-id"
    )
}

/// Response headers passed back to the caller: an allow-list, like the request side.
/// An upstream is untrusted too: it must not be able to hand the caller our VCC token
/// (`Authorization` echoed back), CORS grants (the gateway alone decides those), cookies,
/// `Location`/`Refresh`, hop-by-hop headers, or anything else we did not think of.
pub fn forward_response_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "content-type"
            | "content-language"
            | "content-disposition"
            | "cache-control"
            | "expires"
            | "etag"
            | "last-modified"
            | "retry-after"
            | "x-request-id"
            | "x-correlation-id"
    )
}

/// [`forward_response_header`], minus any header the upstream's `Connection` names:
/// those are hop-by-hop by declaration (RFC 9110 §7.6.1), even an allowed name.
pub fn pass_response_header(name: &str, connection: Option<&str>) -> bool {
    forward_response_header(name)
        && !connection.is_some_and(|c| c.split(',').any(|token| token.trim().eq_ignore_ascii_case(name)))
}

/// Whether the caller's `Accept` leaves the choice to us: absent, or the `*/*` that
/// browsers and curl send by default. VCC answers 400 to anything but its versioned
/// media type, so those get the route's versioned `Accept`; an explicit other type is
/// the caller's to keep.
pub fn needs_versioned_accept(accept: Option<&str>) -> bool {
    accept.map(str::trim).is_none_or(|a| a.is_empty() || a == "*/*")
}

/// CORS headers for an allowed origin on a normal response.
pub fn cors_headers(origin: &str) -> [(&'static str, String); 3] {
    [
        ("access-control-allow-origin", origin.to_owned()),
        ("vary", "Origin".to_owned()),
        ("access-control-expose-headers", "Retry-After, Content-Type".to_owned()),
    ]
}

/// CORS headers for a preflight answer.
pub fn preflight_headers(origin: &str) -> [(&'static str, String); 5] {
    [
        ("access-control-allow-origin", origin.to_owned()),
        ("vary", "Origin".to_owned()),
        ("access-control-allow-methods", "GET, HEAD, POST, PUT, PATCH, DELETE".to_owned()),
        ("access-control-allow-headers", "Authorization, Content-Type, Accept".to_owned()),
        ("access-control-max-age", "600".to_owned()),
    ]
}

/// `/healthz` body, one member per cached scope, so a status page can draw a countdown:
/// `{"ok":true,"scopes":{"<scope>":{"expiresInSeconds":n,"lifetimeSeconds":n,
/// "refreshInSeconds":n,"cooldownSeconds":n,"fetches":n,"refreshes":n,"failures":n,
/// "lastError":"code"}}}`. `cooldownSeconds` is set while VCC's rejection of fresh tokens
/// holds token requests back.
/// Times are `null` while no token is cached; `lastError` is a stable code (never a
/// message, which could name upstream details) or `null`. Scopes are validated
/// (`[a-z0-9._:-]` and spaces), so escaping is a formality.
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

    const KEY_ALL: &str = "k-all-0123456789abcdef";
    const KEY_STATS: &str = "k-stats-0123456789abcdef";

    fn env() -> GatewayEnv {
        GatewayEnv {
            region: Some("emea".into()),
            client_id: Some("id".into()),
            client_secret: Some(ClientSecret::new("gateway-secret-value".into())),
            allowed_origins: Some("https://admin.example.com, http://localhost:5173, http://intranet.example".into()),
            gateway_keys: Some(Ok(vec![
                (KEY_ALL.into(), vec!["*".into()]),
                (KEY_STATS.into(), vec!["stats".into(), "agents-availability:read".into()]),
            ])),
            ..GatewayEnv::default()
        }
    }

    fn cfg() -> GatewayConfig {
        env().validate().unwrap()
    }

    fn req<'a>(method: &'a str, path: &'a str, key: Option<&'a str>) -> Inbound<'a> {
        Inbound { method, path, self_origin: "https://gw.example.com", authorization: key, ..Inbound::default() }
    }

    fn bearer(k: &str) -> String {
        format!("Bearer {k}")
    }

    #[test]
    fn misconfiguration_names_the_setting_never_the_value() {
        let cases: Vec<(GatewayEnv, &str)> = vec![
            (GatewayEnv { client_id: None, ..env() }, "VCC_CLIENT_ID"),
            (GatewayEnv { client_secret: None, ..env() }, "VCC_CLIENT_SECRET"),
            (GatewayEnv { region: Some("mars".into()), ..env() }, "VCC_REGION"),
            (GatewayEnv { region: None, ..env() }, "VCC_REGION"),
            (GatewayEnv { api_base_url: Some("http://evil.example".into()), ..env() }, "VCC_API_BASE_URL"),
            (GatewayEnv { auth_base_url: Some("ftp://x".into()), ..env() }, "VCC_AUTH_BASE_URL"),
            (GatewayEnv { gateway_keys: None, ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Err(())), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![])), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![("short".into(), vec!["*".into()])])), ..env() }, "GATEWAY_KEYS"),
            (GatewayEnv { gateway_keys: Some(Ok(vec![(KEY_ALL.into(), vec![])])), ..env() }, "GATEWAY_KEYS"),
            (
                GatewayEnv { gateway_keys: Some(Ok(vec![(KEY_ALL.into(), vec!["Stats".into()])])), ..env() },
                "GATEWAY_KEYS",
            ),
            (GatewayEnv { allowed_origins: Some("https://a.example/path".into()), ..env() }, "ALLOWED_ORIGINS"),
            (GatewayEnv { allowed_origins: Some("*".into()), ..env() }, "ALLOWED_ORIGINS"),
            (GatewayEnv { upstream_timeout_ms: Some("soon".into()), ..env() }, "UPSTREAM_TIMEOUT_MS"),
            (GatewayEnv { upstream_timeout_ms: Some("0".into()), ..env() }, "UPSTREAM_TIMEOUT_MS"),
            (GatewayEnv { body_timeout_ms: Some("120001".into()), ..env() }, "BODY_TIMEOUT_MS"),
        ];
        for (e, setting) in cases {
            let m = e.validate().unwrap_err();
            assert_eq!(m.setting, setting);
            let text = format!("{} {:?}", m.message(), m);
            assert!(!m.problem.is_empty());
            assert!(
                !text.contains("gateway-secret-value") && !text.contains(KEY_ALL) && !text.contains("mars"),
                "{text}"
            );
        }
        let dbg = format!("{:?}", cfg());
        assert!(!dbg.contains(KEY_ALL) && !dbg.contains("gateway-secret-value"), "{dbg}");
    }

    #[test]
    fn keys_are_required_and_scoped() {
        let c = cfg();
        let d = |k: Option<&str>, m: &'static str, p: &'static str| {
            let auth = k.map(bearer);
            c.decide(&Inbound { authorization: auth.as_deref(), ..req(m, p, None) })
        };
        assert!(matches!(d(None, "GET", "/api/stats/agent-status"), Decision::Refuse(NO_KEY, _)));
        assert!(matches!(
            d(Some("nope-nope-nope-nope"), "GET", "/api/stats/agent-status"),
            Decision::Refuse(UNKNOWN_KEY, _)
        ));
        assert!(matches!(d(Some(KEY_STATS), "GET", "/api/useradmin/users"), Decision::Refuse(KEY_LACKS_SCOPE, _)));
        match d(Some(KEY_STATS), "GET", "/api/stats/agent-status") {
            Decision::Forward(f, OriginCheck::None) => {
                assert_eq!(f.upstream, "https://emea.api.cc.vonage.com/stats/agent-status");
                assert_eq!(f.scope.as_str(), "stats");
                assert_eq!(f.route, "/stats");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(d(Some(KEY_ALL), "PUT", "/api/useradmin/users/7"), Decision::Forward(..)));
        // without a key, nothing of the route table is revealed
        assert!(matches!(d(None, "GET", "/api/no-such-api"), Decision::Refuse(NO_KEY, _)));
        assert!(matches!(d(Some(KEY_ALL), "GET", "/api/no-such-api"), Decision::Refuse(NO_ROUTE, _)));
        assert!(matches!(d(Some(KEY_ALL), "POST", "/api/stats/agent-status"), Decision::Refuse(BAD_METHOD, _)));
        assert!(matches!(d(Some(KEY_ALL), "GET", "/api"), Decision::Refuse(NO_ROUTE, _)));
    }

    #[test]
    fn path_tricks_never_reach_upstream() {
        let c = cfg();
        let auth = bearer(KEY_ALL);
        for path in [
            "/api/stats/../useradmin/users",
            "/api/stats/%2e%2e/useradmin/users",
            "/api/stats/%2E%2e/x",
            "/api/stats/./agent-status",
            "/api//stats",
            "/api/stats//x",
            "/api/stats\\..\\x",
            "/api/stats/%2fevil",
            "/api/stats/%5cevil",
            "/api/stats/a%00b",
            "/api/stats/a\u{1}b",
            "/api/stats/é",
            "/api/@evil.example/stats",
            "/api/https://evil.example/stats",
            "/apix/stats",
            "/api/stats/..;/useradmin/users",
            "/api/stats/%2e%2e;/useradmin/users",
            "/api/stats/a%09b",
            "/api/stats/a%0d%0ab",
            "/api/stats/%252e%252e/x",
            "/api/stats/%c0%ae%c0%ae/x",
        ] {
            let d = c.decide(&Inbound { authorization: Some(&auth), ..req("GET", path, None) });
            assert!(!matches!(d, Decision::Forward(..)), "{path:?} was forwarded: {d:?}");
        }
        let d = c.decide(&Inbound {
            authorization: Some(&auth),
            query: Some("a=1#frag"),
            ..req("GET", "/api/stats/x", None)
        });
        assert!(!matches!(d, Decision::Forward(..)));
        let d = c.decide(&Inbound {
            authorization: Some(&auth),
            query: Some("start=2026-01-01&end=x%20y"),
            ..req("GET", "/api/stats/x", None)
        });
        match d {
            Decision::Forward(f, _) => {
                assert_eq!(f.upstream, "https://emea.api.cc.vonage.com/stats/x?start=2026-01-01&end=x%20y")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cors_same_listed_denied_and_preflight() {
        let c = cfg();
        let auth = bearer(KEY_ALL);
        let with = |origin: Option<&'static str>, method: &'static str, pre: Option<&'static str>| {
            c.decide(&Inbound {
                origin,
                preflight_method: pre,
                authorization: Some(&auth),
                ..req(method, "/api/stats/agent-status", None)
            })
        };
        assert!(matches!(with(Some("https://gw.example.com"), "GET", None), Decision::Forward(_, OriginCheck::Same)));
        assert!(matches!(
            with(Some("https://admin.example.com"), "GET", None),
            Decision::Forward(_, OriginCheck::Allowed(_))
        ));
        assert!(matches!(
            with(Some("https://evil.example"), "GET", None),
            Decision::Refuse(ORIGIN_DENIED, OriginCheck::Denied)
        ));
        assert!(matches!(
            with(Some("https://admin.example.com.evil.example"), "GET", None),
            Decision::Refuse(ORIGIN_DENIED, _)
        ));
        assert_eq!(
            with(Some("http://localhost:5173"), "OPTIONS", Some("GET")),
            Decision::Preflight("http://localhost:5173".into())
        );
        assert!(matches!(
            with(Some("https://evil.example"), "OPTIONS", Some("GET")),
            Decision::Refuse(ORIGIN_DENIED, _)
        ));
        // preflights carry no credentials: they are answered before the key check
        let pre = c.decide(&Inbound {
            origin: Some("https://admin.example.com"),
            preflight_method: Some("PUT"),
            ..req("OPTIONS", "/api/useradmin/users/1", None)
        });
        assert!(matches!(pre, Decision::Preflight(_)));
    }

    #[test]
    fn health_static_and_body_limit() {
        let c = cfg();
        assert_eq!(c.decide(&req("GET", "/healthz", None)), Decision::Health);
        assert_eq!(c.decide(&req("GET", "/", None)), Decision::Static);
        assert_eq!(c.decide(&req("GET", "/app.js", None)), Decision::Static);
        let auth = bearer(KEY_ALL);
        let put = |len: &'static str| {
            c.decide(&Inbound {
                authorization: Some(&auth),
                content_length: Some(len),
                ..req("PUT", "/api/useradmin/users/1", None)
            })
        };
        assert!(matches!(put("1048576"), Decision::Forward(..)));
        assert!(matches!(put("1048577"), Decision::Refuse(TOO_LARGE, _)));
        assert!(matches!(put("lots"), Decision::Refuse(TOO_LARGE, _)));
    }

    #[test]
    fn header_policy() {
        for h in [
            "Authorization",
            "cookie",
            "Host",
            "connection",
            "x-forwarded-for",
            "forwarded",
            "cf-connecting-ip",
            "x-real-ip",
            "origin",
            "referer",
            "proxy-authorization",
            "transfer-encoding",
        ] {
            assert!(!forward_request_header(h), "{h} must not be forwarded");
        }
        for h in ["Accept", "content-type", "if-none-match", "x-request-id"] {
            assert!(forward_request_header(h), "{h}");
        }
        for h in [
            "Set-Cookie",
            "connection",
            "www-authenticate",
            "transfer-encoding",
            "authorization",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-expose-headers",
            "location",
            "refresh",
            "x-anything-else",
            "vary",
        ] {
            assert!(!forward_response_header(h), "{h}");
        }
        assert!(forward_response_header("content-type") && forward_response_header("Retry-After"));
        assert!(pass_response_header("etag", Some("keep-alive")));
        assert!(!pass_response_header("ETag", Some("keep-alive, etag")), "named in Connection: hop-by-hop");
    }

    #[test]
    fn default_accept_is_replaced_explicit_is_kept() {
        assert!(needs_versioned_accept(None));
        assert!(needs_versioned_accept(Some("*/*")));
        assert!(needs_versioned_accept(Some(" ")));
        assert!(!needs_versioned_accept(Some("application/vnd.newvoicemedia.v2+json")));
        assert!(!needs_versioned_accept(Some("text/csv")));
    }

    #[test]
    fn json_bodies_are_valid() {
        let v: serde_json::Value = serde_json::from_str(&NO_ROUTE.json()).unwrap();
        assert_eq!(v["error"], "not_found");
        let v: serde_json::Value = serde_json::from_str(&error_json("x", "a \"quoted\" \\ thing\n")).unwrap();
        assert_eq!(v["message"], "a \"quoted\" \\ thing ");
        assert_eq!(health_json(0, &[]), "{\"ok\":true,\"scopes\":{}}");
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

    #[test]
    fn request_urls_split_without_normalising() {
        assert_eq!(
            split_request_url("http://127.0.0.1:8787/api/stats/%2e%2e/x?a=1#f"),
            Some(("http://127.0.0.1:8787", "/api/stats/%2e%2e/x", Some("a=1")))
        );
        assert_eq!(split_request_url("https://gw.example.com"), Some(("https://gw.example.com", "/", None)));
        assert_eq!(
            split_request_url("https://gw.example.com/a/../b"),
            Some(("https://gw.example.com", "/a/../b", None))
        );
        assert_eq!(split_request_url("not a url"), None);
    }

    #[test]
    fn key_comparison_needs_the_whole_key() {
        let c = cfg();
        for k in [&KEY_ALL[..KEY_ALL.len() - 1], "k-all", "", "  "] {
            assert!(c.authenticate(Some(&bearer(k))).is_err(), "{k:?}");
        }
        assert_eq!(c.authenticate(Some(&bearer(KEY_ALL))), Ok(0));
        assert_eq!(c.authenticate(Some(&format!("bearer  {KEY_STATS} "))), Ok(1));
        // What is kept and compared is a fixed-length digest, never the key.
        assert!(c
            .grants
            .iter()
            .all(|g| g.digest != [0; 32] && g.digest == digest(if g.scopes == ["*"] { KEY_ALL } else { KEY_STATS })));
        assert!(c.authenticate(Some(&format!("Basic {KEY_ALL}"))).is_err());
    }
}
