//! People: who a request's signed-in person is, from a JWT their identity provider
//! signed (Cloudflare Access's `Cf-Access-Jwt-Assertion`, or any OIDC issuer's token as
//! `Authorization: Bearer`), and what the policy lets them reach.
//!
//! Everything but the signature is decided here, pure and fuzzed: which credential a
//! request carries, the assertion's shape and size, its header (the algorithm is pinned
//! by configuration: never `none`, never an HMAC keyed with a public key), its claims
//! (issuer, audience, expiry and not-before with a leeway), which JWKS key may verify
//! it, and the policy rows. The glue decodes (the host's `atob` and `JSON.parse`), fetches
//! the JWKS and verifies the signature with WebCrypto.

use std::borrow::Cow;

use super::settings::{bad, bad_row, text, JsonRows, Misconfigured, RowValue};
use super::{valid_key_scopes, Refusal};
use crate::core::url::BaseUrl;

/// The largest assertion read at all: one over it is refused unread.
pub const MAX_ASSERTION_BYTES: usize = 16 << 10;
/// The clock skew allowed either side of `exp` and `nbf`.
pub const LEEWAY_MS: u64 = 60_000;
/// The least time between two JWKS fetches for an unknown `kid`: a flood of made-up
/// `kid`s costs one fetch per 10 s, and a rotation is still picked up within seconds.
pub const JWKS_REFETCH_MS: u64 = 10_000;
/// How long a JWKS is trusted before the next request that needs a key refetches it (a
/// key the issuer withdrew stops working within this).
pub const JWKS_MAX_AGE_MS: u64 = 3_600_000;
/// The largest JWKS answer read (an issuer publishes a few keys: a few KB).
pub const JWKS_BODY_CAP: u32 = 64 << 10;
/// A JWKS fetch's deadline, body included.
pub const JWKS_TIMEOUT_MS: u32 = 5_000;

/// A signature algorithm the gateway verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Cloudflare Access; most OIDC issuers).
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Alg {
    /// `RS256` or `ES256`, as JOSE names them.
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// Who to trust for identities: the `ACCESS_*` settings and `GATEWAY_ACCESS_POLICY`.
#[derive(Debug)]
pub struct Identities {
    /// `ACCESS_ISSUER`: the `iss` every assertion must carry.
    pub issuer: String,
    /// `ACCESS_AUDIENCE`: the `aud` every assertion must name.
    pub audience: String,
    /// `ACCESS_JWKS_URL`, or `<ACCESS_ISSUER>/cdn-cgi/access/certs`.
    pub jwks_url: String,
    /// `ACCESS_ALGORITHMS` (default RS256).
    pub algorithms: Vec<Alg>,
    /// `ACCESS_LOG_EMAIL`: log lines carry the person's email beside its `sub`.
    pub log_email: bool,
    /// `GATEWAY_ACCESS_POLICY`.
    pub policy: Vec<PolicyRow>,
}

/// The identity settings as read from `env`, not yet validated.
#[derive(Debug, Default)]
pub struct IdentityEnv {
    /// `ACCESS_ISSUER`.
    pub issuer: Option<String>,
    /// `ACCESS_AUDIENCE`.
    pub audience: Option<String>,
    /// `ACCESS_JWKS_URL`.
    pub jwks_url: Option<String>,
    /// `ACCESS_ALGORITHMS`, comma-separated.
    pub algorithms: Option<String>,
    /// `ACCESS_LOG_EMAIL` (`true` turns it on).
    pub log_email: Option<String>,
    /// `GATEWAY_ACCESS_POLICY`.
    pub policy: Option<JsonRows>,
}

impl IdentityEnv {
    /// `None` when people do not sign in (no `ACCESS_ISSUER`); the first bad setting
    /// named otherwise.
    pub fn validate(self) -> Result<Option<Identities>, Misconfigured> {
        let Some(issuer) = self.issuer.map(|s| s.trim().to_owned()) else {
            if self.audience.is_some() || self.policy.is_some() {
                return Err(bad("ACCESS_ISSUER", "is required with ACCESS_AUDIENCE and GATEWAY_ACCESS_POLICY"));
            }
            return Ok(None);
        };
        if BaseUrl::parse(&issuer).is_err() {
            return Err(bad(
                "ACCESS_ISSUER",
                "must be an https URL (http only for loopback), e.g. https://team.cloudflareaccess.com",
            ));
        }
        let audience = self.audience.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).ok_or_else(|| {
            bad("ACCESS_AUDIENCE", "is required with ACCESS_ISSUER: the aud every sign-in token must name")
        })?;
        let jwks_url = match self.jwks_url.map(|s| s.trim().to_owned()) {
            Some(u) => u,
            None => [issuer.trim_end_matches('/'), "/cdn-cgi/access/certs"].concat(),
        };
        if BaseUrl::parse(&jwks_url).is_err() {
            return Err(bad("ACCESS_JWKS_URL", "must be an https URL (http only for loopback), without a query"));
        }
        let algorithms = match self.algorithms.as_deref().map(str::trim) {
            None | Some("") => vec![Alg::Rs256],
            Some(list) => {
                let algs: Option<Vec<Alg>> = list.split(',').map(|a| Alg::parse(a.trim())).collect();
                algs.filter(|a| !a.is_empty())
                    .ok_or_else(|| bad("ACCESS_ALGORITHMS", "must be RS256, ES256 or both, comma-separated"))?
            }
        };
        let log_email = match self.log_email.as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad("ACCESS_LOG_EMAIL", "must be true or false")),
        };
        let policy = policy_rows(self.policy)?;
        Ok(Some(Identities { issuer, audience, jwks_url, algorithms, log_email, policy }))
    }
}

