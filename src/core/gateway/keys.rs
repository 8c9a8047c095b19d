//! Gateway keys: their format, how they are minted, and the constant-time lookup.
//!
//! A key is `vccgw_` + 64 hex digits (32 random bytes) + 8 hex digits of checksum (the
//! first 4 bytes of the SHA-256 of everything before it). The prefix lets people and
//! secret scanners recognise a leaked key (as GitHub's `ghp_` and Stripe's `sk_live_`
//! do); the checksum refuses a mistyped or truncated key before any lookup.
//! `GATEWAY_KEYS` holds only each key's SHA-256, never the key.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{GatewayConfig, Refusal};
use crate::core::scope::ScopeSet;

/// What every gateway key starts with.
pub const KEY_PREFIX: &str = "vccgw_";
const BODY_HEX: usize = 64;
const SUM_HEX: usize = 8;
/// The length of every gateway key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_HEX + SUM_HEX;

/// One configured key: its name, digest, scopes and expiry.
pub(super) struct Grant {
    /// The entry's `id`: what logs and `/healthz` name.
    pub(super) id: String,
    /// SHA-256 of the key: every comparison is of 32 bytes against 32 bytes, so its time
    /// tells nothing of a key's content, and the key itself is not kept.
    pub(super) digest: [u8; 32],
    /// Allowed scopes; `*` allows all.
    pub(super) scopes: Vec<String>,
    /// Unix ms after which the key is refused with `expired_key`.
    pub(super) expires_ms: Option<u64>,
}

/// SHA-256 of a key.
pub(super) fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The checksum of a key's prefix and body: the first 4 bytes of their SHA-256.
fn checksum(prefix_and_body: &str) -> [u8; 4] {
    let d = Sha256::digest(prefix_and_body.as_bytes());
    [d[0], d[1], d[2], d[3]]
}

/// A new key from 32 random bytes (the caller's CSPRNG: the core has no I/O).
pub fn mint(random: &[u8; 32]) -> String {
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(KEY_PREFIX);
    key.push_str(&hex::encode(random));
    let sum = checksum(&key);
    key.push_str(&hex::encode(sum));
    key
}

/// The hex SHA-256 of `key`: what its `GATEWAY_KEYS` entry holds.
pub fn digest_hex(key: &str) -> String {
    hex::encode(digest(key))
}

/// Whether `key` has the gateway-key shape: prefix, lowercase hex body, and a checksum
/// that matches. Cheap, and done before any lookup.
pub fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(KEY_PREFIX) else { return false };
    if rest.len() != BODY_HEX + SUM_HEX || !rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return false;
    }
    let (head, sum) = key.split_at(KEY_PREFIX.len() + BODY_HEX);
    let mut given = [0u8; 4];
    hex::decode_to_slice(sum, &mut given).is_ok() && given == checksum(head)
}

impl GatewayConfig {
    /// The index of the grant whose key is presented. Order of checks: a key at all
    /// (`no_key`), its shape and checksum (`malformed_key`, before any lookup), then a
    /// constant-time comparison against every digest (no early exit, so timing does not
    /// tell which key nearly matched: `unknown_key`), then its expiry (`expired_key`,
    /// with the index, so the log can name the key).
    pub fn authenticate(&self, authorization: Option<&str>, now_ms: u64) -> Result<usize, (Refusal, Option<usize>)> {
        let presented = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or((Refusal::NoKey, None))?;
        if !well_formed(presented) {
            return Err((Refusal::MalformedKey, None));
        }
        let presented = digest(presented);
        let mut found: Option<usize> = None;
        for (i, g) in self.grants.iter().enumerate() {
            if bool::from(g.digest.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        let i = found.ok_or((Refusal::UnknownKey, None))?;
        match self.grants.get(i).and_then(|g| g.expires_ms) {
            Some(expires) if now_ms >= expires => Err((Refusal::ExpiredKey, Some(i))),
            _ => Ok(i),
        }
    }

    /// Whether grant `index` allows every scope of `scope`.
    pub fn allows(&self, index: usize, scope: &ScopeSet) -> bool {
        self.grants.get(index).is_some_and(|g| scope.is_subset_of(g.scopes.iter().map(String::as_str)))
    }

    /// The `id` of grant `index`, for logs and rate limits.
    pub fn key_id(&self, index: usize) -> Option<&str> {
        self.grants.get(index).map(|g| g.id.as_str())
    }

    /// Grant `index`'s id and scopes (`/whoami`).
    pub fn key_grant(&self, index: usize) -> Option<(&str, Vec<String>)> {
        self.grants.get(index).map(|g| (g.id.as_str(), g.scopes.clone()))
    }

    /// Every key's id and expiry (Unix ms), in `GATEWAY_KEYS` order, for `/healthz`.
    pub fn key_list(&self) -> impl Iterator<Item = (&str, Option<u64>)> {
        self.grants.iter().map(|g| (g.id.as_str(), g.expires_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::gateway::fixtures::*;

    #[test]
    fn minted_keys_have_the_shape_and_a_working_checksum() {
        let k = mint(&[7; 32]);
        assert_eq!(k.len(), KEY_LEN);
        assert!(k.starts_with("vccgw_") && well_formed(&k), "{k}");
        assert_ne!(mint(&[8; 32]), k);
        // Every single-character typo in the body or checksum is caught.
        for i in KEY_PREFIX.len()..KEY_LEN {
            let mut b = k.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            assert!(!well_formed(std::str::from_utf8(&b).unwrap()), "typo at {i} passed");
        }
        for bad in [&k[..KEY_LEN - 1], &k.to_uppercase(), &k.replacen("vccgw_", "vccgx_", 1), "", "vccgw_"] {
            assert!(!well_formed(bad), "{bad}");
        }
        assert_eq!(digest_hex(&k).len(), 64);
    }

    #[test]
    fn keys_are_checked_for_shape_then_looked_up_then_expiry() {
        let c = cfg();
        let auth = |k: &str| c.authenticate(Some(&bearer(k)), NOW);
        assert_eq!(auth(&KEY_ALL), Ok(0));
        assert_eq!(c.authenticate(Some(&format!("bearer  {} ", *KEY_STATS)), NOW), Ok(1));
        assert_eq!(c.authenticate(None, NOW), Err((Refusal::NoKey, None)));
        assert_eq!(c.authenticate(Some(&format!("Basic {}", *KEY_ALL)), NOW), Err((Refusal::NoKey, None)));
        assert_eq!(auth(&KEY_ALL[..KEY_LEN - 1]), Err((Refusal::MalformedKey, None)));
        assert_eq!(auth("k-all-0123456789abcdef"), Err((Refusal::MalformedKey, None)));
        assert_eq!(auth(&mint(&[9; 32])), Err((Refusal::UnknownKey, None)));
        assert_eq!(auth(&KEY_OLD), Err((Refusal::ExpiredKey, Some(2))));
        assert_eq!(c.key_id(2), Some("old"));
        // What is kept and compared is a fixed-length digest, never the key.
        assert!(c.grants.iter().all(|g| g.digest != [0; 32]));
        assert_eq!(c.grants[0].digest, digest(&KEY_ALL));
    }
}
