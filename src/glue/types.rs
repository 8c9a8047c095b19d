//! TypeScript declarations for the option and result objects, so the generated `.d.ts`
//! types them instead of `any`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** VCC region: picks https://{region}.cc.vonage.com and https://{region}.api.cc.vonage.com. */
export type VccRegion = "emea" | "nam" | "apac";

/** Stable error codes (`error.code`). */
export type VccErrorCode =
  | "invalid_config" | "invalid_client" | "invalid_scope" | "unsupported_grant_type"
  | "invalid_request" | "token_endpoint" | "network" | "timeout" | "rate_limited"
  | "unauthorized" | "forbidden" | "bad_response" | "closed" | "redirect" | "token_rejected";

export interface VccClientOptions {
  /** Required unless both authBaseUrl and apiBaseUrl are given. */
  region?: VccRegion;
  clientId: string;
  /** Never logged, never in an error. Keep it server-side (see the gateway). */
  clientSecret: string;
  /** Override of https://{region}.cc.vonage.com (plain http only for loopback). */
  authBaseUrl?: string;
  /** Override of https://{region}.api.cc.vonage.com (plain http only for loopback). */
  apiBaseUrl?: string;
  /** "post" (default): credentials in the form body; "basic": HTTP Basic. */
  clientAuth?: "post" | "basic";
  /** Per token request, default 10000. */
  timeoutMs?: number;
  /** Cap of the refresh-ahead window (min(cap, 50% of lifetime)), default 300000. */
  refreshAheadMs?: number;
  /** Cap of the hard expiry margin (min(cap, 10% of lifetime)), default 60000. */
  expiryMarginMs?: number;
  /** Retries of a token request on network errors, 5xx and 429; default 3, max 10. */
  maxRetries?: number;
  /** Proactive refresh timers; default on in browsers and Node, off in workerd. */
  autoRefresh?: boolean;
  /** Called on token fetched / refreshed / failed. */
  onEvent?: (event: VccEvent) => void;
}

export interface VccEvent {
  type: "fetched" | "refreshed" | "failed";
  /** Normalised scope set. */
  scope: string;
  /** When it happened (ms since epoch). */
  at: number;
  /** Expiry of the cached token after the event, if there is one. */
  expiresAt?: number;
  /** For "failed". */
  code?: VccErrorCode;
  message?: string;
  /** For "failed": true when the still-valid cached token keeps being served. */
  keptToken?: boolean;
}

export interface VccTokenInfo {
  scope: string;
  obtainedAt?: number;
  expiresAt?: number;
  /** When the proactive refresh starts. */
  refreshAt?: number;
  fetches: number;
  refreshes: number;
  failures: number;
  inFlight: boolean;
  lastError?: import("./errors.mjs").VccError;
}

/** `RequestInit` plus an explicit scope (otherwise inferred from the route table). */
export interface VccRequestInit extends RequestInit {
  scope?: string;
}
"#;
