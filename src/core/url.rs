//! Base URLs and request targets, parsed by a deliberately narrow grammar.
//!
//! We only ever need `scheme://host[:port][/prefix]` for the two base URLs, plus "is this
//! request target on the API origin?". A general URL parser (the `url` crate) would add
//! IDNA tables to the wasm for no gain, and a permissive parser is exactly where token
//! leaks hide (`https://api@evil`, `\\evil`, `//evil`). So anything outside the narrow
//! grammar is refused: no userinfo, no backslashes, no control characters or spaces, no
//! non-ASCII hosts, no dot segments (plain or percent-encoded).

use std::borrow::Cow;

use super::text;

/// A validated base URL: `http(s)://host[:port][/prefix]`, host lowercased, default port
/// dropped, prefix without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    secure: bool,
    host: String,
    port: Option<u16>,
    prefix: String,
}

/// Why a URL was refused; the caller turns it into an error naming the field.
pub type UrlProblem = &'static str;

impl BaseUrl {
    /// Parses and validates. Plain `http` is accepted only for loopback hosts, so a
    /// token or secret can only travel unencrypted to this machine (emulator, tests).
    pub fn parse(input: &str) -> Result<Self, UrlProblem> {
        let base = Self::parse_grammar(input)?;
        if !base.secure && !base.is_loopback() {
            return Err("must use https (plain http only for localhost/127.0.0.1/[::1])");
        }
        Ok(base)
    }

    /// A browser origin (`scheme://host[:port]`, no path): the same grammar, and plain
    /// http anywhere, since an origin only names who is calling.
    pub fn parse_origin(input: &str) -> Result<Self, UrlProblem> {
        let base = Self::parse_grammar(input)?;
        if !base.prefix.is_empty() {
            return Err("must be an origin, without a path");
        }
        Ok(base)
    }

    fn parse_grammar(input: &str) -> Result<Self, UrlProblem> {
        let (secure, rest) = split_scheme(input).ok_or("must start with https:// (or http:// for loopback)")?;
        let (authority, path) = split_at_first(rest, &['/']);
        let (host, port) = parse_authority(authority, secure)?;
        if path.contains(['?', '#']) {
            return Err("must not have a query or fragment");
        }
        check_path_chars(path)?;
        Ok(Self { secure, host, port, prefix: path.trim_end_matches('/').to_string() })
    }

    /// `scheme://host[:port]` with the default port omitted.
    pub fn origin(&self) -> String {
        let mut s = String::with_capacity(self.host.len() + 14);
        s.push_str(if self.secure { "https://" } else { "http://" });
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push(':');
            push_u16(&mut s, p);
        }
        s
    }

    /// The whole base URL without a trailing slash.
    pub fn as_string(&self) -> String {
        let mut s = self.origin();
        s.push_str(&self.prefix);
        s
    }

    /// The path prefix (`""` or `/a/b`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the host is this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        let h = self.host.as_str();
        h == "localhost"
            || h.ends_with(".localhost")
            || h == "[::1]"
            || (h.starts_with("127.") && h.split('.').count() == 4 && h.split('.').all(|o| o.parse::<u8>().is_ok()))
    }

    /// `base + path`, where `path` is validated target (starts with `/`).
    pub fn join(&self, path_and_query: &str) -> String {
        let mut s = self.as_string();
        s.push_str(path_and_query);
        s
    }

    /// Resolves what a caller passed to `fetch`: a path (`/agents-availability?x=1`,
    /// joined to the base) or an absolute URL on the base's origin and under its prefix.
    /// Returns the target's path and query relative to the prefix. Anything else is
    /// refused, so the bearer token is never sent to another origin.
    pub fn resolve<'a>(&self, input: &'a str) -> Result<Target<'a>, UrlProblem> {
        let relative: &'a str = if input.starts_with('/') {
            if input.starts_with("//") {
                return Err("must not start with // (a network-path reference to another host)");
            }
            input
        } else {
            let (secure, rest) =
                split_scheme(input).ok_or("must be a path starting with / or a URL on the API origin")?;
            let (authority, path) = split_at_first(rest, &['/', '?', '#']);
            let (host, port) = parse_authority(authority, secure)?;
            if secure != self.secure || host != self.host || port != self.port {
                return Err("is not on the API origin; the token is only ever sent there");
            }
            let under =
                path.strip_prefix(self.prefix.as_str()).filter(|r| r.is_empty() || r.starts_with(['/', '?', '#']));
            match under {
                Some(r) if r.starts_with('/') => r,
                Some(_) => "/",
                None => return Err("is not under the API base path"),
            }
        };
        Target::parse(relative)
    }
}

