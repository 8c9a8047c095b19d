export * from "./vcc_auth.js";
