//! Which headers cross the gateway, in each direction: allow-lists both ways, so that
//! nothing we did not think of crosses (the caller's key one way, our VCC token or a
//! CORS grant the other).

/// Request headers forwarded to VCC: an allow-list, so the caller's `Authorization`
/// (the gateway key), cookies, hop-by-hop and forwarding headers never cross, nor
/// anything else we did not think of. Lower case, as `Headers` iterates them; the glue
/// hands the list to its host helper once ([`header_list`]).
pub const FORWARD_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "content-language",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
    "x-request-id",
    "x-correlation-id",
];

/// Response headers passed back to the caller: an allow-list, like the request side.
/// An upstream is untrusted too: it must not be able to hand the caller our VCC token
/// (`Authorization` echoed back), CORS grants (the gateway alone decides those), cookies,
/// `Location`/`Refresh`, hop-by-hop headers, or anything else we did not think of.
pub const FORWARD_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-language",
    "content-disposition",
    "cache-control",
    "expires",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
    "x-correlation-id",
];

/// An allow-list as one comma-separated string (header names hold no comma), the form
/// the glue's host helper takes.
pub fn header_list(names: &[&str]) -> String {
    names.join(",")
}

/// The names an upstream's `Connection` header declares hop-by-hop (RFC 9110 §7.6.1),
/// lower case and comma-separated: dropped even when allowed.
pub fn hop_by_hop(connection: Option<&str>) -> String {
    let mut out = String::new();
    for token in connection.unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&token.to_ascii_lowercase());
    }
    out
}

/// Whether the caller's `Accept` leaves the choice to us: absent, or the `*/*` that
/// browsers and curl send by default. VCC answers 400 to anything but its versioned
/// media type, so those get the route's versioned `Accept`; an explicit other type is
/// the caller's to keep.
pub fn needs_versioned_accept(accept: Option<&str>) -> bool {
    accept.map(str::trim).is_none_or(|a| a.is_empty() || a == "*/*")
}

/// How the gateway passes VCC's answer on, decided by its headers. What it guards
/// against is an answer cut off at the deadline looking complete to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerPlan {
    /// Known size, at most [`super::RESPONSE_BUFFER_LIMIT`], not encoded: read whole
    /// before answering, so a stall is a 504 of ours and a cut a 502.
    Whole,
    /// Unknown size (chunked, or encoded: fetch decodes it, so its length says nothing
    /// of what a read holds): read up to [`super::RESPONSE_BUFFER_LIMIT`] first, and if
    /// it ends by then, as [`Self::Whole`]; otherwise the rest streams. (workerd ends a
    /// chunked body cleanly even when it errors, cloudflare/workerd#6818, so only the
    /// part read first can be judged.)
    Probe,
    /// Known size over the limit: streamed with that length, so a cut leaves the caller
    /// short of it and its connection fails, rather than a body that looks complete.
    Stream(u64),
}

/// The [`AnswerPlan`] for an answer with these headers.
pub fn answer_plan(content_length: Option<&str>, content_encoding: Option<&str>) -> AnswerPlan {
    match content_length.and_then(|l| l.trim().parse::<u64>().ok()).filter(|_| content_encoding.is_none()) {
        Some(n) if n <= u64::from(super::RESPONSE_BUFFER_LIMIT) => AnswerPlan::Whole,
        // A length past 2^53 cannot cross to JS exactly: as unknown.
        Some(n) if n < 1 << 53 => AnswerPlan::Stream(n),
        _ => AnswerPlan::Probe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_plain_answers_are_read_whole_long_ones_keep_their_length_others_are_probed() {
        let limit = super::super::RESPONSE_BUFFER_LIMIT.to_string();
        let over = (super::super::RESPONSE_BUFFER_LIMIT + 1).to_string();
        let (whole, probe) = (AnswerPlan::Whole, AnswerPlan::Probe);
        for (length, encoding, plan) in [
            (Some("0"), None, whole),
            (Some("1234"), None, whole),
            (Some(limit.as_str()), None, whole),
            (Some(over.as_str()), None, AnswerPlan::Stream(65_537)),
            (Some("99999999999"), None, AnswerPlan::Stream(99_999_999_999)),
            (Some("99999999999999999999"), None, probe),
            (None, None, probe),
            (Some(""), None, probe),
            (Some("12, 12"), None, probe),
            (Some("-1"), None, probe),
            (Some("1234"), Some("gzip"), probe),
            (Some("1234"), Some("identity"), probe),
        ] {
            assert_eq!(answer_plan(length, encoding), plan, "{length:?} {encoding:?}");
        }
    }

    /// What the host helper does with a list: Headers iterates lower-case names.
    fn forward_request_header(name: &str) -> bool {
        FORWARD_REQUEST_HEADERS.contains(&name.to_ascii_lowercase().as_str())
    }

    fn forward_response_header(name: &str) -> bool {
        FORWARD_RESPONSE_HEADERS.contains(&name.to_ascii_lowercase().as_str())
    }

    /// An allowed response header, unless the upstream's `Connection` names it.
    fn pass_response_header(name: &str, connection: Option<&str>) -> bool {
        let name = name.to_ascii_lowercase();
        forward_response_header(&name) && !hop_by_hop(connection).split(',').any(|h| h == name)
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
        assert_eq!(hop_by_hop(Some(" Keep-Alive , ETag,,")), "keep-alive,etag");
        assert_eq!(hop_by_hop(None), "");
        for list in [FORWARD_REQUEST_HEADERS, FORWARD_RESPONSE_HEADERS] {
            for name in list {
                assert_eq!(name.to_ascii_lowercase(), *name, "lists are lower case, as Headers iterates");
                assert!(!name.contains(','));
            }
            assert_eq!(header_list(list).split(',').collect::<Vec<_>>(), list.to_vec());
        }
    }

    #[test]
    fn default_accept_is_replaced_explicit_is_kept() {
        assert!(needs_versioned_accept(None));
        assert!(needs_versioned_accept(Some("*/*")));
        assert!(needs_versioned_accept(Some(" ")));
        assert!(!needs_versioned_accept(Some("application/vnd.newvoicemedia.v2+json")));
        assert!(!needs_versioned_accept(Some("text/csv")));
    }
}
