//! Gateway policy: everything the edge gateway decides about a request, with no I/O.
//!
//! The gateway keeps the VCC client secret server-side and lets callers holding a
//! gateway key reach the VCC APIs that key allows. One concern per file:
//! - [`settings`](GatewayEnv): the settings and their validation;
//! - `keys`: key digests and the constant-time lookup;
//! - `origin`: CORS;
//! - `headers`: the allow-lists in each direction;
//! - `refusal`: every refusal with its code;
//! - `json`: refusals and `/healthz` as JSON;
//! - here: [`GatewayConfig::decide`], which turns a request into a [`Decision`] the glue
//!   carries out.

pub mod broker;
mod headers;
pub mod identity;
mod json;
mod keys;
mod origin;
mod refusal;
mod settings;

pub use headers::{
    answer_plan, header_list, hop_by_hop, needs_versioned_accept, AnswerPlan, FORWARD_REQUEST_HEADERS,
    FORWARD_RESPONSE_HEADERS,
};
pub use json::{
    error_json, health_json, health_json_about, log_json, misconfigured_json, whoami_json, HealthAbout, LogLine, Whom,
    HEALTH_LIVENESS, WHOAMI_NOBODY,
};
pub use keys::{digest_hex, mint, well_formed, KEY_LEN, KEY_PREFIX};
pub use origin::{cors_headers, preflight_headers, OriginCheck};
pub use refusal::Refusal;
pub use settings::{
    parse_utc, setting_of, valid_key_id, valid_key_scopes, GatewayConfig, GatewayEnv, JsonRows, Misconfigured, RowValue,
};

use std::borrow::Cow;

use super::routes::{self, RouteMatch};
use super::scope::ScopeSet;
use super::text;
use super::url::{check_query, Target};

/// The scope that grants a key the gateway's admin role (`/healthz`'s details); `*`
/// does not imply it.
pub const ADMIN_SCOPE: &str = "gateway:admin";

/// Largest request body the gateway forwards: VCC's own APIs refuse bodies over 100 KB
/// (413/417), and every body is held in memory until its exchange ends (a 401 replays
/// it), so a larger limit would only let a caller hold more of an isolate's 128 MB.
pub const BODY_LIMIT: u64 = 100 << 10;

/// Default of `BODY_BUFFER_LIMIT`: the most bytes of request bodies one isolate holds at
/// once (80 bodies at the limit). Past it a request is refused (503 `gateway_busy`)
/// rather than the isolate running out of memory.
pub const BODY_BUFFER_DEFAULT: u64 = 8 << 20;

/// Largest answer from VCC the gateway reads whole before answering ([`answer_plan`]).
/// Read whole, a body that stalls or breaks off becomes a 504 or 502 the caller can see,
/// where a stream could only stop short; and in workerd it costs less CPU than a pipe.
/// VCC's JSON answers are mostly a few KB; 64 KiB bounds what each request holds.
pub const RESPONSE_BUFFER_LIMIT: u32 = 64 << 10;

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
    /// `Cf-Access-Jwt-Assertion` header (Cloudflare Access's sign-in).
    pub access: Option<&'a str>,
    /// When the request's credential is a sign-in token
    /// ([`identity::Credential::Assertion`]): the glue's verdict on it (signature,
    /// then [`identity::Identities::judge_claims`]). `None` when it was not checked.
    pub person: Option<Result<&'a identity::Person, Refusal>>,
    /// Now, Unix ms (key expiry).
    pub now_ms: u64,
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
    pub route: Cow<'static, str>,
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer with this refusal (with CORS headers when the origin is allowed).
    Refuse(Refusal, OriginCheck),
    /// Answer a CORS preflight for an allowed origin (204 with CORS headers).
    Preflight(String),
    /// `GET /healthz`: with its details for a caller with the admin role, else only
    /// liveness.
    Health {
        /// Whether to give the details.
        details: bool,
    },
    /// `GET /whoami`: the caller, as the page shows it.
    WhoAmI,
    /// Not an API path: serve static assets.
    Static,
    /// Forward to VCC.
    Forward(Forward, OriginCheck),
}

