//! The gateway's settings: read from the Worker's `env` as text, validated once per
//! isolate. A bad one names its setting (never its value) in [`Misconfigured`].

use super::keys::{Grant, KEY_PREFIX};
use crate::core::config::{RawConfig, Region, Settings, TOKEN_PATH};
use crate::core::routes::{self, Methods, Route};
use crate::core::scope::ScopeSet;
use crate::core::url::{push_u64, BaseUrl};
use std::borrow::Cow;

/// A JSON setting that should be an array of flat objects (`GATEWAY_KEYS`,
/// `GATEWAY_ROUTES`), as the host's JSON parser read it: the glue parses, the core
/// judges, so the wasm carries no JSON parser of its own.
#[derive(Debug)]
pub enum JsonRows {
    /// Not JSON at all.
    NotJson,
    /// A JSON object (for `GATEWAY_KEYS`: the old plaintext form, key -> scopes).
    Object,
    /// JSON, but neither an array nor an object.
    NotArray,
    /// An array: each element's members in order, or `None` for an element that is
    /// not an object.
    Rows(Vec<Option<Vec<(String, RowValue)>>>),
}

/// One member's value in a [`JsonRows`] row.
#[derive(Debug)]
pub enum RowValue {
    /// A string.
    Text(String),
    /// An array of strings.
    List(Vec<String>),
    /// `true` or `false`.
    Bool(bool),
    /// Anything else (a number, `null`, a nested object, a mixed array).
    Other,
}

/// The gateway's settings as read from the Worker's `env`, not yet validated.
#[derive(Debug, Default)]
pub struct GatewayEnv {
    /// The token client's settings, as the client's options hold them: `VCC_REGION`,
    /// `VCC_CLIENT_ID`, `VCC_CLIENT_SECRET` (a Worker secret), `VCC_AUTH_BASE_URL` and
    /// `VCC_API_BASE_URL` (see [`setting_of`]). The gateway sets the margins and
    /// `autoRefresh` itself.
    pub vcc: RawConfig,
    /// `ALLOWED_ORIGINS`, comma-separated.
    pub allowed_origins: Option<String>,
    /// `GATEWAY_KEYS`; `None` when unset.
    pub gateway_keys: Option<JsonRows>,
    /// `GATEWAY_ROUTES`: extra route rows; `None` when unset.
    pub gateway_routes: Option<JsonRows>,
    /// People who sign in: `ACCESS_*` and `GATEWAY_ACCESS_POLICY`.
    pub identity: super::identity::IdentityEnv,
    /// `GATEWAY_RATE_LIMIT_PERIOD`: the rate limit binding's period in seconds (10 or
    /// 60, default 60), which `Retry-After` gives; the binding itself does not say.
    pub rate_limit_period: Option<String>,
    /// `UPSTREAM_TIMEOUT_MS` (default 30000).
    pub upstream_timeout_ms: Option<String>,
    /// `BODY_TIMEOUT_MS` (default 10000).
    pub body_timeout_ms: Option<String>,
    /// `BODY_BUFFER_LIMIT`: bytes of request bodies one isolate may hold at once
    /// (default [`super::BODY_BUFFER_DEFAULT`]).
    pub body_buffer_limit: Option<String>,
    /// `REFRESH_AHEAD_MS`: cap of the refresh-ahead window, as the client's
    /// `refreshAheadMs` (default 300000; the window is min(cap, half the lifetime)).
    pub refresh_ahead_ms: Option<String>,
    /// `EXPIRY_MARGIN_MS`: cap of the hard margin, as the client's `expiryMarginMs`
    /// (default 60000; the margin is min(cap, 10 % of the lifetime)).
    pub expiry_margin_ms: Option<String>,
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

/// Validated gateway settings.
pub struct GatewayConfig {
    /// Token client settings (region or base URLs, client id and secret).
    pub settings: Settings,
    pub(super) grants: Vec<Grant>,
    pub(super) allowed_origins: Vec<String>,
    /// How long one exchange with VCC may take, from sending the request to the last byte
    /// of its answer: 504 if no answer came by then, a cut-off body if it was streaming.
    pub upstream_timeout_ms: u32,
    /// How long a caller may take to send its request body: 408 past it.
    pub body_timeout_ms: u32,
    /// The most bytes of request bodies the isolate holds at once: 503 past it.
    pub body_buffer_limit: u64,
    /// `GATEWAY_ROUTES` rows, looked up with the built-in table.
    pub(super) extra_routes: Vec<Route>,
    /// Seconds a rate-limited caller is told to wait (`Retry-After`).
    pub rate_limit_period_s: u32,
    /// `VCC_REGION`, where the token broker is placed.
    pub region: Option<Region>,
    /// Who may sign in, and what the policy grants them (`None`: keys only).
    pub identities: Option<std::sync::Arc<super::identity::Identities>>,
}

impl core::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("settings", &self.settings)
            .field("keys", &self.grants.iter().map(|g| g.id.as_str()).collect::<Vec<_>>())
            .field("extra_routes", &self.extra_routes)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

pub(super) fn bad(setting: &'static str, problem: &'static str) -> Misconfigured {
    Misconfigured { setting, problem: problem.into() }
}

/// The gateway setting that feeds a token-client option. The gateway sets only these
/// five options (and `autoRefresh`, which cannot fail), so any other field is named as
/// itself rather than blamed on a setting that did not cause it.
pub fn setting_of(field: &'static str) -> &'static str {
    match field {
        "region" => "VCC_REGION",
        "clientId" => "VCC_CLIENT_ID",
        "clientSecret" => "VCC_CLIENT_SECRET",
        "authBaseUrl" => "VCC_AUTH_BASE_URL",
        "apiBaseUrl" => "VCC_API_BASE_URL",
        other => other,
    }
}

/// A setting in whole milliseconds within `range` (else `problem`), `None` when unset
/// or blank. The timeouts and the margin caps differ only in range and default.
fn millis_in(
    setting: &'static str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<u32>,
    problem: &'static str,
) -> Result<Option<u32>, Misconfigured> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<u32>().ok().filter(|n| range.contains(n)).map(Some).ok_or_else(|| bad(setting, problem)),
    }
}

