//! Building the token request: the form body and, for `clientAuth: "basic"`, the
//! credentials pair for the `Authorization` header. Both carry the secret, so both are
//! zeroized on drop.

use zeroize::Zeroizing;

use super::config::{ClientAuth, Settings};
use super::scope::ScopeSet;

/// A ready-to-send token request.
pub struct TokenRequest {
    /// `{auth}/Auth/connect/token`.
    pub url: String,
    /// `application/x-www-form-urlencoded` body.
    pub body: Zeroizing<String>,
    /// With HTTP Basic: `urlencode(id):urlencode(secret)`, for the glue to base64 (the
    /// host's `btoa`; the pair is ASCII) into `Authorization: Basic …`.
    pub basic_pair: Option<Zeroizing<String>>,
}

fn push_encoded(out: &mut String, value: &str) {
    out.extend(form_urlencoded::byte_serialize(value.as_bytes()));
}

/// Builds the request for `scopes` (RFC 6749 §4.4.2, client auth per §2.3.1: with Basic,
/// id and secret are form-urlencoded before base64).
pub fn token_request(settings: &Settings, scopes: &ScopeSet) -> TokenRequest {
    let mut body = Zeroizing::new(String::with_capacity(128));
    body.push_str("grant_type=client_credentials&scope=");
    push_encoded(&mut body, scopes.as_str());
    let basic_pair = match settings.client_auth {
        ClientAuth::Post => {
            body.push_str("&client_id=");
            push_encoded(&mut body, &settings.client_id);
            body.push_str("&client_secret=");
            push_encoded(&mut body, settings.client_secret.expose());
            None
        }
        ClientAuth::Basic => {
            let mut pair = Zeroizing::new(String::with_capacity(64));
            push_encoded(&mut pair, &settings.client_id);
            pair.push(':');
            push_encoded(&mut pair, settings.client_secret.expose());
            Some(pair)
        }
    };
    TokenRequest { url: settings.token_url(), body, basic_pair }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::RawConfig;
    use crate::core::secret::ClientSecret;

    fn settings(auth: &str) -> Settings {
        RawConfig {
            region: Some("emea".into()),
            client_id: Some("my id".into()),
            client_secret: Some(ClientSecret::new("s&c:r=t+é".into())),
            client_auth: Some(auth.into()),
            ..RawConfig::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn post_puts_encoded_credentials_in_the_body() {
        let scopes = ScopeSet::parse("users:read stats").unwrap();
        let r = token_request(&settings("post"), &scopes);
        assert_eq!(r.url, "https://emea.cc.vonage.com/Auth/connect/token");
        assert_eq!(
            r.body.as_str(),
            "grant_type=client_credentials&scope=stats+users%3Aread&client_id=my+id&client_secret=s%26c%3Ar%3Dt%2B%C3%A9"
        );
        assert!(r.basic_pair.is_none());
        let decoded: Vec<(String, String)> = form_urlencoded::parse(r.body.as_bytes()).into_owned().collect();
        assert!(decoded.contains(&("client_secret".into(), "s&c:r=t+é".into())));
    }

    #[test]
    fn basic_urlencodes_before_base64_and_keeps_the_secret_out_of_the_body() {
        let scopes = ScopeSet::parse("stats").unwrap();
        let r = token_request(&settings("basic"), &scopes);
        assert_eq!(r.body.as_str(), "grant_type=client_credentials&scope=stats");
        let pair = r.basic_pair.unwrap();
        assert_eq!(pair.as_str(), "my+id:s%26c%3Ar%3Dt%2B%C3%A9");
        assert!(pair.is_ascii(), "btoa needs ASCII");
    }
}
