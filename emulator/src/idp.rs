//! The emulator as an identity provider, for the gateway's sign-in (what Cloudflare
//! Access, or any OIDC issuer, is to it): the issuer is the emulator's own URL, its keys
//! are published where Access publishes them (`GET /cdn-cgi/access/certs`), and tests
//! and the demo ask it for signed tokens:
//!
//! - `POST /_emulator/idp/token {"alg"?: "RS256"|"ES256"|"none"|"HS256", "kid"?,
//!   "lifetimeSeconds"?: 300, "claims": {...}}` → `{"token": "..."}`. The claims given
//!   go over `iss` (the emulator), `iat`, `nbf` and `exp`; a claim given as `null` is
//!   left out. `none` is unsigned; `HS256` is an HMAC keyed with the RSA key's public
//!   JWK, the classic confusion attack. A `kid` given is put in the header as it is.
//! - `POST /_emulator/idp/rotate {"keepOld"?: true}`: a new key of each algorithm,
//!   the previous one still published (as Access keeps it a week), or dropped.
//! - `GET /_emulator/idp/stats`: `{"jwksFetches": n}`.
//! - Faults (global, `POST /_emulator/faults`): `jwksRedirect`, `jwksStallMs`, `jwksDown`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer as _;
use rsa::signature::SignatureEncoding as _;
use rsa::traits::PublicKeyParts as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::state::{now_ms, Emulator};

/// One signing key of the issuer.
pub enum Material {
    /// RS256.
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>, serde_json::Value),
    /// ES256.
    Ec(p256::ecdsa::SigningKey),
}

/// A key with its `kid`.
pub struct Key {
    pub kid: String,
    pub material: Material,
}

impl Key {
    fn alg(&self) -> &'static str {
        match self.material {
            Material::Rsa(..) => "RS256",
            Material::Ec(_) => "ES256",
        }
    }

    fn jwk(&self) -> Value {
        match &self.material {
            Material::Rsa(_, public) => {
                let mut jwk = public.clone();
                jwk["kid"] = json!(self.kid);
                jwk
            }
            Material::Ec(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let (x, y) = (point.x().map(|x| B64.encode(x)), point.y().map(|y| B64.encode(y)));
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": self.kid})
            }
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match &self.material {
            Material::Rsa(key, _) => key.sign(input).to_vec(),
            Material::Ec(key) => {
                let sig: p256::ecdsa::Signature = key.sign(input);
                sig.to_bytes().to_vec()
            }
        }
    }
}

fn new_kid() -> String {
    format!("kid-{:016x}", rand::random::<u64>())
}

fn rsa_key() -> Key {
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("an RSA key");
    let public = private.to_public_key();
    let jwk = json!({
        "kty": "RSA",
        "n": B64.encode(public.n().to_bytes_be()),
        "e": B64.encode(public.e().to_bytes_be()),
        "use": "sig",
        "alg": "RS256",
    });
    Key { kid: new_kid(), material: Material::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(private)), jwk) }
}

fn ec_key() -> Key {
    Key { kid: new_kid(), material: Material::Ec(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)) }
}

/// The issuer's keys, newest last, and how often its JWKS was fetched.
pub struct Idp {
    pub keys: Vec<Key>,
    pub jwks_fetches: u64,
}

impl Idp {
    /// An RS256 and an ES256 key.
    pub fn new() -> Self {
        Self { keys: vec![rsa_key(), ec_key()], jwks_fetches: 0 }
    }

    fn newest(&self, alg: &str) -> Option<&Key> {
        self.keys.iter().rev().find(|k| k.alg() == alg)
    }
}

impl Default for Idp {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /cdn-cgi/access/certs`: the JWKS, with its faults.
pub async fn certs(State(emu): State<Arc<Emulator>>) -> Response {
    let (redirect, stall, down) = {
        let inner = emu.lock();
        let f = inner.faults.get("");
        (f.and_then(|f| f.jwks_redirect.clone()), f.map_or(0, |f| f.jwks_stall_ms), f.is_some_and(|f| f.jwks_down))
    };
    let keys: Vec<Value> = {
        let mut idp = emu.idp.lock().unwrap_or_else(|e| e.into_inner());
        idp.jwks_fetches += 1;
        idp.keys.iter().map(Key::jwk).collect()
    };
    if let Some(to) = redirect {
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    if down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if stall > 0 {
        tokio::time::sleep(Duration::from_millis(stall)).await;
    }
    Json(json!({ "keys": keys })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAsk {
    alg: Option<String>,
    kid: Option<String>,
    lifetime_seconds: Option<i64>,
    #[serde(default)]
    claims: Map<String, Value>,
}

/// `POST /_emulator/idp/token`.
pub async fn token(State(emu): State<Arc<Emulator>>, Json(ask): Json<TokenAsk>) -> Response {
    let now = (now_ms() / 1000) as i64;
    let lifetime = ask.lifetime_seconds.unwrap_or(300);
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(emu.url()));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    for (k, v) in ask.claims {
        if v.is_null() {
            claims.remove(&k);
        } else {
            claims.insert(k, v);
        }
    }
    let alg = ask.alg.unwrap_or_else(|| "RS256".into());
    let idp = emu.idp.lock().unwrap_or_else(|e| e.into_inner());
    let signer = idp.newest(if alg == "ES256" { "ES256" } else { "RS256" });
    let Some(signer) = signer else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let kid = ask.kid.unwrap_or_else(|| signer.kid.clone());
    let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(Value::Object(claims).to_string()));
    let signature = match alg.as_str() {
        "RS256" | "ES256" => signer.sign(input.as_bytes()),
        "none" => Vec::new(),
        "HS256" => {
            // HMAC keyed with the RSA key's public JWK: what a verifier that lets the
            // token choose its algorithm would accept.
            let public = idp.newest("RS256").map(|k| k.jwk().to_string()).unwrap_or_default();
            let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => return (StatusCode::BAD_REQUEST, "alg: RS256, ES256, none or HS256").into_response(),
    };
    Json(json!({ "token": format!("{input}.{}", B64.encode(signature)) })).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Rotate {
    keep_old: Option<bool>,
}

/// `POST /_emulator/idp/rotate`.
pub async fn rotate(State(emu): State<Arc<Emulator>>, body: Option<Json<Rotate>>) -> Response {
    let keep_old = body.and_then(|b| b.0.keep_old).unwrap_or(true);
    // Made before the lock: an RSA key takes a moment.
    let (rsa, ec) = (rsa_key(), ec_key());
    let mut idp = emu.idp.lock().unwrap_or_else(|e| e.into_inner());
    let previous: Vec<Key> = std::mem::take(&mut idp.keys);
    if keep_old {
        // The newest of each algorithm stays published; older ones go.
        let (mut rs, mut es) = (false, false);
        for k in previous.into_iter().rev() {
            let seen = if k.alg() == "RS256" { &mut rs } else { &mut es };
            if !*seen {
                *seen = true;
                idp.keys.insert(0, k);
            }
        }
    }
    idp.keys.push(rsa);
    idp.keys.push(ec);
    Json(json!({ "kids": idp.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>() })).into_response()
}

/// `GET /_emulator/idp/stats`.
pub async fn stats(State(emu): State<Arc<Emulator>>) -> Response {
    let idp = emu.idp.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({ "jwksFetches": idp.jwks_fetches })).into_response()
}
