import type { VccErrorCode } from "./vcc_auth.js";

/** What every rejection (and throw) of this library is: `e instanceof VccError` narrows
 *  `e.code` to the union of codes. Messages never hold the secret or a token. */
export declare class VccError extends Error {
  constructor(message: string, code?: VccErrorCode);
  readonly name: "VccError";
  /** Stable: branch on it, never on the message. */
  readonly code: VccErrorCode;
  /** HTTP status of the answer that caused it, when there was one. */
  readonly status?: number;
  /** How long the server asked to wait (Retry-After), or a cooldown's rest, in ms. */
  readonly retryAfterMs?: number;
  /** For "invalid_config": the option or argument at fault, e.g. "timeoutMs". */
  readonly field?: string;
}
