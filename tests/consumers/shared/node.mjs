// The server-side check: run.mjs copies it into the Node app (run by node), the Bun app
// (run by bun) and the esbuild app (bundled with --platform=node as the AWS CDK and SST
// do, then run from a folder holding only the output).
import { VccClient, VccError } from "vcc-auth";

const { EMU, CLIENT_ID, CLIENT_SECRET } = process.env;
const options = { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, authBaseUrl: EMU, apiBaseUrl: EMU };
const client = new VccClient(options);
const token = await client.getToken("agents-availability:read");
const res = await client.fetch("/agents-availability?skillNames=Sales");
let error;
try {
  await new VccClient({ ...options, clientSecret: "not-the-secret" }).getToken("stats");
} catch (e) {
  error = e instanceof VccError ? e.code : `not a VccError: ${e}`;
}
client.close();
console.log(`RESULT ${JSON.stringify({ tokenLength: token.length, status: res.status, error })}`);