/// A timeout setting: whole milliseconds from 1 to 120000, or `default` when unset.
fn millis(setting: &'static str, value: Option<&str>, default: u32) -> Result<u32, Misconfigured> {
    let problem = "must be a number of milliseconds from 1 to 120000";
    Ok(millis_in(setting, value, 1..=120_000, problem)?.unwrap_or(default))
}

/// A margin cap: whole milliseconds from 0 to 3600000 (the client's range), `None` when
/// unset so that the client's default applies.
fn margin(setting: &'static str, value: Option<&str>) -> Result<Option<f64>, Misconfigured> {
    let problem = "must be a number of milliseconds from 0 to 3600000";
    Ok(millis_in(setting, value, 0..=3_600_000, problem)?.map(f64::from))
}

/// `problem` about row `index` (counted from 1) of `setting`.
pub(super) fn bad_row(setting: &'static str, index: usize, problem: &str) -> Misconfigured {
    let mut p = String::from("entry ");
    push_u64(&mut p, index as u64 + 1);
    p.push(' ');
    p.push_str(problem);
    Misconfigured { setting, problem: Cow::Owned(p) }
}

/// The text of member `name`, `Err` if it is there but not a string.
pub(super) fn text<'a>(row: &'a [(String, RowValue)], name: &str) -> Result<Option<&'a str>, ()> {
    match row.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
        None => Ok(None),
        Some(RowValue::Text(t)) => Ok(Some(t)),
        Some(_) => Err(()),
    }
}

