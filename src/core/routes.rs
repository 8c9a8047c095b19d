//! The route table: which scope a VCC API call needs, and which `Accept` version.
//!
//! Shared by `VccClient.fetch` (to infer the scope) and the gateway (to decide what a
//! gateway key may call, and to refuse everything else). Matching is by method and
//! path prefix on whole segments: `/stats` matches `/stats/agent-status` but not
//! `/statsx`.

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

/// One row: method family + path prefix -> scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Methods this row covers.
    pub methods: Methods,
    /// Path prefix, whole segments, no trailing slash.
    pub prefix: &'static str,
    /// Scope a token needs for it.
    pub scope: &'static str,
    /// The `Accept` header to add when the caller gave none.
    pub accept: &'static str,
}

const fn r(methods: Methods, prefix: &'static str, scope: &'static str) -> Route {
    Route { methods, prefix, scope, accept: DEFAULT_ACCEPT }
}

/// The known VCC APIs (docs/vcc.md). More specific rows come first. Adding an API is a
/// row here plus the emulator's canned answer for it (`emulator/src/api.rs`, `canned`);
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
pub enum RouteMatch {
    /// This row matched: its scope, `Accept` and prefix.
    Found(&'static Route),
    /// The path is known but not for this method (gateway: 405).
    MethodNotAllowed,
    /// No row covers the path (gateway: 404).
    NotFound,
}

fn prefix_matches(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Finds the route for `method` and `path` (path only, no query).
pub fn lookup(method: &str, path: &str) -> RouteMatch {
    let mut path_known = false;
    for route in ROUTES {
        if prefix_matches(path, route.prefix) {
            if route.methods.allows(method) {
                return RouteMatch::Found(route);
            }
            path_known = true;
        }
    }
    if path_known {
        RouteMatch::MethodNotAllowed
    } else {
        RouteMatch::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(m: &str, p: &str) -> Option<&'static str> {
        match lookup(m, p) {
            RouteMatch::Found(r) => Some(r.scope),
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
    fn every_route_scope_is_a_known_scope() {
        for r in ROUTES {
            assert!(super::super::scope::KNOWN_SCOPES.contains(&r.scope), "{}", r.scope);
        }
    }
}