/// Who a policy row is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// One address: the local part exact, the domain without case.
    Email(String, String),
    /// `*@domain`: any address of that domain (without case), no subdomains.
    Domain(String),
    /// A claim that is this string, or an array holding it (`groups`). A dotted name
    /// is a path into nested claims (`custom.groups`).
    Claim(String, String),
}

/// One `GATEWAY_ACCESS_POLICY` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRow {
    /// Who it is for.
    pub matcher: Matcher,
    /// What it grants (`*` for every API; `gateway:admin` is not implied by it).
    pub scopes: Vec<String>,
    /// Whether it grants the gateway's admin role (`/healthz`'s details).
    pub admin: bool,
}

const POLICY_SHAPE: &str = "must be a JSON array of rows {\"email\": \"ana@example.com\" | \"*@example.com\", \
     \"scopes\": [...], \"admin\"?: true} or {\"claim\": \"groups\", \"value\": \"...\", \"scopes\": [...], \"admin\"?: true}";

fn split_email(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some((local, domain))
}

/// `GATEWAY_ACCESS_POLICY`: checked at startup, a bad row named by its number.
fn policy_rows(rows: Option<JsonRows>) -> Result<Vec<PolicyRow>, Misconfigured> {
    const S: &str = "GATEWAY_ACCESS_POLICY";
    let rows = match rows {
        None => {
            return Err(bad(S, "is required with ACCESS_ISSUER (deny by default: a person no row names is refused)"))
        }
        Some(JsonRows::Rows(rows)) => rows,
        Some(_) => return Err(Misconfigured { setting: S, problem: Cow::Borrowed(POLICY_SHAPE) }),
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let row = row.ok_or_else(|| bad_row(S, i, "is not an object"))?;
        if row.iter().any(|(k, _)| !matches!(k.as_str(), "email" | "claim" | "value" | "scopes" | "admin")) {
            return Err(bad_row(S, i, "has a member other than email, claim, value, scopes and admin"));
        }
        let get =
            |name| text(&row, name).map_err(|_| bad_row(S, i, "has a member that is not a string where one is needed"));
        let matcher = match (get("email")?, get("claim")?, get("value")?) {
            (Some(e), None, None) => match e.strip_prefix("*@") {
                Some(domain) if !domain.is_empty() && !domain.contains(['@', '*']) => {
                    Matcher::Domain(domain.to_ascii_lowercase())
                }
                Some(_) => return Err(bad_row(S, i, "has an email pattern that is not *@domain")),
                None => match split_email(e).filter(|_| !e.contains('*')) {
                    Some((local, domain)) => Matcher::Email(local.to_owned(), domain.to_ascii_lowercase()),
                    None => return Err(bad_row(S, i, "has an email that is not an address or *@domain")),
                },
            },
            (None, Some(c), Some(v)) if !c.is_empty() && !v.is_empty() => Matcher::Claim(c.to_owned(), v.to_owned()),
            _ => return Err(bad_row(S, i, "needs an email, or a claim and a value")),
        };
        let admin = match row.iter().find(|(k, _)| k == "admin").map(|(_, v)| v) {
            None => false,
            Some(RowValue::Bool(b)) => *b,
            Some(_) => return Err(bad_row(S, i, "has an admin that is not true or false")),
        };
        let scopes = match row.iter().find(|(k, _)| k == "scopes").map(|(_, v)| v) {
            Some(RowValue::List(s)) if s.is_empty() && admin => Vec::new(),
            Some(RowValue::List(s)) if valid_key_scopes(s) => s.clone(),
            _ => return Err(bad_row(S, i, "needs scopes: a list of valid scopes, or [\"*\"] (empty only with admin)")),
        };
        out.push(PolicyRow { matcher, scopes, admin });
    }
    Ok(out)
}

