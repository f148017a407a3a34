/**
 * The host's WebAssembly API, typed here for the subset the JIT uses: the
 * project builds with `lib: ES2022` and no DOM or Node types in the core, and
 * the same code runs in browsers and Node.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly __wasmModule?: never;
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
export type WasmImports = Record<string, Record<string, unknown>>;

interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports?: WasmImports) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}

/** The global WebAssembly object (present in Node 20 and every current browser). */
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Size of a WebAssembly memory page. */
export const WASM_PAGE = 65536;

/** Compile and instantiate a module synchronously (V8's baseline compiler; small modules). */
export function instantiate(bytes: Uint8Array, imports: WasmImports = {}): WasmInstance {
  return new Wasm.Instance(new Wasm.Module(bytes), imports);
}
