// Compiled with `tsc --noEmit` against the installed package: the declarations must
// accept correct use and reject wrong use (the @ts-expect-error lines fail the build
// if the types were `any`).
import { VccClient, VccError, type VccClientOptions, type VccErrorCode, type VccTokenInfo, type VccTokenStore } from "vcc-auth";
import { redisStore } from "vcc-auth/redis";

const options: VccClientOptions = {
  region: "emea",
  clientId: "id",
  clientSecret: "secret",
  onEvent: (e) => console.log(e.type, e.scope, e.expiresAt),
};
const client = new VccClient(options);
const token: Promise<string> = client.getToken("stats");
const response: Promise<Response> = client.fetch("/stats/agent-status", { scope: "stats", method: "GET" });
const plain: Promise<Response> = client.fetch("/agents-availability?skillNames=Sales");
const info: VccTokenInfo | undefined = client.tokenInfo("stats");
function code(e: unknown): VccErrorCode | "other" {
  // instanceof narrows to the class, and `code` to the union of codes
  if (e instanceof VccError) {
    const c: VccErrorCode = e.code;
    // @ts-expect-error not one of the codes
    const wrong: typeof c = "no_such_code";
    void wrong;
    return c;
  }
  return "other";
}
// @ts-expect-error region must be one of the three
new VccClient({ region: "mars", clientId: "a", clientSecret: "b" });
// @ts-expect-error clientSecret is required
new VccClient({ region: "emea", clientId: "a" });
// @ts-expect-error timeoutMs is a number
new VccClient({ region: "emea", clientId: "a", clientSecret: "b", timeoutMs: "10" });
// A store: vcc-auth/redis over any client with sendCommand (node-redis) or call (ioredis).
declare const nodeRedis: { sendCommand(args: string[]): Promise<unknown> };
declare const ioredis: { call(...args: string[]): Promise<unknown> };
const store: VccTokenStore = redisStore(nodeRedis, { prefix: "app:" });
new VccClient({ region: "emea", clientId: "a", clientSecret: "b", store: redisStore(ioredis) });
new VccClient({ region: "emea", clientId: "a", clientSecret: "b", store });
// @ts-expect-error a store has all four operations
new VccClient({ region: "emea", clientId: "a", clientSecret: "b", store: { get: async () => null } });
const invalidated: Promise<void> = client.invalidate("stats");
void token; void response; void plain; void info; void code; void invalidated;