/// Who asked, once known, for the log and the rate limit (also for a refusal after it:
/// an expired key, a scope it lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Not known.
    None,
    /// A key (its index; see [`GatewayConfig::key_id`]).
    Key(usize),
    /// The signed-in person of [`Inbound::person`].
    Person,
}

/// What to do with a request, and who asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Who asked.
    pub caller: Caller,
}

impl GatewayConfig {
    /// Decides what to do with a request. Order: CORS origin, preflight, health and
    /// static paths, then for `/api/*`: key (401) before route (404/405) so callers
    /// without a key learn nothing of the table, then scope (403), then size (413).
    /// Rate limits come after, in the glue: only a request that would go upstream counts.
    pub fn decide(&self, req: &Inbound<'_>) -> Verdict {
        let anonymous = |decision| Verdict { decision, caller: Caller::None };
        let origin = self.check_origin(req.origin, req.self_origin);
        let is_api = req.path == "/api" || req.path.starts_with("/api/");
        if req.method.eq_ignore_ascii_case("OPTIONS") && req.preflight_method.is_some() && is_api {
            return anonymous(match origin {
                OriginCheck::Allowed(o) => Decision::Preflight(o),
                OriginCheck::Same => Decision::Preflight(req.self_origin.to_owned()),
                _ => Decision::Refuse(Refusal::OriginDenied, OriginCheck::Denied),
            });
        }
        let get = req.method == "GET" || req.method == "HEAD";
        if req.path == "/healthz" && get {
            // A liveness check for anyone; the details for the admin role. A bad
            // credential is no refusal here: it only gets liveness.
            return match self.who(req) {
                Ok(caller) => Verdict { decision: Decision::Health { details: self.is_admin(caller, req) }, caller },
                Err(_) => anonymous(Decision::Health { details: false }),
            };
        }
        let is_whoami = req.path == "/whoami" && get;
        if !is_api && !is_whoami {
            return anonymous(Decision::Static);
        }
        if origin == OriginCheck::Denied {
            return anonymous(Decision::Refuse(Refusal::OriginDenied, origin));
        }
        let caller = match self.who(req) {
            Ok(c) => c,
            // No credential is no refusal for /whoami: the page asks it to learn whether
            // someone is signed in (its answer: nobody).
            Err((Refusal::NoKey, Caller::None)) if is_whoami => return anonymous(Decision::WhoAmI),
            Err((r, caller)) => return Verdict { decision: Decision::Refuse(r, origin), caller },
        };
        if is_whoami {
            return Verdict { decision: Decision::WhoAmI, caller };
        }
        Verdict { decision: self.route(req, caller, origin), caller }
    }

    /// Who the request's one credential says is asking (see [`identity::credential`]):
    /// a key, checked here, or a person, checked by the glue ([`Inbound::person`]).
    fn who(&self, req: &Inbound<'_>) -> Result<Caller, (Refusal, Caller)> {
        match identity::credential(req.authorization, req.access, self.identities.is_some()) {
            identity::Credential::None => Err((Refusal::NoKey, Caller::None)),
            identity::Credential::Key(header) => match self.authenticate(Some(header), req.now_ms) {
                Ok(i) => Ok(Caller::Key(i)),
                Err((r, i)) => Err((r, i.map_or(Caller::None, Caller::Key))),
            },
            identity::Credential::Assertion(_) => match req.person {
                Some(Ok(_)) => Ok(Caller::Person),
                Some(Err(r)) => Err((r, Caller::None)),
                None => Err((Refusal::BadIdentity, Caller::None)),
            },
        }
    }

