//! The route table: which scope a VCC API call needs, and which `Accept` version.
//!
//! Shared by `VccClient.fetch` (to infer the scope) and the gateway (to decide what a
//! gateway key may call, and to refuse everything else). Matching is by method and
//! path prefix on whole segments: `/stats` matches `/stats/agent-status` but not
//! `/statsx`.

use std::borrow::Cow;

use super::scope::ScopeSet;

/// The versioned media type every VCC API wants; a missing one is a 400.
pub const DEFAULT_ACCEPT: &str = "application/vnd.newvoicemedia.v1+json";

/// HTTP methods a route can allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Methods {
    /// GET and HEAD.
    Read,
    /// POST, PUT, PATCH.
    Write,
    /// DELETE.
    Delete,
    /// POST only.
    Post,
}

impl Methods {
    /// Whether `method` (any case) is one of these.
    pub fn allows(self, method: &str) -> bool {
        let m = method.to_ascii_uppercase();
        match self {
            Self::Read => m == "GET" || m == "HEAD",
            Self::Write => m == "POST" || m == "PUT" || m == "PATCH",
            Self::Delete => m == "DELETE",
            Self::Post => m == "POST",
        }
    }
}

impl Methods {
    /// Whether a method is in both (`post` is within `write`).
    pub fn overlaps(self, other: Methods) -> bool {
        use Methods::*;
        matches!((self, other), (Read, Read) | (Delete, Delete) | (Write | Post, Write | Post))
    }

    /// The name a `GATEWAY_ROUTES` row gives: `read`, `write`, `delete` or `post`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "delete" => Some(Self::Delete),
            "post" => Some(Self::Post),
            _ => None,
        }
    }
}

/// One row: method family + path prefix -> scope. Built-in rows borrow static text;
/// rows an operator adds (`GATEWAY_ROUTES`) own theirs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Methods this row covers.
    pub methods: Methods,
    /// Path prefix, whole segments, no trailing slash.
    pub prefix: Cow<'static, str>,
    /// Scope a token needs for it.
    pub scope: Cow<'static, str>,
    /// The `Accept` header to add when the caller gave none.
    pub accept: &'static str,
}

const fn r(methods: Methods, prefix: &'static str, scope: &'static str) -> Route {
    Route { methods, prefix: Cow::Borrowed(prefix), scope: Cow::Borrowed(scope), accept: DEFAULT_ACCEPT }
}

impl Route {
    /// A row from its parts, if it keeps the rules every row keeps (the built-in rows
    /// are tested against the same rules): the prefix is `/`-led whole segments of
    /// `[A-Za-z0-9._~-]` with no dot segments and no trailing slash; the scope is one
    /// valid scope. `Err` says what is wrong.
    pub fn new(methods: Methods, prefix: &str, scope: &str) -> Result<Route, &'static str> {
        let segments_ok = prefix.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.bytes().all(|b| b == b'.')
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
            })
        });
        if !segments_ok || prefix.len() > 200 {
            return Err(
                "has a prefix that is not a plain path like /reports/daily (no trailing slash, no dot segments)",
            );
        }
        if scope == "*"
            || scope.contains(char::is_whitespace)
            || ScopeSet::parse(scope).map_or(true, |s| s.as_str() != scope)
        {
            return Err("has a scope that is not one valid scope (a known VCC scope or object:action)");
        }
        Ok(Route {
            methods,
            prefix: Cow::Owned(prefix.to_owned()),
            scope: Cow::Owned(scope.to_owned()),
            accept: DEFAULT_ACCEPT,
        })
    }
}

/// The known VCC APIs (docs/vcc.md). The longest matching prefix wins, so order does
/// not matter. Adding an API is a row here plus the emulator's canned answer for it (`emulator/src/api.rs`, `canned`);
/// a test there fails for a row it cannot answer.
pub const ROUTES: &[Route] = &[
    r(Methods::Read, "/agents-availability", "agents-availability:read"),
    r(Methods::Read, "/useradmin/users", "users:read"),
    r(Methods::Write, "/useradmin/users", "users:write"),
    r(Methods::Delete, "/useradmin/users", "users:write"),
    r(Methods::Post, "/interaction-content/interactions/delete-batch", "interaction-content:delete"),
    r(Methods::Read, "/interaction-content", "interaction-content:read"),
    r(Methods::Delete, "/interaction-content/interactions", "interaction-content:delete"),
    r(Methods::Read, "/stats", "stats"),
    r(Methods::Read, "/webhooks/subscriptions", "admin:read"),
    r(Methods::Write, "/webhooks/subscriptions", "admin:write"),
    r(Methods::Delete, "/webhooks/subscriptions", "admin:write"),
];

/// Result of looking a request up in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteMatch<'a> {
    /// This row matched: its scope, `Accept` and prefix.
    Found(&'a Route),
    /// The path is known but not for this method (gateway: 405).
    MethodNotAllowed,
    /// No row covers the path (gateway: 404).
    NotFound,
}

