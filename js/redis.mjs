// vcc-auth/redis: a `VccTokenStore` on Redis or Valkey, through the client the
// application already has: node-redis (`redis`, v4 and later) or ioredis. Neither is
// imported here (optional peer dependencies): the client is passed in, connected.
//
//   import { createClient } from "redis";
//   import { VccClient } from "vcc-auth";
//   import { redisStore } from "vcc-auth/redis";
//   const redis = await createClient({ url: process.env.REDIS_URL }).connect();
//   const vcc = new VccClient({ ..., store: redisStore(redis) });
//
// Each operation is one atomic command: GET; a compare-and-set in Lua; SET NX PX for
// the lock; a compare-and-delete in Lua to release it. Records are sealed by vcc-auth
// before they get here; this file only moves strings.

/** Compare-and-set: ARGV[1] "1" if a record is expected (ARGV[2]), "0" if none is. */
const SWAP = `local cur = redis.call('GET', KEYS[1])
if (ARGV[1] == '0' and cur == false) or (ARGV[1] == '1' and cur == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0`;

/** Releases a lock only for its owner. */
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** One command, whichever client: ioredis's `call`, node-redis's `sendCommand`. */
function commander(client) {
  if (client && typeof client.call === "function") return (args) => client.call(...args);
  if (client && typeof client.sendCommand === "function") return (args) => client.sendCommand(args);
  throw new TypeError("redisStore: pass a connected node-redis (`redis`) or ioredis client");
}

/** Whole milliseconds, at least 1 (Redis refuses PX 0). */
const ms = (n) => String(Math.max(1, Math.ceil(Number(n))));

/**
 * A token store on Redis for `VccClient`'s `store` option.
 * @param {object} client a connected node-redis or ioredis client
 * @param {{ prefix?: string }} [options] key prefix, default "vcc-auth:"
 * @returns {import("./index.js").VccTokenStore}
 */
export function redisStore(client, { prefix = "vcc-auth:" } = {}) {
  const command = commander(client);
  if (typeof prefix !== "string") throw new TypeError("redisStore: prefix must be a string");
  return {
    async get(key) {
      const v = await command(["GET", prefix + key]);
      return v === null || v === undefined ? null : String(v);
    },
    async swap(key, expected, value, ttlMs) {
      const has = expected === null || expected === undefined ? "0" : "1";
      const done = await command(["EVAL", SWAP, "1", prefix + key, has, has === "1" ? expected : "", value, ms(ttlMs)]);
      return Number(done) === 1;
    },
    async lock(key, owner, leaseMs) {
      const ok = await command(["SET", prefix + key, owner, "NX", "PX", ms(leaseMs)]);
      return ok === "OK";
    },
    async unlock(key, owner) {
      await command(["EVAL", UNLOCK, "1", prefix + key, owner]);
    },
  };
}
