// vcc-auth/redis: a VccTokenStore on Redis or Valkey.
import type { VccTokenStore } from "./index.js";

export type { VccTokenStore };

/** A connected node-redis (`redis`) client or an ioredis client: anything with
 *  `sendCommand(args)` or `call(...args)`. */
export type RedisLikeClient = { sendCommand(args: string[]): Promise<unknown> } | { call(...args: string[]): Promise<unknown> };

/** A token store on Redis for `VccClient`'s `store` option. Keys are `prefix` +
 *  a name vcc-auth derives (no client id or scope in clear). */
export declare function redisStore(client: RedisLikeClient, options?: { prefix?: string }): VccTokenStore;