/// A validated request target: path (starting with `/`) and optional query, relative to
/// a base URL's prefix. Fragments are dropped (they are never sent anyway).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The path, starting with `/`, without query.
    pub path: Cow<'a, str>,
    /// The query without `?`, if any.
    pub query: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// Validates a path-and-query that starts with `/`.
    pub fn parse(input: &'a str) -> Result<Self, UrlProblem> {
        let input = input.split('#').next().unwrap_or("");
        let (path, query) = match input.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (input, None),
        };
        if !path.starts_with('/') {
            return Err("must start with /");
        }
        if text::contains(path, "//") {
            return Err("must not contain an empty path segment (//)");
        }
        check_path_chars(path)?;
        if let Some(q) = query {
            check_query(q)?;
        }
        Ok(Self { path: Cow::Borrowed(path), query })
    }

    /// `path[?query]`.
    pub fn path_and_query(&self) -> String {
        let mut s = String::with_capacity(self.path.len() + self.query.map_or(0, |q| q.len() + 1));
        s.push_str(&self.path);
        if let Some(q) = self.query {
            s.push('?');
            s.push_str(q);
        }
        s
    }
}

fn split_scheme(input: &str) -> Option<(bool, &str)> {
    let lower_prefix = |p: &str| input.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
    if lower_prefix("https://") {
        Some((true, input.get(8..)?))
    } else if lower_prefix("http://") {
        Some((false, input.get(7..)?))
    } else {
        None
    }
}

/// Splits before the first of `stops` (the stop stays with the second part), or at the
/// end. No indexing: nothing here can panic.
fn split_at_first<'a>(s: &'a str, stops: &[char]) -> (&'a str, &'a str) {
    match s.find(stops) {
        Some(i) => s.split_at_checked(i).unwrap_or((s, "")),
        None => (s, ""),
    }
}

fn parse_authority(authority: &str, secure: bool) -> Result<(String, Option<u16>), UrlProblem> {
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not contain user info (@)");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("has an unclosed IPv6 bracket")?;
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err("has an invalid IPv6 host");
        }
        (authority.get(..inner.len() + 2).ok_or("has an invalid IPv6 host")?, after)
    } else {
        split_at_first(authority, &[':'])
    };
    let port = match port {
        "" => None,
        p => {
            let digits = p.strip_prefix(':').ok_or("has garbage after the host")?;
            let n: u16 = digits
                .parse()
                .ok()
                .filter(|n| *n > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("has an invalid port")?;
            Some(n)
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || host.starts_with(['.', '-'])
            || host.ends_with('-')
            || text::contains(host, "..")
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    {
        return Err("has an invalid host name (ASCII letters, digits, dots and hyphens only)");
    }
    let default = if secure { 443 } else { 80 };
    Ok((host.to_ascii_lowercase(), port.filter(|p| *p != default)))
}

/// Refuses characters and segments that could change where a request goes once some
/// server or proxy between us and VCC normalises the path: controls, spaces,
/// backslashes and non-ASCII as sent, and then, segment by segment, what a segment
/// means once decoded (see [`check_segment`]).
fn check_path_chars(path: &str) -> Result<(), UrlProblem> {
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'\\' || b >= 0x80) {
        return Err("has spaces, backslashes, control or non-ASCII characters in the path");
    }
    path.split('/').filter(|s| !s.is_empty()).try_for_each(check_segment)
}

/// One path segment, judged by what it decodes to, because servers decode before they
/// normalise and differ in how (Tomcat and Jetty read `..;x` as `..`, IIS drops trailing
/// dots, some decode twice). Refused: an escape that is malformed or decodes to another
/// escape (`%zz`, `%252e`), to a control character (`%09`, `%0d%0a`), to a slash or
/// backslash, or to non-ASCII (which also refuses overlong UTF-8 dots such as
/// `%c0%ae`); and a segment whose name, before any `;` parameters and after trailing
/// dots and spaces, is empty: `.`, `..`, `%2e%2e`, `..;`, `.;x`, `...`, `;x`.
fn check_segment(seg: &str) -> Result<(), UrlProblem> {
    let decoded = percent_encoding::percent_decode_str(seg);
    let mut name_len = 0usize;
    let mut in_params = false;
    let mut name_is_dots = true;
    for b in decoded {
        match b {
            b'%' => return Err("has a malformed or double-encoded escape in the path (%zz, %25)"),
            0..=0x1f | 0x7f => return Err("has an encoded control character in the path"),
            b'/' | b'\\' => return Err("has an encoded slash or backslash in the path"),
            0x80.. => return Err("has encoded non-ASCII characters in the path"),
            b';' => in_params = true,
            _ if in_params => {}
            b => {
                name_len += 1;
                name_is_dots &= b == b'.' || b == b' ';
            }
        }
    }
    if name_len == 0 || name_is_dots {
        return Err("has a dot segment in the path (., .., or one hidden behind %2e, ; or trailing dots)");
    }
    Ok(())
}

/// Checks a query (without `?`) as sent: no spaces, backslashes, raw or encoded control
/// characters, or raw non-ASCII. Percent-escapes of printable characters are the
/// caller's business and pass as they are.
pub fn check_query(query: &str) -> Result<(), UrlProblem> {
    if query.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'\\' || b == b'#' || b >= 0x80) {
        return Err("has a query with spaces, control or non-ASCII characters (percent-encode them)");
    }
    if percent_encoding::percent_decode_str(query).any(|b| b < 0x20 || b == 0x7f) {
        return Err("has an encoded control character in the query");
    }
    Ok(())
}

