// Both TypeScript apps' check.ts (run.mjs copies it; each app has its own tsconfig).
// Type-checked only (tsc --noEmit): correct use compiles, `instanceof VccError`
// narrows `code` to the union of codes.
import { VccClient, VccError, type VccErrorCode } from "vcc-auth";

const client = new VccClient({ region: "emea", clientId: "id", clientSecret: "secret" });
export async function run(): Promise<number> {
  try {
    const res: Response = await client.fetch("/stats/agent-status", { scope: "stats" });
    return res.status;
  } catch (e) {
    if (e instanceof VccError) {
      const code: VccErrorCode = e.code;
      const wait: number | undefined = e.retryAfterMs;
      return code === "token_rejected" ? (wait ?? 0) : -1;
    }
    throw e;
  } finally {
    client.close();
  }
}