fn prefix_matches(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Finds the route for `method` and `path` (path only, no query) in the built-in table.
pub fn lookup(method: &str, path: &str) -> RouteMatch<'static> {
    lookup_in(&[], method, path)
}

/// Finds the route for `method` and `path` in the built-in table plus `extra` rows: the
/// row with the longest matching prefix that allows the method (a built-in row first
/// on a tie; the gateway refuses extra rows that repeat one).
pub fn lookup_in<'a>(extra: &'a [Route], method: &str, path: &str) -> RouteMatch<'a> {
    let mut path_known = false;
    let mut best: Option<&'a Route> = None;
    for route in ROUTES.iter().chain(extra) {
        if prefix_matches(path, &route.prefix) {
            path_known = true;
            if route.methods.allows(method) && best.is_none_or(|b| route.prefix.len() > b.prefix.len()) {
                best = Some(route);
            }
        }
    }
    match best {
        Some(r) => RouteMatch::Found(r),
        None if path_known => RouteMatch::MethodNotAllowed,
        None => RouteMatch::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(m: &str, p: &str) -> Option<&'static str> {
        match lookup(m, p) {
            RouteMatch::Found(Route { scope: Cow::Borrowed(s), .. }) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn documented_apis_map_to_their_scopes() {
        assert_eq!(scope("GET", "/agents-availability"), Some("agents-availability:read"));
        assert_eq!(scope("get", "/useradmin/users"), Some("users:read"));
        assert_eq!(scope("GET", "/useradmin/users/42"), Some("users:read"));
        assert_eq!(scope("PUT", "/useradmin/users/42"), Some("users:write"));
        assert_eq!(scope("GET", "/interaction-content/interactions/abc/content/key"), Some("interaction-content:read"));
        assert_eq!(scope("DELETE", "/interaction-content/interactions/abc"), Some("interaction-content:delete"));
        assert_eq!(scope("POST", "/interaction-content/interactions/delete-batch"), Some("interaction-content:delete"));
        assert_eq!(scope("GET", "/stats/agent-status"), Some("stats"));
        assert_eq!(scope("GET", "/webhooks/subscriptions"), Some("admin:read"));
        assert_eq!(scope("DELETE", "/webhooks/subscriptions/sub-1"), Some("admin:write"));
    }

    #[test]
    fn segments_not_substrings_and_methods_matter() {
        assert_eq!(lookup("GET", "/statsx"), RouteMatch::NotFound);
        assert_eq!(lookup("GET", "/agents-availability-admin"), RouteMatch::NotFound);
        assert_eq!(lookup("GET", "/"), RouteMatch::NotFound);
        assert_eq!(lookup("POST", "/stats/agent-status"), RouteMatch::MethodNotAllowed);
        assert_eq!(lookup("DELETE", "/agents-availability"), RouteMatch::MethodNotAllowed);
        assert_eq!(lookup("POST", "/interaction-content/interactions"), RouteMatch::MethodNotAllowed);
    }

    #[test]
    fn every_route_scope_is_a_known_scope_and_every_row_keeps_the_row_rules() {
        for r in ROUTES {
            assert!(super::super::scope::KNOWN_SCOPES.contains(&&*r.scope), "{}", r.scope);
            assert_eq!(Route::new(r.methods, &r.prefix, &r.scope).as_ref(), Ok(r));
        }
    }

    #[test]
    fn extra_rows_keep_the_rules_and_the_longest_prefix_wins() {
        for (prefix, scope) in [
            ("reports", "stats"),
            ("/reports/", "stats"),
            ("/reports//x", "stats"),
            ("/reports/../x", "stats"),
            ("/reports/%2e", "stats"),
            ("/", "stats"),
            ("/reports", "*"),
            ("/reports", "stats users:read"),
            ("/reports", "Stats"),
            ("/reports", ""),
        ] {
            assert!(Route::new(Methods::Read, prefix, scope).is_err(), "{prefix:?} {scope:?}");
        }
        let extra = [
            Route::new(Methods::Read, "/reports", "stats").unwrap(),
            Route::new(Methods::Read, "/stats/special", "admin:read").unwrap(),
        ];
        let found = |m, p| match lookup_in(&extra, m, p) {
            RouteMatch::Found(r) => Some(r.scope.to_string()),
            _ => None,
        };
        assert_eq!(found("GET", "/reports/daily").as_deref(), Some("stats"));
        assert_eq!(found("GET", "/stats/special/x").as_deref(), Some("admin:read"));
        assert_eq!(found("GET", "/stats/agent-status").as_deref(), Some("stats"));
        assert_eq!(lookup_in(&extra, "POST", "/reports"), RouteMatch::MethodNotAllowed);
        assert_eq!(lookup("GET", "/reports"), RouteMatch::NotFound);
    }
}
