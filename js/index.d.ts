// The package's types: the client (its class and option types, generated from the Rust
// with their docs, in vcc_auth.d.ts) and VccError. No DOM-only type and no `lib`
// addition is needed: a Node project's @types/node or a browser project's DOM lib
// provides Response, RequestInit and URL.
export { VccClient } from "./vcc_auth.js";
export type {
  VccClientOptions,
  VccErrorCode,
  VccEvent,
  VccRegion,
  VccRequestInit,
  VccTokenInfo,
  VccTokenStore,
} from "./vcc_auth.js";
export { VccError } from "./errors.mjs";