    /// Whether `caller` holds the gateway's admin role: a key whose entry lists
    /// `gateway:admin` (`*` does not imply it), or a person a policy row makes admin.
    pub fn is_admin(&self, caller: Caller, req: &Inbound<'_>) -> bool {
        match caller {
            Caller::Key(i) => self.grants.get(i).is_some_and(|g| g.scopes.iter().any(|s| s == ADMIN_SCOPE)),
            Caller::Person => matches!(req.person, Some(Ok(p)) if p.admin),
            Caller::None => false,
        }
    }

    /// Whether `caller` holds every scope of `scope`.
    fn holds(&self, caller: Caller, req: &Inbound<'_>, scope: &ScopeSet) -> bool {
        match caller {
            Caller::Key(i) => self.allows(i, scope),
            Caller::Person => match req.person {
                Some(Ok(p)) => scope.is_subset_of(p.scopes.iter().map(String::as_str)),
                _ => false,
            },
            Caller::None => false,
        }
    }

    /// After the credential: the route, the scope, the size and the query.
    fn route(&self, req: &Inbound<'_>, caller: Caller, origin: OriginCheck) -> Decision {
        let refuse = |r: Refusal| Decision::Refuse(r, origin.clone());
        let rest = req.path.strip_prefix("/api").unwrap_or("");
        if rest.is_empty() || rest == "/" {
            return refuse(Refusal::RouteNotFound);
        }
        let Ok(target) = Target::parse(rest) else { return refuse(Refusal::PathNotPlain) };
        let route = match routes::lookup_in(&self.extra_routes, req.method, &target.path) {
            RouteMatch::Found(r) => r,
            RouteMatch::MethodNotAllowed => return refuse(Refusal::MethodNotAllowed),
            RouteMatch::NotFound => return refuse(Refusal::RouteNotFound),
        };
        let accept = route.accept;
        // Every row's scope parses (built-in rows are tested, extra rows checked at
        // startup); a row that did not would be a route we cannot serve.
        let Ok(scope) = ScopeSet::parse(&route.scope) else { return refuse(Refusal::RouteNotFound) };
        let route = route.prefix.clone();
        if !self.holds(caller, req, &scope) {
            return refuse(Refusal::ScopeDenied);
        }
        if let Some(len) = req.content_length {
            if len.trim().parse::<u64>().map_or(true, |n| n > BODY_LIMIT) {
                return refuse(Refusal::BodyTooLarge);
            }
        }
        let mut path_and_query = target.path.into_owned();
        if let Some(q) = req.query.filter(|q| !q.is_empty()) {
            if check_query(q).is_err() {
                return refuse(Refusal::PathNotPlain);
            }
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let upstream = self.settings.api_base.join(&path_and_query);
        // Defence in depth: the joined URL must still be under the fixed base.
        let mut base = self.settings.api_base.as_string();
        base.push('/');
        if !upstream.starts_with(&base) {
            return refuse(Refusal::PathNotPlain);
        }
        Decision::Forward(Forward { upstream, scope, accept, route }, origin)
    }
}

/// Splits a request URL as the runtime gave it (`http://host:port/path?query`) into
/// origin, raw path and query, without normalising anything: dot segments and
/// percent-escapes must reach [`GatewayConfig::decide`] as sent, to be refused there.
pub fn split_request_url(url: &str) -> Option<(&str, &str, Option<&str>)> {
    let after_scheme = text::find(url, "://")? + 3;
    let path_start = url.get(after_scheme..)?.find('/').map_or(url.len(), |i| after_scheme + i);
    let (origin, rest) = url.split_at_checked(path_start)?;
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Some((origin, if path.is_empty() { "/" } else { path }, query))
}

/// What the tests of every file here start from.
#[cfg(test)]
pub(crate) mod fixtures {
    pub use super::*;
    pub use crate::core::secret::ClientSecret;

    use std::sync::LazyLock;

    /// Keys minted from fixed bytes: `*`, `stats` (+ agents-availability), and one
    /// that expired in 2020.
    pub static KEY_ALL: LazyLock<String> = LazyLock::new(|| mint(&[1; 32]));
    pub static KEY_STATS: LazyLock<String> = LazyLock::new(|| mint(&[2; 32]));
    pub static KEY_OLD: LazyLock<String> = LazyLock::new(|| mint(&[3; 32]));
    /// 2026-11-25T00:00:00Z.
    pub const NOW: u64 = 1_795_564_800_000;