/// Appends a decimal number without `format!` (keeps core::fmt's integer code off the
/// hot path and out of size-sensitive code).
pub fn push_u16(s: &mut String, n: u16) {
    push_u64(s, u64::from(n));
}

/// Appends a decimal `u64` without `format!` (most significant digit first).
pub fn push_u64(s: &mut String, n: u64) {
    if n >= 10 {
        push_u64(s, n / 10);
    }
    s.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_region_urls_and_overrides() {
        let b = BaseUrl::parse("https://EMEA.api.cc.vonage.com/").unwrap();
        assert_eq!(b.as_string(), "https://emea.api.cc.vonage.com");
        let b = BaseUrl::parse("http://127.0.0.1:8787/vcc/").unwrap();
        assert_eq!(b.as_string(), "http://127.0.0.1:8787/vcc");
        assert!(b.is_loopback());
        assert_eq!(BaseUrl::parse("https://x.example:443").unwrap().origin(), "https://x.example");
        assert_eq!(BaseUrl::parse("http://[::1]:9000").unwrap().origin(), "http://[::1]:9000");
    }

    #[test]
    fn refuses_plain_http_off_loopback_and_tricks() {
        for bad in [
            "http://emea.cc.vonage.com",
            "http://127.0.0.1.evil.com",
            "https://user:pw@emea.cc.vonage.com",
            "https://emea.cc.vonage.com?x=1",
            "https://emea.cc.vonage.com#f",
            "ftp://x",
            "emea.cc.vonage.com",
            "https://",
            "https://ex ample.com",
            "https://exa\\mple.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://example.com:80x",
            "https://bücher.example",
            "https://example.com/a/../b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn resolves_paths_and_same_origin_urls_only() {
        let b = BaseUrl::parse("https://emea.api.cc.vonage.com").unwrap();
        let t = b.resolve("/agents-availability?skillNames=Sales").unwrap();
        assert_eq!(t.path, "/agents-availability");
        assert_eq!(t.query, Some("skillNames=Sales"));
        let t = b.resolve("https://EMEA.api.cc.vonage.com:443/stats/agent-status#x").unwrap();
        assert_eq!(t.path_and_query(), "/stats/agent-status");
        for bad in [
            "https://evil.example/agents-availability",
            "https://emea.api.cc.vonage.com.evil.example/x",
            "https://emea.api.cc.vonage.com@evil.example/x",
            "http://emea.api.cc.vonage.com/x",
            "https://emea.api.cc.vonage.com:8443/x",
            "//evil.example/x",
            "agents-availability",
            "/\\evil.example",
            "/a/%2e%2E/b",
            "/a/..",
            "/a/./b",
            "/a%2fb",
            "/a b",
            "/a\u{0}b",
            "/a//b",
            "javascript:alert(1)",
        ] {
            assert!(b.resolve(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn segments_a_server_could_read_as_traversal_are_refused() {
        let b = BaseUrl::parse("https://emea.api.cc.vonage.com").unwrap();
        for bad in [
            "/stats/..;/useradmin/users",
            "/stats/..;x=1/useradmin",
            "/stats/.;/x",
            "/stats/%2e%2e;/x",
            "/stats/%2E%2E%3b/x",
            "/stats/.../x",
            "/stats/..%20/x",
            "/stats/;/x",
            "/stats/;jsessionid=1",
            "/stats/%252e%252e/x",
            "/stats/%25/x",
            "/stats/%zz/x",
            "/stats/%2",
            "/stats/%c0%ae%c0%ae/x",
            "/stats/%e0%80%ae/x",
            "/stats/%c3%a9",
            "/stats/a%09b",
            "/stats/a%0d%0aX-Injected:%201",
            "/stats/a%7f",
            "/stats/a%00",
            "/stats/a%5cb",
            "/stats/x?a=%0d%0aSet-Cookie:x",
            "/stats/x?a=%09",
        ] {
            assert!(b.resolve(bad).is_err(), "{bad} should be refused");
        }
        for good in [
            "/stats/agent-status",
            "/useradmin/users/42",
            "/interaction-content/interactions/5f0c-0001/content/recording",
            "/stats/a.b",
            "/stats/.hidden",
            "/stats/a..b",
            "/stats/a;v=1",
            "/stats/a%20b",
            "/stats/x?start=2026-01-01T00:00:00Z&name=a%20b&x=%25",
        ] {
            assert!(b.resolve(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn origins_allow_plain_http_but_no_path() {
        assert_eq!(BaseUrl::parse_origin("http://intranet.example").unwrap().origin(), "http://intranet.example");
        assert_eq!(BaseUrl::parse_origin("https://a.example:8443/").unwrap().origin(), "https://a.example:8443");
        assert!(BaseUrl::parse_origin("https://a.example/app").is_err());
        assert!(BaseUrl::parse_origin("*").is_err());
    }

    #[test]
    fn prefix_is_respected() {
        let b = BaseUrl::parse("http://localhost:9/vcc").unwrap();
        assert_eq!(b.resolve("http://localhost:9/vcc/stats/x?a").unwrap().path_and_query(), "/stats/x?a");
        assert!(b.resolve("http://localhost:9/vccx/stats").is_err());
        assert!(b.resolve("http://localhost:9/other").is_err());
        assert_eq!(b.join("/stats"), "http://localhost:9/vcc/stats");
    }

    #[test]
    fn numbers_without_format() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, "0 18446744073709551615");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a caller passes, the result never leaves the API origin or its
            /// prefix, has no dot segment and no backslash, and nothing panics.
            #[test]
            fn accepted_targets_stay_on_the_base(input in "(https?://[a-z.@:\\[\\]0-9]{0,20})?[/a-z.%2eEfF5cC\\\\?#@:]{0,30}") {
                let base = BaseUrl::parse("https://api.example:8443/vcc").unwrap();
                if let Ok(t) = base.resolve(&input) {
                    let url = base.join(&t.path_and_query());
                    prop_assert!(url.starts_with("https://api.example:8443/vcc/"), "{url}");
                    prop_assert!(!t.path.contains('\\'));
                    prop_assert!(t.path.split('/').all(|seg| seg != "." && seg != ".."));
                    let lower = t.path.to_ascii_lowercase();
                    prop_assert!(lower.split('/').map(|seg| seg.replace("%2e", ".")).all(|seg| seg != "." && seg != ".."));
                }
            }

            // That an accepted path survives any normalisation a server might apply is
            // the fuzz `target` check's property, run over generated paths in
            // tests/fuzz_corpus.rs.

            #[test]
            fn base_parse_never_panics(input in "\\PC{0,40}") {
                let _ = BaseUrl::parse(&input);
            }
        }
    }
}
