//! Gateway keys: kept and compared only as SHA-256 digests.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{GatewayConfig, Refusal};
use crate::core::scope::ScopeSet;

/// One configured key: its digest and the scopes it grants.
pub(super) struct Grant {
    /// SHA-256 of the key: every comparison is of 32 bytes against 32 bytes, so its time
    /// tells nothing of a key's length or content, and the key itself is not kept.
    pub(super) digest: [u8; 32],
    /// Allowed scopes; `*` allows all.
    pub(super) scopes: Vec<String>,
}

pub(super) fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl GatewayConfig {
    /// The index of the grant whose key is presented, compared in constant time
    /// against every key (no early exit, so timing does not tell which key nearly
    /// matched).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<usize, Refusal> {
        let presented = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(Refusal::NoKey)?;
        let presented = digest(presented);
        let mut found: Option<usize> = None;
        for (i, g) in self.grants.iter().enumerate() {
            if bool::from(g.digest.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found.ok_or(Refusal::UnknownKey)
    }

    /// Whether grant `index` allows every scope of `scope`.
    pub fn allows(&self, index: usize, scope: &ScopeSet) -> bool {
        self.grants.get(index).is_some_and(|g| scope.is_subset_of(g.scopes.iter().map(String::as_str)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gateway::fixtures::*;

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