/// The credential a request carries. One decides: an `Authorization` bearer when there
/// is one (a JWT by its shape, otherwise a gateway key), otherwise
/// `Cf-Access-Jwt-Assertion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Neither.
    None,
    /// A bearer that is (or tries to be) a gateway key: the whole header.
    Key(&'a str),
    /// A JWT: the bearer's, or Access's header's.
    Assertion(&'a str),
}

/// Which credential decides (see [`Credential`]). With no issuer configured, every
/// bearer is a key (as before people could sign in) and the Access header is ignored.
pub fn credential<'a>(authorization: Option<&'a str>, access: Option<&'a str>, people: bool) -> Credential<'a> {
    if let Some(h) = authorization {
        let bearer = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim);
        return match bearer {
            // A JWT is three segments (`header.payload.signature`); a key has no dot, so a
            // mistyped key stays a key and is told it is malformed. Any other scheme, or
            // no bearer: the key check says no_key / malformed_key.
            Some(b) if people && b.bytes().filter(|&c| c == b'.').count() == 2 => Credential::Assertion(b),
            _ => Credential::Key(h),
        };
    }
    match access.map(str::trim).filter(|a| people && !a.is_empty()) {
        Some(a) => Credential::Assertion(a),
        None => Credential::None,
    }
}

/// An assertion split, before anything in it is believed: its segments converted to
/// standard padded base64 for the host's decoder, and what the signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// `header.payload`: the signed bytes.
    pub signing_input: &'a str,
    /// The header, base64.
    pub header: String,
    /// The payload, base64.
    pub payload: String,
    /// The signature, base64.
    pub signature: String,
}

/// Splits an assertion: at most [`MAX_ASSERTION_BYTES`], three non-empty base64url
/// segments. Refused unread otherwise.
pub fn split(jwt: &str) -> Result<Split<'_>, Refusal> {
    if jwt.len() > MAX_ASSERTION_BYTES {
        return Err(Refusal::BadIdentity);
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::BadIdentity);
    };
    let b64 =
        |seg: &str| crate::core::token::base64url_to_std(seg).filter(|_| !seg.is_empty()).ok_or(Refusal::BadIdentity);
    Ok(Split { signing_input: &jwt[..h.len() + 1 + p.len()], header: b64(h)?, payload: b64(p)?, signature: b64(s)? })
}

/// One JSON member of a header, claim set or JWK, as the host's `JSON.parse` gave it.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An array of strings.
    List(Vec<String>),
    /// Absent, null, or of another shape.
    Other,
}

