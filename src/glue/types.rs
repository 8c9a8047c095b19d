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
  /** Called on token fetched / refreshed / failed, and when the store fails. */
  onEvent?: (event: VccEvent) => void;
  /** A store shared by every process of a fleet (`redisStore` from vcc-auth/redis, or
   *  your own): one token request per scope set for the whole fleet, a revoked token
   *  replaced once. Records are sealed with a key derived from clientSecret. */
  store?: VccTokenStore;
}

/** What a token store does: four atomic operations on opaque strings. vcc-auth decides
 *  everything else (what a record holds, when to write it) and seals every record; the
 *  store never sees a token, the secret, a client id or a scope. */
export interface VccTokenStore {
  /** The record under `key`, or null. */
  get(key: string): Promise<string | null>;
  /** Writes `value` under `key`, to expire in `ttlMs`, only if the record is still
   *  `expected` (null or undefined: only if there is none). Resolves whether it wrote. */
  swap(key: string, expected: string | null | undefined, value: string, ttlMs: number): Promise<boolean>;
  /** Takes the lock `key` for `owner` for `leaseMs`, only if no one holds it. Resolves
   *  whether it was taken. */
  lock(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Releases the lock `key` if `owner` still holds it. */
  unlock(key: string, owner: string): Promise<unknown>;
}

export interface VccEvent {
  /** "store_unavailable": the store failed (`message` says how); this process fetches
   *  its own tokens for a few seconds. */
  type: "fetched" | "refreshed" | "failed" | "store_unavailable";
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
