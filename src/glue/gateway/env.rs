//! The gateway's settings from the Worker's `env` (the broker object reads the same).
//! Text settings are read as they are; the JSON ones (`GATEWAY_KEYS`, `GATEWAY_ROUTES`)
//! go through the host's `JSON.parse` into the rows the core judges.

use js_sys::{Array, Object, JSON};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::config::RawConfig;
use crate::core::gateway::identity::IdentityEnv;
use crate::core::gateway::{GatewayConfig, GatewayEnv, JsonRows, Misconfigured, RowValue};
use crate::core::secret::ClientSecret;
use crate::glue::js::prop;

/// Reads and validates the settings; the first bad one is named (never its value).
pub fn read_env(env: &JsValue) -> Result<GatewayConfig, Misconfigured> {
    let text = |name: &str| prop(env, name).as_string().filter(|s| !s.trim().is_empty());
    GatewayEnv {
        vcc: RawConfig {
            region: text("VCC_REGION"),
            client_id: text("VCC_CLIENT_ID"),
            client_secret: text("VCC_CLIENT_SECRET").map(ClientSecret::new),
            auth_base_url: text("VCC_AUTH_BASE_URL"),
            api_base_url: text("VCC_API_BASE_URL"),
            ..RawConfig::default()
        },
        allowed_origins: text("ALLOWED_ORIGINS"),
        gateway_keys: text("GATEWAY_KEYS").map(|t| rows(&t)),
        gateway_routes: text("GATEWAY_ROUTES").map(|t| rows(&t)),
        identity: IdentityEnv {
            issuer: text("ACCESS_ISSUER"),
            audience: text("ACCESS_AUDIENCE"),
            jwks_url: text("ACCESS_JWKS_URL"),
            algorithms: text("ACCESS_ALGORITHMS"),
            log_email: text("ACCESS_LOG_EMAIL"),
            policy: text("GATEWAY_ACCESS_POLICY").map(|t| rows(&t)),
        },
        rate_limit_period: text("GATEWAY_RATE_LIMIT_PERIOD"),
        upstream_timeout_ms: text("UPSTREAM_TIMEOUT_MS"),
        body_timeout_ms: text("BODY_TIMEOUT_MS"),
        body_buffer_limit: text("BODY_BUFFER_LIMIT"),
        refresh_ahead_ms: text("REFRESH_AHEAD_MS"),
        expiry_margin_ms: text("EXPIRY_MARGIN_MS"),
    }
    .validate()
}

/// A JSON setting, in the shape the core judges: rows of flat members.
fn rows(text: &str) -> JsonRows {
    let Ok(value) = JSON::parse(text) else { return JsonRows::NotJson };
    if !Array::is_array(&value) {
        return if value.is_object() { JsonRows::Object } else { JsonRows::NotArray };
    }
    let rows: Array = value.unchecked_into();
    JsonRows::Rows(
        rows.iter()
            .map(|row| {
                if !row.is_object() || Array::is_array(&row) {
                    return None;
                }
                let members = Object::entries(row.unchecked_ref::<Object>());
                Some(
                    members
                        .iter()
                        .filter_map(|pair| {
                            let pair: Array = pair.unchecked_into();
                            Some((pair.get(0).as_string()?, member(&pair.get(1))))
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

fn member(v: &JsValue) -> RowValue {
    if let Some(t) = v.as_string() {
        return RowValue::Text(t);
    }
    if let Some(b) = v.as_bool() {
        return RowValue::Bool(b);
    }
    if Array::is_array(v) {
        let list: Array = v.clone().unchecked_into();
        if let Ok(items) = list.iter().map(|s| s.as_string().ok_or(())).collect::<Result<Vec<_>, _>>() {
            return RowValue::List(items);
        }
    }
    RowValue::Other
}
