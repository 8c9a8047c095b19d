// Node, ESM: import the package by name.
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
