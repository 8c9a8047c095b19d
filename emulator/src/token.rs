//! `POST /Auth/connect/token`: client-credentials grant, VCC style.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::json;

use crate::state::{drop_connection, now_ms, DropSwitch, Emulator, Issued};

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response()
}

fn oauth_error(error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(d) => json!({ "error": error, "error_description": d }),
        None => json!({ "error": error }),
    };
    json_response(StatusCode::BAD_REQUEST, body)
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((unescape(id)?, unescape(secret)?))
}

fn make_jwt(client_id: &str, scope: &str, iat_s: u64, exp_s: u64, serial: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"vcc-emulator"}"#);
    let payload = json!({
        "iss": "https://vcc-emulator.local/Auth",
        "aud": "vcc-api",
        "client_id": client_id,
        "scope": scope.split(' ').collect::<Vec<_>>(),
        "iat": iat_s,
        "nbf": iat_s,
        "exp": exp_s,
        "jti": serial,
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mut sig = [0u8; 64];
    rand::rng().fill_bytes(&mut sig);
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub async fn token_endpoint(
    State(emu): State<Arc<Emulator>>,
    switch: Option<Extension<DropSwitch>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let (client_id, secret) = match basic_credentials(&headers) {
        Some(c) => c,
        None => (field("client_id").unwrap_or_default(), field("client_secret").unwrap_or_default()),
    };

    // Faults are looked up by the claimed client id, before the secret is checked, as a
    // failing VCC front end would answer whatever the credentials.
    let delay = {
        let mut inner = emu.lock();
        inner.stats_for(&client_id).token_attempts += 1;
        inner.fault_flag(&client_id, |f| f.token_delay_ms)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if emu.lock().take_fault(&client_id, |f| &mut f.token_reset) {
        return drop_connection(switch.as_deref()).await;
    }
    let response = answer(&emu, &client_id, &secret, is_form, field);
    if emu.lock().take_fault(&client_id, |f| &mut f.token_truncated) {
        return crate::state::truncated(response).await;
    }
    response
}

fn answer(
    emu: &Emulator,
    client_id: &str,
    secret: &str,
    is_form: bool,
    field: impl Fn(&str) -> Option<String>,
) -> Response {
    let client_id = client_id.to_owned();
    let mut inner = emu.lock();
    if let Some(location) = inner.faults_of(&client_id).and_then(|f| f.token_redirect.clone()) {
        let status = inner.faults_of(&client_id).and_then(|f| f.redirect_status).unwrap_or(307);
        return crate::api::redirect(status, &location);
    }
    if inner.fault_flag(&client_id, |f| u64::from(f.token_down)) > 0 {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({ "message": "Service Unavailable" }));
    }
    let fail_percent = inner.fault_flag(&client_id, |f| u64::from(f.token_fail_percent));
    if inner.take_fault(&client_id, |f| &mut f.token5xx) || rand::random_range(0..100) < fail_percent {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "Internal Server Error", "error_description": "injected fault" }),
        );
    }
    if inner.take_fault(&client_id, |f| &mut f.token503) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "message": "The service is temporarily unavailable" }),
        );
    }
    if inner.take_fault(&client_id, |f| &mut f.token429) {
        let retry_after = inner.retry_after(&client_id);
        let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, json!({ "message": "Too Many Requests" }));
        if let Some(s) = retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        return r;
    }
    if inner.take_fault(&client_id, |f| &mut f.token_malformed) {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"access_token\": \"eyJ")
            .into_response();
    }
    if !is_form {
        return oauth_error("invalid_request", Some("The request body must be application/x-www-form-urlencoded"));
    }
    if field("grant_type").as_deref() != Some("client_credentials") {
        return oauth_error("unsupported_grant_type", Some("Invalid grant_type"));
    }
    let Some(client) = inner.clients.get(&client_id).cloned().filter(|c| c.secret == secret) else {
        return oauth_error("invalid_client", None);
    };
    let mut scopes: Vec<String> = field("scope").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return oauth_error("invalid_scope", Some("You must specify a scope"));
    }
    scopes.sort();
    scopes.dedup();
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.iter().any(|g| g == "*" || g == *s)) {
        return oauth_error("invalid_scope", Some(&format!("\"{bad}\" is an invalid scope")));
    }
    let scope = scopes.join(" ");
    let now = now_ms();
    let lifetime_s = client.lifetime_s.max(1);
    let faults = inner.faults_of(&client_id).cloned().unwrap_or_default();
    // What the token announces, and when it really stops working (a fault can make
    // that earlier).
    let announced_expiry_ms = now + lifetime_s * 1000;
    let expires_at_ms = faults.token_dies_after_ms.map_or(announced_expiry_ms, |d| announced_expiry_ms.min(now + d));
    inner.issued_count += 1;
    let serial = inner.issued_count;
    let token = if faults.token_opaque {
        let mut raw = [0u8; 24];
        rand::rng().fill_bytes(&mut raw);
        format!("opaque-{serial}-{}", URL_SAFE_NO_PAD.encode(raw))
    } else {
        let skewed = |ms: u64| (ms / 1000).saturating_add_signed(faults.token_clock_skew_s);
        make_jwt(&client_id, &scope, skewed(now), skewed(announced_expiry_ms), serial)
    };
    if inner.tokens.len() > 50_000 {
        inner.tokens.retain(|_, t| t.valid_at(now));
    }
    inner.tokens.insert(token.clone(), Issued { client_id: client_id.clone(), scopes, expires_at_ms, revoked: false });
    *inner.stats_for(&client_id).token_requests.entry(scope).or_default() += 1;
    if emu.verbose {
        eprintln!("token issued to {client_id} (#{serial}, {lifetime_s} s)");
    }
    // VCC has been seen answering both "Bearer" and "bearer".
    let token_type = if serial.is_multiple_of(2) { "bearer" } else { "Bearer" };
    let expires_in = faults.token_expires_in.unwrap_or(json!(lifetime_s));
    json_response(StatusCode::OK, json!({ "access_token": token, "expires_in": expires_in, "token_type": token_type }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        let mut h = HeaderMap::new();
        // RFC 6749 2.3.1: "my id" / "s&c:r" form-urlencoded, then base64
        let b64 = STANDARD.encode("my+id:s%26c%3Ar");
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {b64}")).unwrap());
        assert_eq!(basic_credentials(&h), Some(("my id".into(), "s&c:r".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn tokens_are_jwts_with_exp() {
        let t = make_jwt("c", "stats", 100, 160, 1);
        let payload = t.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["exp"], 160);
        assert_eq!(claims["scope"], serde_json::json!(["stats"]));
    }
}
