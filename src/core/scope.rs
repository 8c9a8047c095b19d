//! Scope sets: normalised so that equal sets share one cache entry.
//!
//! VCC's guide says one scope per token; other VCC pages request several,
//! space-separated. We accept both: split on whitespace, dedupe, sort. The canonical
//! string (`"a:read b:write"`) is what we send and what the cache is keyed on.

use super::error::VccError;

/// Scopes VCC documents. Anything else must look like `object:action`.
pub const KNOWN_SCOPES: &[&str] = &[
    "admin:read",
    "admin:write",
    "agents-availability:read",
    "globalpci",
    "interaction-content:delete",
    "interaction-content:read",
    "interactions:write",
    "stats",
    "users:read",
    "users:write",
];

/// A normalised, non-empty set of scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeSet(String);

impl ScopeSet {
    /// Normalises `input` (split on whitespace, dedupe, sort) and checks each scope is
    /// known or of the form `object:action` with `[a-z0-9._-]` on both sides.
    pub fn parse(input: &str) -> Result<Self, VccError> {
        // Ordered insertion: dedupes as it sorts, and for the usual one to three scopes
        // is smaller in the wasm than a general sort + dedup + join.
        let mut parts: Vec<&str> = Vec::new();
        for p in input.split_whitespace() {
            if !is_valid_scope(p) {
                return Err(VccError::config(
                    "scope",
                    "must be a known VCC scope or look like object:action (lowercase letters, digits, . _ -)",
                ));
            }
            if let Err(i) = parts.binary_search(&p) {
                parts.insert(i, p);
            }
        }
        if parts.is_empty() {
            return Err(VccError::config(
                "scope",
                "is empty; give one or more scopes such as agents-availability:read",
            ));
        }
        let mut canonical = String::with_capacity(input.len());
        for p in parts {
            if !canonical.is_empty() {
                canonical.push(' ');
            }
            canonical.push_str(p);
        }
        Ok(Self(canonical))
    }

    /// The canonical space-separated form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every scope of `self` is in `allowed` (`"*"` allows all). Used by the
    /// gateway's key policy.
    pub fn is_subset_of<'a>(&self, allowed: impl IntoIterator<Item = &'a str> + Clone) -> bool {
        self.0.split(' ').all(|s| allowed.clone().into_iter().any(|a| a == "*" || a == s))
    }
}

fn is_valid_scope(s: &str) -> bool {
    if KNOWN_SCOPES.contains(&s) {
        return true;
    }
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    };
    match s.split_once(':') {
        Some((object, action)) => ok(object) && ok(action),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_whitespace_order_and_duplicates() {
        let a = ScopeSet::parse("  interaction-content:read\tinteraction-content:delete interaction-content:read ")
            .unwrap();
        let b = ScopeSet::parse("interaction-content:delete interaction-content:read").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "interaction-content:delete interaction-content:read");
        assert_eq!(ScopeSet::parse("stats").unwrap().as_str(), "stats");
    }

    #[test]
    fn accepts_catalogue_and_custom_object_action() {
        for s in KNOWN_SCOPES {
            ScopeSet::parse(s).unwrap();
        }
        ScopeSet::parse("recordings:read").unwrap();
    }

    #[test]
    fn refuses_bad_syntax_with_invalid_config() {
        for bad in
            ["", "   ", "Users:read", "users", "users:", ":read", "a:b:c", "users:read,stats", "x:y\u{0}", "é:read"]
        {
            let e = ScopeSet::parse(bad).unwrap_err();
            assert_eq!(e.code, crate::core::error::ErrorCode::InvalidConfig, "{bad:?}");
        }
    }

    #[test]
    fn subset_with_wildcard() {
        let s = ScopeSet::parse("users:read stats").unwrap();
        assert!(s.is_subset_of(["stats", "users:read"]));
        assert!(s.is_subset_of(["*"]));
        assert!(!s.is_subset_of(["stats"]));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn normalisation_is_idempotent_and_order_free(v in proptest::collection::vec("[a-z]{1,5}:(read|write)", 1..6)) {
                let joined = v.join(" ");
                let mut rev = v.clone();
                rev.reverse();
                let a = ScopeSet::parse(&joined).unwrap();
                let b = ScopeSet::parse(&rev.join("  ")).unwrap();
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(ScopeSet::parse(a.as_str()).unwrap(), a);
            }
        }
    }
}