/// Parses `2027-01-31T00:00:00Z` or `2027-01-31` (UTC midnight) to Unix ms. Only
/// these two strict forms: an expiry must not depend on a guess about time zones. Hand
/// written (civil-from-days, as in Howard Hinnant's date algorithms): a date crate
/// would add more to the wasm than the gateway's one date field is worth.
pub fn parse_utc(s: &str) -> Option<u64> {
    let num = |a: usize, b: usize| -> Option<u64> {
        let part = s.get(a..b)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if !(s.len() == 10 || (s.len() == 20 && s.get(10..11)? == "T" && s.get(19..)? == "Z")) {
        return None;
    }
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = if s.len() == 20 {
        if s.get(13..14)? != ":" || s.get(16..17)? != ":" {
            return None;
        }
        (num(11, 13)?, num(14, 16)?, num(17, 19)?)
    } else {
        (0, 0, 0)
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    if d < 1 || d > *days_in_month.get(m as usize - 1)? {
        return None;
    }
    // Days from 1970-01-01 to y-m-d (March-based year, so the leap day comes last).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

/// Whether an `id` is fit for logs: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether each of `scopes` is `*` or one valid scope, and there is at least one.
pub fn valid_key_scopes(scopes: &[String]) -> bool {
    !scopes.is_empty()
        && scopes.iter().all(|s| s == "*" || (!s.contains(' ') && ScopeSet::parse(s).is_ok_and(|p| p.as_str() == s)))
}

const KEYS_SHAPE: &str =
    "is a JSON array of entries {\"id\", \"sha256\", \"scopes\", \"expires\"?}; mint each key with make key";

/// `GATEWAY_KEYS`: never echoes a value, since a value may be a key pasted by mistake.
/// Required unless people sign in (`people`).
fn grants(rows: Option<JsonRows>, people: bool) -> Result<Vec<Grant>, Misconfigured> {
    const S: &str = "GATEWAY_KEYS";
    let rows = match rows {
        None if people => return Ok(Vec::new()),
        None => return Err(Misconfigured { setting: S, problem: Cow::Owned(["is required: it ", KEYS_SHAPE].concat()) }),
        Some(JsonRows::Object) => {
            return Err(bad(
                S,
                "holds plaintext keys (the old key -> scopes object), which is refused: mint new keys with \
                 make key ID=<id> SCOPES=\"<scope> ...\", put the entries it prints in a JSON array, and retire the old keys",
            ))
        }
        Some(JsonRows::NotJson | JsonRows::NotArray) => {
            return Err(Misconfigured { setting: S, problem: Cow::Owned(["must be valid JSON: it ", KEYS_SHAPE].concat()) })
        }
        Some(JsonRows::Rows(rows)) => rows,
    };
    if rows.is_empty() {
        return Err(bad(S, "has no entries"));
    }
    let mut grants: Vec<Grant> = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let row = row.ok_or_else(|| bad_row(S, i, "is not an object"))?;
        if row.iter().any(|(k, _)| k == "key") {
            return Err(bad_row(
                S,
                i,
                "holds a plaintext key, which is refused: keep only its SHA-256 (make key prints the entry)",
            ));
        }
        if let Some((_, _)) = row.iter().find(|(k, _)| !matches!(k.as_str(), "id" | "sha256" | "scopes" | "expires")) {
            return Err(bad_row(S, i, "has a member other than id, sha256, scopes and expires"));
        }
        let id = text(&row, "id").ok().flatten().filter(|id| valid_key_id(id));
        let id = id.ok_or_else(|| bad_row(S, i, "needs an id of 1 to 64 letters, digits, . _ or -"))?;
        if grants.iter().any(|g| g.id == id) {
            return Err(bad_row(S, i, "repeats another entry's id"));
        }
        let sha = text(&row, "sha256").map_err(|_| bad_row(S, i, "needs sha256 as a string"))?;
        let sha = sha.ok_or_else(|| bad_row(S, i, "needs sha256: the key's SHA-256 in hex"))?;
        if sha.starts_with(KEY_PREFIX) {
            return Err(bad_row(
                S,
                i,
                "holds a key where its SHA-256 belongs: keep only the digest (make key prints it)",
            ));
        }
        let mut digest = [0u8; 32];
        if sha.len() != 64 || hex::decode_to_slice(sha, &mut digest).is_err() {
            return Err(bad_row(S, i, "has a sha256 that is not 64 hex digits"));
        }
        if grants.iter().any(|g| g.digest == digest) {
            return Err(bad_row(S, i, "repeats another entry's sha256"));
        }
        let scopes = match row.iter().find(|(k, _)| k == "scopes").map(|(_, v)| v) {
            Some(RowValue::List(s)) if valid_key_scopes(s) => s.clone(),
            _ => return Err(bad_row(S, i, "needs scopes: a non-empty list of valid scopes, or [\"*\"]")),
        };
        let expires_ms = match text(&row, "expires") {
            Ok(None) => None,
            Ok(Some(t)) => Some(
                parse_utc(t)
                    .ok_or_else(|| bad_row(S, i, "has an expires that is not a UTC time like 2027-01-31T00:00:00Z"))?,
            ),
            Err(()) => return Err(bad_row(S, i, "has an expires that is not a UTC time like 2027-01-31T00:00:00Z")),
        };
        grants.push(Grant { id: id.to_owned(), digest, scopes, expires_ms });
    }
    Ok(grants)
}

/// Whether path prefix `inner` is `outer` or under it, whole segments, ASCII case
/// ignored (VCC's servers may not tell `/Auth` from `/auth`).
fn under(inner: &str, outer: &str) -> bool {
    inner.len() >= outer.len()
        && inner.get(..outer.len()).is_some_and(|head| head.eq_ignore_ascii_case(outer))
        && (inner.len() == outer.len() || outer.ends_with('/') || inner.as_bytes().get(outer.len()) == Some(&b'/'))
}

/// `GATEWAY_ROUTES`: rows `{"methods": "read"|"write"|"delete"|"post", "prefix": "/x",
/// "scope": "s"}`, kept to the built-in rows' rules. A row may not change what a key
/// reaches: not repeat a built-in row's prefix and methods, not sit under a built-in
/// prefix with another scope (a `stats` row under `/useradmin/users` would hand users
/// to `stats` keys), and not reach the token endpoint's path where the API and the
/// token endpoint share an origin.
fn extra_routes(rows: Option<JsonRows>, settings: &Settings) -> Result<Vec<Route>, Misconfigured> {
    const S: &str = "GATEWAY_ROUTES";
    let rows = match rows {
        None => return Ok(Vec::new()),
        Some(JsonRows::Rows(rows)) => rows,
        Some(_) => {
            return Err(bad(
                S,
                "must be a JSON array of rows {\"methods\": \"read\"|\"write\"|\"delete\"|\"post\", \"prefix\": \"/path\", \"scope\": \"scope\"}",
            ))
        }
    };
    let mut out: Vec<Route> = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let row = row.ok_or_else(|| bad_row(S, i, "is not an object"))?;
        if row.iter().any(|(k, _)| !matches!(k.as_str(), "methods" | "prefix" | "scope")) {
            return Err(bad_row(S, i, "has a member other than methods, prefix and scope"));
        }
        let get = |name| text(&row, name).ok().flatten();
        let methods = get("methods")
            .and_then(Methods::parse)
            .ok_or_else(|| bad_row(S, i, "needs methods: \"read\", \"write\", \"delete\" or \"post\""))?;
        let (Some(prefix), Some(scope)) = (get("prefix"), get("scope")) else {
            return Err(bad_row(S, i, "needs a prefix and a scope, both strings"));
        };
        let route = Route::new(methods, prefix, scope).map_err(|p| bad_row(S, i, p))?;
        let repeats = |r: &Route| r.prefix == route.prefix && r.methods == route.methods;
        if routes::ROUTES.iter().any(repeats) {
            return Err(bad_row(S, i, "repeats a built-in route (same prefix and methods)"));
        }
        // The built-in rows this row's paths fall under: those of the same methods (or,
        // for methods none of them has, any) must all want the row's scope.
        let covering: Vec<&Route> = routes::ROUTES.iter().filter(|b| under(&route.prefix, &b.prefix)).collect();
        let same_methods: Vec<&&Route> = covering.iter().filter(|b| b.methods.overlaps(route.methods)).collect();
        let widens = if same_methods.is_empty() {
            !covering.is_empty() && covering.iter().all(|b| b.scope != route.scope)
        } else {
            same_methods.iter().any(|b| b.scope != route.scope)
        };
        if widens {
            return Err(bad_row(
                S,
                i,
                "is under a built-in route's prefix with another scope (it would let keys of its scope reach that API)",
            ));
        }
        let (api, auth) = (&settings.api_base, &settings.auth_base);
        if api.origin().eq_ignore_ascii_case(&auth.origin()) {
            let reached = [api.prefix(), &route.prefix].concat();
            let token_path = [auth.prefix(), TOKEN_PATH].concat();
            if under(&token_path, &reached) || under(&reached, &token_path) {
                return Err(bad_row(
                    S,
                    i,
                    "reaches the token endpoint (the API and the token endpoint share an origin)",
                ));
            }
        }
        if out.iter().any(repeats) {
            return Err(bad_row(S, i, "repeats an earlier row (same prefix and methods)"));
        }
        out.push(route);
    }
    Ok(out)
}

impl GatewayEnv {
    /// Validates every setting; the first problem names its setting.
    pub fn validate(self) -> Result<GatewayConfig, Misconfigured> {
        let region = self.vcc.region.as_deref().map(str::trim).and_then(Region::parse);
        let raw = RawConfig {
            refresh_ahead_ms: margin("REFRESH_AHEAD_MS", self.refresh_ahead_ms.as_deref())?,
            expiry_margin_ms: margin("EXPIRY_MARGIN_MS", self.expiry_margin_ms.as_deref())?,
            // workerd: no timers doing I/O outside a request; refresh-ahead is lazy.
            auto_refresh: Some(false),
            ..self.vcc
        };
        let settings =
            raw.validate().map_err(|e| Misconfigured { setting: setting_of(e.field), problem: e.problem.into() })?;
        let identities = self.identity.validate()?.map(std::sync::Arc::new);
        let grants = grants(self.gateway_keys, identities.is_some())?;
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
        let body_buffer_limit = match self.body_buffer_limit.as_deref().map(str::trim) {
            None | Some("") => super::BODY_BUFFER_DEFAULT,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|n| (super::BODY_LIMIT..=64 << 20).contains(n))
                .ok_or_else(|| bad("BODY_BUFFER_LIMIT", "must be a number of bytes from 102400 to 67108864"))?,
        };
        let extra_routes = extra_routes(self.gateway_routes, &settings)?;
        let rate_limit_period_s = match self.rate_limit_period.as_deref().map(str::trim) {
            None | Some("") | Some("60") => 60,
            Some("10") => 10,
            Some(_) => {
                return Err(bad("GATEWAY_RATE_LIMIT_PERIOD", "must be 10 or 60 (the binding's period, seconds)"))
            }
        };
        Ok(GatewayConfig {
            settings,
            grants,
            allowed_origins,
            upstream_timeout_ms,
            body_timeout_ms,
            body_buffer_limit,
            extra_routes,
            rate_limit_period_s,
            region,
            identities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gateway::fixtures::{self as fx, *};
    use crate::core::token::Margins;

    fn keys(rows: Vec<Option<Vec<(String, RowValue)>>>) -> GatewayEnv {
        GatewayEnv { gateway_keys: Some(JsonRows::Rows(rows)), ..env() }
    }

    fn routes(rows: Vec<Option<Vec<(String, RowValue)>>>) -> GatewayEnv {
        GatewayEnv { gateway_routes: Some(JsonRows::Rows(rows)), ..env() }
    }

    #[test]
    fn misconfiguration_names_the_setting_never_the_value() {
        let digest = digest_hex(&KEY_ALL);
        let entry = |extra: &[(&str, RowValue)]| {
            let mut r = vec![("id", fx::text("a")), ("sha256", fx::text(&digest)), ("scopes", fx::list(&["*"]))];
            for (k, v) in extra {
                r.retain(|(n, _)| n != k);
                r.push((
                    k,
                    match v {
                        RowValue::Text(t) => RowValue::Text(t.clone()),
                        RowValue::List(l) => RowValue::List(l.clone()),
                        RowValue::Bool(b) => RowValue::Bool(*b),
                        RowValue::Other => RowValue::Other,
                    },
                ));
            }
            row(&r)
        };
        let cases: Vec<(GatewayEnv, &str, &str)> = vec![
            (GatewayEnv { vcc: RawConfig { client_id: None, ..env().vcc }, ..env() }, "VCC_CLIENT_ID", ""),
            (GatewayEnv { vcc: RawConfig { client_secret: None, ..env().vcc }, ..env() }, "VCC_CLIENT_SECRET", ""),
            (GatewayEnv { vcc: RawConfig { region: Some("mars".into()), ..env().vcc }, ..env() }, "VCC_REGION", ""),
            (GatewayEnv { vcc: RawConfig { region: None, ..env().vcc }, ..env() }, "VCC_REGION", ""),
            (
                GatewayEnv {
                    vcc: RawConfig { api_base_url: Some("http://evil.example".into()), ..env().vcc },
                    ..env()
                },
                "VCC_API_BASE_URL",
                "",
            ),
            (
                GatewayEnv { vcc: RawConfig { auth_base_url: Some("ftp://x".into()), ..env().vcc }, ..env() },
                "VCC_AUTH_BASE_URL",
                "",
            ),
            (GatewayEnv { gateway_keys: None, ..env() }, "GATEWAY_KEYS", "required"),
            (GatewayEnv { gateway_keys: Some(JsonRows::NotJson), ..env() }, "GATEWAY_KEYS", "valid JSON"),
            (GatewayEnv { gateway_keys: Some(JsonRows::Object), ..env() }, "GATEWAY_KEYS", "plaintext keys"),
            (keys(vec![]), "GATEWAY_KEYS", "no entries"),
            (keys(vec![None]), "GATEWAY_KEYS", "entry 1 is not an object"),
            (keys(vec![entry(&[("key", fx::text(&KEY_ALL))])]), "GATEWAY_KEYS", "plaintext key"),
            (keys(vec![entry(&[("sha256", fx::text(&KEY_ALL))])]), "GATEWAY_KEYS", "holds a key where"),
            (keys(vec![entry(&[("sha256", fx::text("abc"))])]), "GATEWAY_KEYS", "64 hex"),
            (keys(vec![entry(&[("sha256", RowValue::Other)])]), "GATEWAY_KEYS", "sha256 as a string"),
            (keys(vec![entry(&[("id", fx::text("has space"))])]), "GATEWAY_KEYS", "needs an id"),
            (keys(vec![entry(&[("scopes", fx::list(&[]))])]), "GATEWAY_KEYS", "scopes"),
            (keys(vec![entry(&[("scopes", fx::list(&["Stats"]))])]), "GATEWAY_KEYS", "scopes"),
            (keys(vec![entry(&[("scopes", fx::text("stats"))])]), "GATEWAY_KEYS", "scopes"),
            (keys(vec![entry(&[("expires", fx::text("tomorrow"))])]), "GATEWAY_KEYS", "UTC time"),
            (keys(vec![entry(&[("expires", fx::text("2027-02-30"))])]), "GATEWAY_KEYS", "UTC time"),
            (keys(vec![entry(&[("expire", fx::text("2027-01-01"))])]), "GATEWAY_KEYS", "a member other"),
            (
                keys(vec![entry(&[]), entry(&[("id", fx::text("b"))])]),
                "GATEWAY_KEYS",
                "entry 2 repeats another entry's sha256",
            ),
            (keys(vec![entry(&[]), entry(&[])]), "GATEWAY_KEYS", "entry 2 repeats another entry's id"),
            (GatewayEnv { allowed_origins: Some("https://a.example/path".into()), ..env() }, "ALLOWED_ORIGINS", ""),
            (GatewayEnv { allowed_origins: Some("*".into()), ..env() }, "ALLOWED_ORIGINS", ""),
            (GatewayEnv { upstream_timeout_ms: Some("soon".into()), ..env() }, "UPSTREAM_TIMEOUT_MS", ""),
            (GatewayEnv { upstream_timeout_ms: Some("0".into()), ..env() }, "UPSTREAM_TIMEOUT_MS", ""),
            (GatewayEnv { body_timeout_ms: Some("120001".into()), ..env() }, "BODY_TIMEOUT_MS", ""),
            (GatewayEnv { body_buffer_limit: Some("1000".into()), ..env() }, "BODY_BUFFER_LIMIT", "102400"),
            (GatewayEnv { body_buffer_limit: Some("lots".into()), ..env() }, "BODY_BUFFER_LIMIT", ""),
            (GatewayEnv { refresh_ahead_ms: Some("3600001".into()), ..env() }, "REFRESH_AHEAD_MS", "0 to 3600000"),
            (GatewayEnv { refresh_ahead_ms: Some("-1".into()), ..env() }, "REFRESH_AHEAD_MS", ""),
            (GatewayEnv { expiry_margin_ms: Some("1.5".into()), ..env() }, "EXPIRY_MARGIN_MS", ""),
            (GatewayEnv { rate_limit_period: Some("30".into()), ..env() }, "GATEWAY_RATE_LIMIT_PERIOD", ""),
            (GatewayEnv { gateway_routes: Some(JsonRows::Object), ..env() }, "GATEWAY_ROUTES", "JSON array"),
            (routes(vec![None]), "GATEWAY_ROUTES", "entry 1 is not an object"),
            (
                routes(vec![row(&[
                    ("methods", fx::text("get")),
                    ("prefix", fx::text("/r")),
                    ("scope", fx::text("stats")),
                ])]),
                "GATEWAY_ROUTES",
                "needs methods",
            ),
            (
                routes(vec![row(&[
                    ("methods", fx::text("read")),
                    ("prefix", fx::text("/r/")),
                    ("scope", fx::text("stats")),
                ])]),
                "GATEWAY_ROUTES",
                "plain path",
            ),
            (
                routes(vec![row(&[
                    ("methods", fx::text("read")),
                    ("prefix", fx::text("/r")),
                    ("scope", fx::text("*")),
                ])]),
                "GATEWAY_ROUTES",
                "one valid scope",
            ),
            (
                routes(vec![row(&[
                    ("methods", fx::text("read")),
                    ("prefix", fx::text("/stats")),
                    ("scope", fx::text("admin:read")),
                ])]),
                "GATEWAY_ROUTES",
                "repeats a built-in",
            ),
            (
                routes(vec![row(&[("methods", fx::text("read")), ("prefix", fx::text("/r"))])]),
                "GATEWAY_ROUTES",
                "needs a prefix and a scope",
            ),
            (
                routes(vec![row(&[
                    ("methods", fx::text("read")),
                    ("prefix", fx::text("/r")),
                    ("scope", fx::text("stats")),
                    ("accept", fx::text("x")),
                ])]),
                "GATEWAY_ROUTES",
                "member other",
            ),
        ];
        for (e, setting, says) in cases {
            let m = e.validate().unwrap_err();
            assert_eq!(m.setting, setting, "{m:?}");
            assert!(m.problem.contains(says), "{setting}: {:?} lacks {says:?}", m.problem);
            let shown = format!("{} {:?}", m.message(), m);
            for secret in ["gateway-secret-value", &KEY_ALL, &digest, "mars", "tomorrow"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        let dbg = format!("{:?}", cfg());
        assert!(!dbg.contains(&*KEY_ALL) && !dbg.contains(&digest) && !dbg.contains("gateway-secret-value"), "{dbg}");
        assert!(dbg.contains("wallboard"), "ids may be shown: {dbg}");
    }

    #[test]
    fn route_rows_cannot_widen_a_key() {
        let row_for = |prefix: &str, scope: &str| {
            routes(vec![row(&[
                ("methods", fx::text("read")),
                ("prefix", fx::text(prefix)),
                ("scope", fx::text(scope)),
            ])])
        };
        // Under a built-in prefix with another scope: refused, naming the row.
        let m = row_for("/useradmin/users/me", "stats").validate().unwrap_err();
        assert_eq!(m.setting, "GATEWAY_ROUTES");
        assert!(m.problem.starts_with("entry 1 is under a built-in"), "{}", m.problem);
        assert!(row_for("/Stats/extra", "admin:read").validate().is_err(), "case does not hide it");
        // Under it with the same scope, or beside it: kept.
        assert!(row_for("/useradmin/users/me", "users:read").validate().is_ok());
        assert!(row_for("/useradmin/roles", "admin:read").validate().is_ok());
        assert!(row_for("/statsx", "admin:read").validate().is_ok(), "a segment, not a string prefix");
        // The API on the token endpoint's origin: a row reaching its path is refused.
        let same = |prefix: &str| {
            let mut e = row_for(prefix, "admin:read");
            e.vcc.auth_base_url = Some("https://vcc.example.com".into());
            e.vcc.api_base_url = Some("https://vcc.example.com".into());
            e.validate()
        };
        for prefix in ["/Auth/connect/token", "/Auth", "/auth/connect", "/Auth/connect/token/x"] {
            let m = same(prefix).unwrap_err();
            assert!(m.problem.contains("token endpoint"), "{prefix}: {}", m.problem);
        }
        assert!(same("/Authors").is_ok());
        // On another origin (VCC's own layout) the same row reaches no token endpoint.
        assert!(row_for("/Auth/connect/token", "admin:read").validate().is_ok());
    }

    #[test]
    fn a_good_route_row_is_kept() {
        let c = routes(vec![row(&[
            ("methods", fx::text("read")),
            ("prefix", fx::text("/reports")),
            ("scope", fx::text("stats")),
        ])])
        .validate()
        .unwrap();
        assert_eq!(c.extra_routes.len(), 1);
        assert_eq!(
            (
                cfg().rate_limit_period_s,
                GatewayEnv { rate_limit_period: Some("10".into()), ..env() }.validate().unwrap().rate_limit_period_s
            ),
            (60, 10)
        );
    }

    #[test]
    fn margin_caps_reach_the_token_cache() {
        // unset (or blank): the client's defaults, so a gateway and a client agree
        let blank = GatewayEnv { refresh_ahead_ms: Some(" ".into()), ..env() };
        assert_eq!(blank.validate().unwrap().settings.margins, Margins::default());
        let c = GatewayEnv { refresh_ahead_ms: Some("200".into()), expiry_margin_ms: Some("0".into()), ..env() }
            .validate()
            .unwrap();
        assert_eq!(c.settings.margins, Margins { soft_cap_ms: 200, hard_cap_ms: 0 });
        // a 5 s token: refresh 4.8 s in, usable to its expiry
        assert_eq!((c.settings.margins.soft(5_000), c.settings.margins.hard(5_000)), (200, 0));
    }

    #[test]
    fn utc_times_parse_strictly() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-11-25"), Some(NOW));
        assert_eq!(parse_utc("2000-02-29T12:34:56Z"), Some(951_827_696_000));
        assert_eq!(parse_utc("2099-12-31T23:59:59Z"), Some(4_102_444_799_000));
        for bad in [
            "2026-11-25T00:00:00",
            "2026-11-25T00:00:00+01:00",
            "2026-11-25 00:00:00Z",
            "2026-13-01",
            "2026-02-29",
            "1900-02-29",
            "2026-11-25T24:00:00Z",
            "2026-1-25",
            "+026-11-25",
            "1969-12-31",
            "",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
