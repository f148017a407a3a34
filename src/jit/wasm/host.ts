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
/** A funcref table (call_indirect's targets): region functions by host page (wasm/chain.ts). */
export interface WasmTable {
  readonly length: number;
  get(i: number): unknown;
  set(i: number, f: unknown): void;
}
export type WasmImports = Record<string, Record<string, unknown>>;

interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Table: new (d: { element: 'anyfunc'; initial: number; maximum?: number }) => WasmTable;
  Module: new (bytes: Uint8Array) => WasmModule;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (m: WasmModule, imports?: WasmImports) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
}

/** The global WebAssembly object (present in Node 20 and every current browser). */
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Size of a WebAssembly memory page. */
export const WASM_PAGE = 65536;

/** Compile and instantiate a module synchronously (the engine's baseline compiler: `optimizer.baseline`). */
export function instantiate(bytes: Uint8Array, imports: WasmImports = {}): WasmInstance {
  return new Wasm.Instance(optimizer.baseline(bytes), imports);
}

/**
 * An optimising compile for the few regions that run most of the guest's
 * instructions, installed by the embedder where the engine's own tier-up is
 * off (src/vmm/v8flags.ts on Node: V8's TurboFan for one module while every
 * other region stays in the baseline compiler); null where none is installed
 * (a browser tiers up hot functions by itself).
 */
export const optimizer: {
  compile: ((bytes: Uint8Array) => WasmModule) | null;
  /**
   * Where the embedder has one: the same optimising compile run on the
   * engine's own threads (V8's workers on Node), the promise settling when
   * the code is ready. The wasm tier then hands its hot regions to this
   * instead of `compile` and goes on running their baseline code; it puts
   * the optimised code in place between two slices, when the promise
   * settles, if the page has not changed meanwhile. Null where there is none
   * (a single-core host, where the guest's thread would wait for the core
   * anyway).
   */
  later: ((bytes: Uint8Array) => Promise<WasmModule>) | null;
  /**
   * How every other module (each region, the tests' small ones) is made: the
   * engine's baseline compiler, at once. The embedder replaces it where the
   * engine needs setting up around it (src/vmm/v8flags.ts: V8 reads its
   * compiler flags per module, and `later` holds them at the optimiser's
   * while a compile is in flight).
   */
  baseline: (bytes: Uint8Array) => WasmModule;
} = { compile: null, later: null, baseline: (bytes) => new Wasm.Module(bytes) };

/**
 * The clock compile times are taken with, in milliseconds: wall time
 * (performance.now) unless the embedder installs a CPU-time clock of the
 * calling thread (src/vmm/cpuclock.ts on Linux), so that `info jit` reports
 * host CPU per compiled instruction and not the time a loaded host kept the
 * process waiting. `cpu` says which one is installed.
 */
export const compileClock: { now: () => number; cpu: boolean } = { now: () => performance.now(), cpu: false };

// `performance` is a global in Node and browsers; typed here for the ES2022 lib
declare const performance: { now(): number };
