// vcc-auth/vcc_auth_bg.wasm: the wasm file itself, for vcc-auth/slim's init() when a
// page serves it from elsewhere. What an import of it gives depends on the tool (a URL,
// bytes, a compiled module), so it is typed as unknown: pass it to init() as it is.
declare const wasm: unknown;
export default wasm;
