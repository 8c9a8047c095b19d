//! Substring search and replace for the core's short strings (a secret in an error
//! message, a marker in a 401 body, `//` in a path).
//!
//! Why not `str::find`/`contains`/`replace` with a `&str` pattern: they bring std's
//! Two-Way searcher and its panic formatting into the wasm, ~5 KB of the npm package
//! (measured with twiggy), for strings of a few hundred bytes at most. `memchr::memmem`
//! is larger still. A byte-window scan does the same job here; the proptest below holds
//! it to std's answers.

/// The byte offset of the first `needle` in `haystack`. An empty needle is found at 0,
/// as with `str::find`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() {
        return Some(0);
    }
    haystack.as_bytes().windows(n.len()).position(|w| w == n)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &str, needle: &str) -> bool {
    find(haystack, needle).is_some()
}

/// `haystack` with every non-overlapping `needle` (left to right) replaced by `with`.
/// An empty needle leaves the text unchanged (unlike `str::replace`, which inserts
/// `with` between every character: no caller wants that).
pub fn replace(haystack: &str, needle: &str, with: &str) -> String {
    let mut out = String::with_capacity(haystack.len());
    let mut rest = haystack;
    if !needle.is_empty() {
        while let Some(i) = find(rest, needle) {
            // `i` and `i + needle.len()` are char boundaries: `needle` is a whole `str`
            // matched byte for byte, and UTF-8 cannot match starting mid-character.
            let (before, after) = rest.split_at_checked(i).unwrap_or((rest, ""));
            out.push_str(before);
            out.push_str(with);
            rest = after.get(needle.len()..).unwrap_or("");
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_std() {
        assert_eq!(find("a//b", "//"), Some(1));
        assert_eq!(find("ab", "abc"), None);
        assert_eq!(find("héllo wörld", "wö"), "héllo wörld".find("wö"));
        assert_eq!(find("x", ""), Some(0));
        assert!(contains("error=\"invalid_token\"", "invalid_token"));
        assert!(!contains("a.b", ".."));
    }

    #[test]
    fn replaces_every_occurrence_left_to_right() {
        assert_eq!(replace("s3cr3t and s3cr3t", "s3cr3t", "[redacted]"), "[redacted] and [redacted]");
        assert_eq!(replace("aaaa", "aa", "b"), "bb");
        assert_eq!(replace("aaa", "aa", "b"), "ba");
        assert_eq!(replace("é€é", "€", "-"), "é-é");
        assert_eq!(replace("nothing", "zz", "-"), "nothing");
        assert_eq!(replace("keep", "", "-"), "keep");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn agrees_with_std(h in "[ab€é/]{0,24}", n in "[ab€é/]{1,4}") {
                prop_assert_eq!(find(&h, &n), h.find(n.as_str()));
                prop_assert_eq!(replace(&h, &n, "[x]"), h.replace(n.as_str(), "[x]"));
            }
        }
    }
}