impl Member {
    fn text(self) -> Option<String> {
        match self {
            Member::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Judges an assertion's header (members read by `read`): its `alg` must be one the
/// settings allow, its `kid` given, and no `crit` it would have to understand. The
/// key id and the algorithm to verify with.
pub fn judge_header(read: impl Fn(&str) -> Member, ids: &Identities) -> Result<(Alg, String), Refusal> {
    let alg = read("alg").text().and_then(|a| Alg::parse(&a)).filter(|a| ids.algorithms.contains(a));
    let Some(alg) = alg else { return Err(Refusal::BadIdentity) };
    if read("crit") != Member::Other {
        return Err(Refusal::BadIdentity);
    }
    let kid = read("kid").text().filter(|k| !k.is_empty() && k.len() <= 256).ok_or(Refusal::BadIdentity)?;
    Ok((alg, kid))
}

/// Whether a JWK (members read by `read`) may verify `alg`: its `kty` (and `crv`) fit,
/// `use` is `sig` if given, `alg` is this one if given, and the key members are there.
pub fn jwk_fits(read: impl Fn(&str) -> Member, alg: Alg) -> bool {
    let is = |name: &str, want: &str| read(name).text().as_deref() == Some(want);
    let has = |name: &str| read(name).text().is_some_and(|v| !v.is_empty());
    let optional = |name: &str, want: &str| match read(name) {
        Member::Other => true,
        m => m.text().as_deref() == Some(want),
    };
    if !optional("use", "sig") || !optional("alg", alg.as_str()) {
        return false;
    }
    match alg {
        Alg::Rs256 => is("kty", "RSA") && has("n") && has("e"),
        Alg::Es256 => is("kty", "EC") && is("crv", "P-256") && has("x") && has("y"),
    }
}

/// A verified, allowed person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// The `sub`: what logs and the rate limit name.
    pub sub: String,
    /// The `email`, if the issuer gave one (logged only with `ACCESS_LOG_EMAIL`).
    pub email: Option<String>,
    /// The `name`, if the issuer gave one (the page shows it).
    pub name: Option<String>,
    /// What the policy's rows grant, together.
    pub scopes: Vec<String>,
    /// Whether a row grants the admin role.
    pub admin: bool,
}

impl Identities {
    /// Judges a signed assertion's claims (members read by `read`) at `now_ms`: issuer,
    /// audience, `exp` (required) and `nbf` within [`LEEWAY_MS`], a `sub`; then the
    /// policy. The person, or why not.
    pub fn judge_claims(&self, read: impl Fn(&str) -> Member, now_ms: u64) -> Result<Person, Refusal> {
        if read("iss").text().as_deref() != Some(self.issuer.as_str()) {
            return Err(Refusal::IdentityWrongIssuer);
        }
        let aud_ok = match read("aud") {
            Member::Text(a) => a == self.audience,
            Member::List(list) => list.contains(&self.audience),
            _ => false,
        };
        if !aud_ok {
            return Err(Refusal::IdentityWrongAudience);
        }
        let seconds = |m: Member| match m {
            Member::Number(n) if n.is_finite() && n >= 0.0 => Some((n * 1000.0) as u64),
            _ => None,
        };
        let exp = seconds(read("exp")).ok_or(Refusal::BadIdentity)?;
        if now_ms >= exp.saturating_add(LEEWAY_MS) {
            return Err(Refusal::IdentityExpired);
        }
        match read("nbf") {
            Member::Other => {}
            m => match seconds(m) {
                Some(nbf) if now_ms.saturating_add(LEEWAY_MS) >= nbf => {}
                Some(_) => return Err(Refusal::IdentityNotYetValid),
                None => return Err(Refusal::BadIdentity),
            },
        }
        let sub = read("sub").text().filter(|s| !s.is_empty() && s.len() <= 256).ok_or(Refusal::BadIdentity)?;
        let verified = read("email_verified") != Member::Bool(false);
        let email = read("email").text().filter(|_| verified);
        let name = read("name").text().map(|n| n.chars().filter(|c| !c.is_control()).take(100).collect());
        let mut scopes: Vec<String> = Vec::new();
        let mut admin = false;
        let mut matched = false;
        for row in &self.policy {
            let hit = match &row.matcher {
                Matcher::Email(local, domain) => email
                    .as_deref()
                    .and_then(split_email)
                    .is_some_and(|(l, d)| l == local && d.eq_ignore_ascii_case(domain)),
                Matcher::Domain(domain) => {
                    email.as_deref().and_then(split_email).is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                }
                Matcher::Claim(name, value) => match read(name) {
                    Member::Text(t) => t == *value,
                    Member::List(list) => list.contains(value),
                    _ => false,
                },
            };
            if hit {
                matched = true;
                admin |= row.admin;
                for s in &row.scopes {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
            }
        }
        if !matched {
            return Err(Refusal::IdentityNotAllowed);
        }
        Ok(Person { sub, email, name, scopes, admin })
    }
}

/// When to fetch the JWKS: the times of the last fetch that worked and the last tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JwksClock {
    /// When the keys held were fetched (0: none).
    pub fetched_at: u64,
    /// When a fetch was last started.
    pub tried_at: u64,
}

impl JwksClock {
    /// Whether a request that needs key `kid` (`known`: whether it is held) should fetch
    /// the JWKS now: none held, the held set too old, or an unknown `kid` (a rotation);
    /// never twice within [`JWKS_REFETCH_MS`] of the last attempt.
    pub fn should_fetch(&self, known: bool, now: u64) -> bool {
        let due = self.fetched_at == 0 || now >= self.fetched_at.saturating_add(JWKS_MAX_AGE_MS) || !known;
        due && (self.tried_at == 0 || now >= self.tried_at.saturating_add(JWKS_REFETCH_MS))
    }

    /// Whole seconds until the next fetch may be tried (at least 1): `Retry-After` of
    /// `identity_unavailable`.
    pub fn retry_after_s(&self, now: u64) -> u64 {
        self.tried_at.saturating_add(JWKS_REFETCH_MS).saturating_sub(now).div_ceil(1000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gateway::fixtures::{list, row, text as t};

    fn env(policy: Vec<Option<Vec<(String, RowValue)>>>) -> IdentityEnv {
        IdentityEnv {
            issuer: Some("https://team.cloudflareaccess.com".into()),
            audience: Some("aud-tag".into()),
            policy: Some(JsonRows::Rows(policy)),
            ..IdentityEnv::default()
        }
    }

    fn ids() -> Identities {
        env(vec![
            row(&[("email", t("ana@example.com")), ("scopes", list(&["stats"]))]),
            row(&[("email", t("*@Example.com")), ("scopes", list(&["agents-availability:read"]))]),
            row(&[
                ("claim", t("groups")),
                ("value", t("vcc-admins")),
                ("scopes", list(&[])),
                ("admin", RowValue::Bool(true)),
            ]),
        ])
        .validate()
        .unwrap()
        .unwrap()
    }

    fn claims(pairs: Vec<(&'static str, Member)>) -> impl Fn(&str) -> Member {
        move |name| pairs.iter().find(|(k, _)| *k == name).map_or(Member::Other, |(_, v)| v.clone())
    }

    fn good(now_s: f64) -> Vec<(&'static str, Member)> {
        vec![
            ("iss", Member::Text("https://team.cloudflareaccess.com".into())),
            ("aud", Member::List(vec!["other".into(), "aud-tag".into()])),
            ("exp", Member::Number(now_s + 300.0)),
            ("nbf", Member::Number(now_s - 5.0)),
            ("sub", Member::Text("7335d417".into())),
            ("email", Member::Text("ana@EXAMPLE.com".into())),
        ]
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn settings_default_to_access_and_rs256_and_name_what_is_wrong() {
        let i = ids();
        assert_eq!(i.jwks_url, "https://team.cloudflareaccess.com/cdn-cgi/access/certs");
        assert_eq!(i.algorithms, vec![Alg::Rs256]);
        assert!(IdentityEnv::default().validate().unwrap().is_none(), "people do not sign in by default");
        let cases: Vec<(IdentityEnv, &str, &str)> = vec![
            (IdentityEnv { issuer: Some("http://team.example".into()), ..env(vec![]) }, "ACCESS_ISSUER", "https"),
            (IdentityEnv { audience: None, ..env(vec![]) }, "ACCESS_AUDIENCE", "required"),
            (IdentityEnv { algorithms: Some("HS256".into()), ..env(vec![]) }, "ACCESS_ALGORITHMS", "RS256"),
            (IdentityEnv { algorithms: Some("none".into()), ..env(vec![]) }, "ACCESS_ALGORITHMS", ""),
            (IdentityEnv { policy: None, ..env(vec![]) }, "GATEWAY_ACCESS_POLICY", "required"),
            (env(vec![row(&[("email", t("ana")), ("scopes", list(&["stats"]))])]), "GATEWAY_ACCESS_POLICY", "entry 1"),
            (
                env(vec![row(&[("email", t("*@*.example.com")), ("scopes", list(&["stats"]))])]),
                "GATEWAY_ACCESS_POLICY",
                "*@domain",
            ),
            (
                env(vec![row(&[("claim", t("groups")), ("scopes", list(&["stats"]))])]),
                "GATEWAY_ACCESS_POLICY",
                "a claim and a value",
            ),
            (env(vec![row(&[("email", t("a@b.c")), ("scopes", list(&["Stats"]))])]), "GATEWAY_ACCESS_POLICY", "scopes"),
            (
                env(vec![row(&[("email", t("a@b.c")), ("scopes", list(&[]))])]),
                "GATEWAY_ACCESS_POLICY",
                "empty only with admin",
            ),
            (
                env(vec![row(&[("email", t("a@b.c")), ("scopes", list(&["stats"])), ("admin", t("yes"))])]),
                "GATEWAY_ACCESS_POLICY",
                "admin",
            ),
            (
                env(vec![row(&[("email", t("a@b.c")), ("scopes", list(&["stats"])), ("role", t("x"))])]),
                "GATEWAY_ACCESS_POLICY",
                "a member other",
            ),
        ];
        for (e, setting, says) in cases {
            let m = e.validate().unwrap_err();
            assert_eq!(m.setting, setting, "{m:?}");
            assert!(m.problem.contains(says), "{setting}: {} lacks {says:?}", m.problem);
        }
    }

    #[test]
    fn one_credential_decides_and_keys_stay_keys() {
        let key = "Bearer vccgw_0123";
        assert_eq!(credential(Some(key), Some("a.b.c"), true), Credential::Key(key));
        assert_eq!(credential(Some("Bearer a.b.c"), Some("x.y.z"), true), Credential::Assertion("a.b.c"));
        assert_eq!(credential(None, Some(" x.y.z "), true), Credential::Assertion("x.y.z"));
        assert_eq!(credential(None, None, true), Credential::None);
        assert_eq!(credential(Some("Basic eDp5"), Some("x.y.z"), true), Credential::Key("Basic eDp5"));
        // A mistyped key is still a key (malformed_key says so), not a bad sign-in.
        let typo = "Bearer this-is-not-a-key";
        assert_eq!(credential(Some(typo), None, true), Credential::Key(typo));
        assert_eq!(credential(Some("Bearer a.b"), None, true), Credential::Key("Bearer a.b"));
        // Without an issuer configured: every bearer is a key, Access's header ignored.
        assert_eq!(credential(Some("Bearer a.b.c"), None, false), Credential::Key("Bearer a.b.c"));
        assert_eq!(credential(None, Some("x.y.z"), false), Credential::None);
    }

    #[test]
    fn assertions_are_split_and_capped_before_anything_is_read() {
        let s = split("eyJh.eyJi.c2ln").unwrap();
        assert_eq!((s.signing_input, s.header.as_str(), s.signature.as_str()), ("eyJh.eyJi", "eyJh", "c2ln"));
        for bad in ["", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "a!.b.c", "a.b.c=x"] {
            assert_eq!(split(bad), Err(Refusal::BadIdentity), "{bad:?}");
        }
        let huge = format!("{}.b.c", "a".repeat(MAX_ASSERTION_BYTES));
        assert_eq!(split(&huge), Err(Refusal::BadIdentity));
    }

    #[test]
    fn the_algorithm_is_pinned_never_none_never_hmac() {
        let i = ids();
        let header = |alg: &str| claims(vec![("alg", Member::Text(alg.into())), ("kid", Member::Text("k1".into()))]);
        assert_eq!(judge_header(header("RS256"), &i), Ok((Alg::Rs256, "k1".into())));
        for alg in ["none", "HS256", "ES256", "rs256", ""] {
            assert_eq!(judge_header(header(alg), &i), Err(Refusal::BadIdentity), "{alg}");
        }
        let no_kid = claims(vec![("alg", Member::Text("RS256".into()))]);
        assert_eq!(judge_header(no_kid, &i), Err(Refusal::BadIdentity));
        let crit = claims(vec![
            ("alg", Member::Text("RS256".into())),
            ("kid", Member::Text("k1".into())),
            ("crit", Member::List(vec!["exp".into()])),
        ]);
        assert_eq!(judge_header(crit, &i), Err(Refusal::BadIdentity));
        // A key fits an algorithm by its type and members, and by use and alg if given.
        let rsa = claims(vec![
            ("kty", Member::Text("RSA".into())),
            ("n", Member::Text("x".into())),
            ("e", Member::Text("AQAB".into())),
        ]);
        assert!(jwk_fits(&rsa, Alg::Rs256) && !jwk_fits(&rsa, Alg::Es256));
        let enc = claims(vec![
            ("kty", Member::Text("RSA".into())),
            ("n", Member::Text("x".into())),
            ("e", Member::Text("AQAB".into())),
            ("use", Member::Text("enc".into())),
        ]);
        assert!(!jwk_fits(enc, Alg::Rs256));
    }

    #[test]
    fn claims_are_judged_then_the_policy_adds_up() {
        let i = ids();
        let now_s = (NOW / 1000) as f64;
        let p = i.judge_claims(claims(good(now_s)), NOW).unwrap();
        assert_eq!(p.sub, "7335d417");
        assert_eq!(
            p.scopes,
            vec!["stats".to_owned(), "agents-availability:read".to_owned()],
            "email and domain rows add up"
        );
        assert!(!p.admin);
        let with = |name: &'static str, m: Member| {
            let mut c = good(now_s);
            c.retain(|(k, _)| *k != name);
            c.push((name, m));
            i.judge_claims(claims(c), NOW)
        };
        assert_eq!(with("iss", Member::Text("https://evil.example".into())).unwrap_err(), Refusal::IdentityWrongIssuer);
        assert_eq!(with("aud", Member::Text("other".into())).unwrap_err(), Refusal::IdentityWrongAudience);
        assert_eq!(with("exp", Member::Number(now_s - 61.0)).unwrap_err(), Refusal::IdentityExpired);
        assert!(with("exp", Member::Number(now_s - 59.0)).is_ok(), "within the leeway");
        assert_eq!(with("exp", Member::Other).unwrap_err(), Refusal::BadIdentity, "exp is required");
        assert_eq!(with("nbf", Member::Number(now_s + 61.0)).unwrap_err(), Refusal::IdentityNotYetValid);
        assert_eq!(with("sub", Member::Other).unwrap_err(), Refusal::BadIdentity);
        // No subdomains; an unverified email matches no email row; a claim row.
        assert_eq!(with("email", Member::Text("bo@sub.example.com".into())).unwrap_err(), Refusal::IdentityNotAllowed);
        let mut c = good(now_s);
        c.push(("email_verified", Member::Bool(false)));
        assert_eq!(i.judge_claims(claims(c), NOW).unwrap_err(), Refusal::IdentityNotAllowed);
        let admin = with("groups", Member::List(vec!["vcc-admins".into()])).unwrap();
        assert!(admin.admin);
    }

    #[test]
    fn the_jwks_is_fetched_when_needed_and_never_twice_in_10_s() {
        let mut c = JwksClock::default();
        assert!(c.should_fetch(false, 1_000), "none held");
        c.tried_at = 1_000;
        c.fetched_at = 1_000;
        assert!(!c.should_fetch(true, 2_000));
        assert!(!c.should_fetch(false, 2_000), "an unknown kid, but fetched 1 s ago");
        assert!(c.should_fetch(false, 11_000), "an unknown kid 10 s later: a rotation");
        assert!(!c.should_fetch(true, 11_000));
        assert!(c.should_fetch(true, 1_000 + JWKS_MAX_AGE_MS), "too old");
    }
}
