//! The `VccClient` constructor's options, read from JS into the core's `RawConfig`
//! (which validates them).

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::store::TokenStore;
use crate::core::config::{RawConfig, OPTION_NAMES};
use crate::core::error::{ErrorCode, VccError};
use crate::core::secret::ClientSecret;
use crate::glue::js::prop;

/// `obj[name]` as a string; `None` when unset (`undefined` or `null`).
pub(super) fn opt_string(obj: &JsValue, name: &'static str) -> Result<Option<String>, VccError> {
    let v = prop(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or_else(|| VccError::config(name, "must be a string"))
}

fn opt_number(obj: &JsValue, name: &'static str) -> Result<Option<f64>, VccError> {
    let v = prop(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_f64().map(Some).ok_or_else(|| VccError::config(name, "must be a number"))
}

/// What the constructor's options give: the settings to validate, and the JS values the
/// core has no part in.
pub(super) struct ReadOptions {
    pub raw: RawConfig,
    pub on_event: Option<Function>,
    pub store: Option<TokenStore>,
}

/// The options object: every member known (a typo is an error, not a silent default),
/// each of its type. The values are judged by `RawConfig::validate`.
pub(super) fn read_options(options: &JsValue) -> Result<ReadOptions, VccError> {
    if !options.is_object() {
        return Err(VccError::config("options", "must be an object"));
    }
    for key in Object::keys(options.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !OPTION_NAMES.contains(&key.as_str()) {
            let mut m = String::from("options has an unknown option: '");
            m.extend(key.chars().take(40));
            m.push('\'');
            return Err(VccError::new(ErrorCode::InvalidConfig, m));
        }
    }
    let auto_refresh = match prop(options, "autoRefresh") {
        v if v.is_undefined() || v.is_null() => None,
        v => Some(v.as_bool().ok_or_else(|| VccError::config("autoRefresh", "must be a boolean"))?),
    };
    let on_event = match prop(options, "onEvent") {
        v if v.is_undefined() || v.is_null() => None,
        v => Some(v.dyn_into::<Function>().map_err(|_| VccError::config("onEvent", "must be a function"))?),
    };
    let store = match prop(options, "store") {
        v if v.is_undefined() || v.is_null() => None,
        v => {
            let has = |m: &str| prop(&v, m).is_function();
            if !["get", "swap", "lock", "unlock"].into_iter().all(has) {
                return Err(VccError::config(
                    "store",
                    "must be a token store: an object with get, swap, lock and unlock (vcc-auth/redis makes one)",
                ));
            }
            Some(v.unchecked_into::<TokenStore>())
        }
    };
    let raw = RawConfig {
        region: opt_string(options, "region")?,
        client_id: opt_string(options, "clientId")?,
        client_secret: opt_string(options, "clientSecret")?.map(ClientSecret::new),
        auth_base_url: opt_string(options, "authBaseUrl")?,
        api_base_url: opt_string(options, "apiBaseUrl")?,
        client_auth: opt_string(options, "clientAuth")?,
        timeout_ms: opt_number(options, "timeoutMs")?,
        refresh_ahead_ms: opt_number(options, "refreshAheadMs")?,
        expiry_margin_ms: opt_number(options, "expiryMarginMs")?,
        max_retries: opt_number(options, "maxRetries")?,
        auto_refresh,
    };
    Ok(ReadOptions { raw, on_event, store })
}
