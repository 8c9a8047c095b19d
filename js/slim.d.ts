// vcc-auth/slim: as the default entry, plus `init()`.
export * from "./index.js";

/** Where the wasm comes from: a compiled WebAssembly.Module, its bytes, a Response
 *  (compiled while it streams), or a URL to fetch. */
export type VccWasmSource = object | ArrayBuffer | ArrayBufferView | Response | URL | string;

/** Instantiates the wasm (once; later calls share the first). Without an argument it
 *  fetches vcc_auth_bg.wasm next to this module. Await it before `new VccClient()`. */
export declare function init(input?: VccWasmSource | Promise<VccWasmSource>): Promise<void>;
