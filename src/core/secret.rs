//! Secret-bearing values: the client secret and access tokens.
//!
//! Both are newtypes whose `Debug` and `Display` never show the value, and whose memory
//! is zeroized on drop. The only way to read one is the explicit `expose()` call, which
//! is easy to grep for: every call site is a place where the value leaves on purpose
//! (the token request body, an `Authorization` header, the caller of `getToken`).

use core::fmt;
use zeroize::Zeroizing;

/// The OAuth client secret. Never printed, never in an error, zeroized on drop.
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a secret. The `String` is moved, not copied, so no unzeroized copy remains
    /// on the Rust side.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself, for the one place that sends it: the token request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (configuration check).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// serde for an [`AccessToken`] field of a message that carries it on purpose (the
/// broker's answer to an isolate, its storage record): `#[serde(with =
/// "crate::core::secret::exposed")]`. `AccessToken` itself is not `Serialize`, so no
/// token reaches a serializer (a log, `/healthz`) by accident.
pub mod exposed {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::AccessToken;

    /// Writes the token text.
    pub fn serialize<S: Serializer>(token: &AccessToken, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(token.expose())
    }

    /// Reads the token text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AccessToken, D::Error> {
        String::deserialize(d).map(AccessToken::new)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A bearer access token. Cloning is cheap enough (tokens are ~1 KB) and every clone is
/// zeroized on drop; `Debug`/`Display` show only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// Wraps a token received from the token endpoint.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The token text, for an `Authorization` header or the caller of `getToken`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes; safe to show.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the token is empty (a malformed response).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken([redacted; {} bytes])", self.0.len())
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted token]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_display() {
        let s = ClientSecret::new("hunter2-very-secret".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{:#?}", Some(&s)).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn token_is_redacted_in_debug_and_display() {
        let t = AccessToken::new("eyJhbGciOiJSUzI1NiJ9.payload.sig".into());
        let shown = format!("{t:?} {t}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(!shown.contains("payload"), "{shown}");
        assert!(shown.contains("32 bytes"), "{shown}");
    }
}