    pub fn row(members: &[(&str, RowValue)]) -> Option<Vec<(String, RowValue)>> {
        Some(
            members
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        RowValue::Text(t) => RowValue::Text(t.clone()),
                        RowValue::List(l) => RowValue::List(l.clone()),
                        RowValue::Bool(b) => RowValue::Bool(*b),
                        RowValue::Other => RowValue::Other,
                    };
                    (k.to_string(), v)
                })
                .collect(),
        )
    }

    pub fn text(s: &str) -> RowValue {
        RowValue::Text(s.into())
    }

    pub fn list(s: &[&str]) -> RowValue {
        RowValue::List(s.iter().map(|x| x.to_string()).collect())
    }

    pub fn key_rows() -> Vec<Option<Vec<(String, RowValue)>>> {
        vec![
            row(&[("id", text("all")), ("sha256", text(&digest_hex(&KEY_ALL))), ("scopes", list(&["*"]))]),
            row(&[
                ("id", text("wallboard")),
                ("sha256", text(&digest_hex(&KEY_STATS))),
                ("scopes", list(&["stats", "agents-availability:read"])),
                ("expires", text("2099-01-01T00:00:00Z")),
            ]),
            row(&[
                ("id", text("old")),
                ("sha256", text(&digest_hex(&KEY_OLD))),
                ("scopes", list(&["*"])),
                ("expires", text("2020-01-01")),
            ]),
        ]
    }

    pub fn env() -> GatewayEnv {
        GatewayEnv {
            vcc: crate::core::config::RawConfig {
                region: Some("emea".into()),
                client_id: Some("id".into()),
                client_secret: Some(ClientSecret::new("gateway-secret-value".into())),
                ..Default::default()
            },
            allowed_origins: Some("https://admin.example.com, http://localhost:5173, http://intranet.example".into()),
            gateway_keys: Some(JsonRows::Rows(key_rows())),
            ..GatewayEnv::default()
        }
    }

    pub fn cfg() -> GatewayConfig {
        env().validate().unwrap()
    }

    pub fn req<'a>(method: &'a str, path: &'a str, key: Option<&'a str>) -> Inbound<'a> {
        Inbound {
            method,
            path,
            self_origin: "https://gw.example.com",
            authorization: key,
            now_ms: NOW,
            ..Inbound::default()
        }
    }

    pub fn bearer(k: &str) -> String {
        format!("Bearer {k}")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;

    #[test]
    fn keys_are_required_and_scoped() {
        let c = cfg();
        let d = |k: Option<&str>, m: &'static str, p: &'static str| {
            let auth = k.map(bearer);
            c.decide(&Inbound { authorization: auth.as_deref(), ..req(m, p, None) }).decision
        };
        assert!(matches!(d(None, "GET", "/api/stats/agent-status"), Decision::Refuse(Refusal::NoKey, _)));
        assert!(matches!(
            d(Some(&mint(&[9; 32])), "GET", "/api/stats/agent-status"),
            Decision::Refuse(Refusal::UnknownKey, _)
        ));
        assert!(matches!(
            d(Some(&KEY_STATS), "GET", "/api/useradmin/users"),
            Decision::Refuse(Refusal::ScopeDenied, _)
        ));
        match d(Some(&KEY_STATS), "GET", "/api/stats/agent-status") {
            Decision::Forward(f, OriginCheck::None) => {
                assert_eq!(f.upstream, "https://emea.api.cc.vonage.com/stats/agent-status");
                assert_eq!(f.scope.as_str(), "stats");
                assert_eq!(f.route, "/stats");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(d(Some(&KEY_ALL), "PUT", "/api/useradmin/users/7"), Decision::Forward(..)));
        // without a key, nothing of the route table is revealed
        assert!(matches!(d(None, "GET", "/api/no-such-api"), Decision::Refuse(Refusal::NoKey, _)));
        assert!(matches!(d(Some(&KEY_ALL), "GET", "/api/no-such-api"), Decision::Refuse(Refusal::RouteNotFound, _)));
        assert!(matches!(
            d(Some(&KEY_ALL), "POST", "/api/stats/agent-status"),
            Decision::Refuse(Refusal::MethodNotAllowed, _)
        ));
        assert!(matches!(d(Some(&KEY_ALL), "GET", "/api"), Decision::Refuse(Refusal::RouteNotFound, _)));
    }

    #[test]
    fn path_tricks_never_reach_upstream() {
        let c = cfg();
        let auth = bearer(&KEY_ALL);
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
            let d = c.decide(&Inbound { authorization: Some(&auth), ..req("GET", path, None) }).decision;
            assert!(!matches!(d, Decision::Forward(..)), "{path:?} was forwarded: {d:?}");
        }
        let d = c
            .decide(&Inbound {
                authorization: Some(&auth),
                query: Some("a=1#frag"),
                ..req("GET", "/api/stats/x", None)
            })
            .decision;
        assert!(!matches!(d, Decision::Forward(..)));
        let d = c
            .decide(&Inbound {
                authorization: Some(&auth),
                query: Some("start=2026-01-01&end=x%20y"),
                ..req("GET", "/api/stats/x", None)
            })
            .decision;
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
        let auth = bearer(&KEY_ALL);
        let with = |origin: Option<&'static str>, method: &'static str, pre: Option<&'static str>| {
            c.decide(&Inbound {
                origin,
                preflight_method: pre,
                authorization: Some(&auth),
                ..req(method, "/api/stats/agent-status", None)
            })
            .decision
        };
        assert!(matches!(with(Some("https://gw.example.com"), "GET", None), Decision::Forward(_, OriginCheck::Same)));
        assert!(matches!(
            with(Some("https://admin.example.com"), "GET", None),
            Decision::Forward(_, OriginCheck::Allowed(_))
        ));
        assert!(matches!(
            with(Some("https://evil.example"), "GET", None),
            Decision::Refuse(Refusal::OriginDenied, OriginCheck::Denied)
        ));
        assert!(matches!(
            with(Some("https://admin.example.com.evil.example"), "GET", None),
            Decision::Refuse(Refusal::OriginDenied, _)
        ));
        assert_eq!(
            with(Some("http://localhost:5173"), "OPTIONS", Some("GET")),
            Decision::Preflight("http://localhost:5173".into())
        );
        assert!(matches!(
            with(Some("https://evil.example"), "OPTIONS", Some("GET")),
            Decision::Refuse(Refusal::OriginDenied, _)
        ));
        // preflights carry no credentials: they are answered before the key check
        let pre = c
            .decide(&Inbound {
                origin: Some("https://admin.example.com"),
                preflight_method: Some("PUT"),
                ..req("OPTIONS", "/api/useradmin/users/1", None)
            })
            .decision;
        assert!(matches!(pre, Decision::Preflight(_)));
    }

    #[test]
    fn health_static_and_body_limit() {
        let c = cfg();
        assert_eq!(c.decide(&req("GET", "/healthz", None)).decision, Decision::Health { details: false });
        assert_eq!(c.decide(&req("GET", "/", None)).decision, Decision::Static);
        assert_eq!(c.decide(&req("GET", "/app.js", None)).decision, Decision::Static);
        let auth = bearer(&KEY_ALL);
        let put = |len: &'static str| {
            c.decide(&Inbound {
                authorization: Some(&auth),
                content_length: Some(len),
                ..req("PUT", "/api/useradmin/users/1", None)
            })
            .decision
        };
        assert!(matches!(put("102400"), Decision::Forward(..)));
        assert!(matches!(put("102401"), Decision::Refuse(Refusal::BodyTooLarge, _)));
        assert!(matches!(put("lots"), Decision::Refuse(Refusal::BodyTooLarge, _)));
    }

    /// With an issuer configured: a verified person is judged by the policy's scopes,
    /// the admin role is `gateway:admin` or a policy row (never `*`), /healthz stays a
    /// liveness check for everyone else, and /whoami answers "nobody" without a
    /// credential.
    #[test]
    fn people_and_the_admin_role() {
        use super::identity::{IdentityEnv, Person};
        let mut rows = key_rows();
        rows.push(row(&[
            ("id", text("ops")),
            ("sha256", text(&digest_hex(&mint(&[4; 32])))),
            ("scopes", list(&["gateway:admin"])),
        ]));
        let c = GatewayEnv {
            gateway_keys: Some(JsonRows::Rows(rows)),
            identity: IdentityEnv {
                issuer: Some("https://team.cloudflareaccess.com".into()),
                audience: Some("aud".into()),
                policy: Some(JsonRows::Rows(vec![row(&[
                    ("email", text("*@example.com")),
                    ("scopes", list(&["stats"])),
                ])])),
                ..IdentityEnv::default()
            },
            ..env()
        }
        .validate()
        .unwrap();
        let ana = Person { sub: "u1".into(), email: None, name: None, scopes: vec!["stats".into()], admin: false };
        let root = Person { admin: true, scopes: vec![], ..ana.clone() };
        let as_person = |p: Result<&Person, Refusal>, method: &'static str, path: &'static str| {
            c.decide(&Inbound { access: Some("a.b.c"), person: Some(p), ..req(method, path, None) })
        };
        let v = as_person(Ok(&ana), "GET", "/api/stats/agent-status");
        assert!(matches!(v.decision, Decision::Forward(..)));
        assert_eq!(v.caller, Caller::Person);
        assert!(matches!(
            as_person(Ok(&ana), "GET", "/api/useradmin/users").decision,
            Decision::Refuse(Refusal::ScopeDenied, _)
        ));
        assert!(matches!(
            as_person(Err(Refusal::IdentityExpired), "GET", "/api/stats/agent-status").decision,
            Decision::Refuse(Refusal::IdentityExpired, _)
        ));
        // /healthz: details for the admin role only; a bad credential still gets liveness.
        assert_eq!(as_person(Ok(&ana), "GET", "/healthz").decision, Decision::Health { details: false });
        assert_eq!(as_person(Ok(&root), "GET", "/healthz").decision, Decision::Health { details: true });
        assert_eq!(
            as_person(Err(Refusal::BadIdentity), "GET", "/healthz").decision,
            Decision::Health { details: false }
        );
        let health = |k: &str| {
            let auth = bearer(k);
            c.decide(&Inbound { authorization: Some(&auth), ..req("GET", "/healthz", None) }).decision
        };
        assert_eq!(health(&KEY_ALL), Decision::Health { details: false }, "* is not the admin role");
        assert_eq!(health(&mint(&[4; 32])), Decision::Health { details: true });
        // /whoami: nobody without a credential, a refusal for a bad one.
        let whoami = c.decide(&req("GET", "/whoami", None));
        assert_eq!((whoami.decision, whoami.caller), (Decision::WhoAmI, Caller::None));
        assert!(matches!(
            as_person(Err(Refusal::BadIdentity), "GET", "/whoami").decision,
            Decision::Refuse(Refusal::BadIdentity, _)
        ));
        // The bearer wins over Access's header: a key beside an assertion is the key.
        let auth = bearer(&KEY_STATS);
        let both = c.decide(&Inbound { authorization: Some(&auth), ..as_person_inbound(&ana) });
        assert!(matches!(both.caller, Caller::Key(_)));
    }

    fn as_person_inbound(p: &super::identity::Person) -> Inbound<'_> {
        Inbound { access: Some("a.b.c"), person: Some(Ok(p)), ..req("GET", "/api/stats/agent-status", None) }
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
}
