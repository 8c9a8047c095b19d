//! The gateway's settings from the Worker's `env` (the broker object reads the same).
//! Text settings are read as they are; the JSON ones (`GATEWAY_KEYS`, `GATEWAY_ROUTES`)
//! go through the host's `JSON.parse` and the core's own `Deserialize`
//! (serde-wasm-bindgen), and the core judges every one.

use js_sys::JSON;
use wasm_bindgen::JsValue;

use crate::core::config::RawConfig;
use crate::core::gateway::{GatewayConfig, GatewayEnv, JsonRows, Misconfigured};
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
        rate_limit_period: text("GATEWAY_RATE_LIMIT_PERIOD"),
        upstream_timeout_ms: text("UPSTREAM_TIMEOUT_MS"),
        body_timeout_ms: text("BODY_TIMEOUT_MS"),
        refresh_ahead_ms: text("REFRESH_AHEAD_MS"),
        expiry_margin_ms: text("EXPIRY_MARGIN_MS"),
    }
    .validate()
}

/// A JSON setting, in the shape the core judges.
fn rows(text: &str) -> JsonRows {
    JSON::parse(text).ok().and_then(|v| serde_wasm_bindgen::from_value(v).ok()).unwrap_or(JsonRows::NotJson)
}
