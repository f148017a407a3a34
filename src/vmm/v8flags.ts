/**
 * V8 settings the emulator needs in a Node process, set once before any
 * WebAssembly is compiled (V8's flags are process-wide, so VMs in worker
 * threads share them).
 *
 * --no-turbo-jt: the wasm tier's region functions (a dispatch loop over many
 * labels, each exiting through the same few blocks) can send TurboFan's jump
 * threading into a loop that never ends (Node 20, V8 11.3: a background thread
 * spinning in JumpThreading::ComputeForwarding). At run time that thread only
 * burns a host core and the function never tiers up; at exit Node drains the
 * background tasks first, so the process never ends. Jump threading only
 * removes jumps to jumps; regions lose nothing measurable without it.
 *
 * --experimental-wasm-branch-hinting: TurboFan reads the branch-hint
 * section the region modules carry (encoder.ts ifUnlikely): a region's exits
 * and slow paths are marked unlikely, so the optimised code keeps them out of
 * line, with their spills, and the hot path stays dense (docs/cpu-jit.md,
 * "Branch hints"). Liftoff ignores the hints; an engine without the flag
 * skips the custom section.
 *
 * --liftoff-only: regions stay in V8's baseline compiler and V8 never tiers
 * them up to TurboFan (the wasm tier hands its few hot regions to
 * `later` below, or to `turbofan` on a one-core host, docs/cpu-jit.md
 * "Hot regions"). Measured on the default guest (docs/benchmarks.md, 2026-12-05):
 * the background tier-up cost 7-43 s of helper-thread CPU per bench/linux
 * phase, 10-100 times the regions' own compile time, and most of the peak
 * RSS (1.1 GB); without it the boot to the prompt took 22.5 s of CPU instead
 * of 57.1 s and the peak RSS fell to 657 MiB. Only seq+gzip ran slower
 * (140 s of CPU against 113 s): its deflate loops gain from TurboFan.
 *
 * --no-wasm-lazy-compilation: a module's code is compiled when the module
 * is made, not at its first call. V8 picks the tier of a lazy compile from
 * the flags of the moment of the call, and while `later` has a compile in
 * flight they are TurboFan's: a region made before and first called then
 * would be compiled by TurboFan on this thread.
 *
 * Not set: --turbo-force-mid-tier-regalloc (TurboFan's mid-tier register
 * allocator for every function, V8 10 to 11.3). It lowers the peak RSS by
 * 30-40 MiB (the full allocator's working memory for one large region
 * function is the process's peak), but the code it makes ran the hot loops
 * 10-25% slower with one VM on the host (docs/cpu-jit.md, "Memory", session
 * 22). `TSVM_TF_FLAGS=--turbo-force-mid-tier-regalloc` sets it for a run
 * where memory matters more.
 *
 * --semi-space-growth-factor=1: the JS heap's young generation stays at its
 * first size (1 MiB per semi-space) instead of growing to 16 MiB each under
 * the region compiler's short-lived garbage. Unlike --max-semi-space-size,
 * V8 reads this one whenever it would grow the space, so setting it here,
 * after the heap exists, works (for `tsvm run` too, whose process no flag
 * on the command line reaches). Measured on the default guest (docs/cpu-jit.md,
 * "Memory"): peak RSS 315 -> 282-285 MiB, the workloads no slower.
 */
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { optimizer, Wasm, type WasmModule } from '../jit/wasm/host.js';

let done = false;

/** The flags every module but the optimiser's is made under: Liftoff alone, compiled when the module is made. */
const BASELINE = '--liftoff --liftoff-only --no-wasm-lazy-compilation';
/** The flags while an optimising compile is in flight (`later`): TurboFan alone, no Liftoff code first. */
const OPTIMISING = '--no-liftoff-only --no-liftoff --no-wasm-lazy-compilation';
/** Compiles `later` has started and V8 has not finished. */
let inFlight = 0;
const resting = (): string => (inFlight > 0 ? OPTIMISING : BASELINE);

export function tuneV8(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-turbo-jt');
  setFlagsFromString(BASELINE);
  setFlagsFromString('--experimental-wasm-branch-hinting');
  setFlagsFromString('--semi-space-growth-factor=1');
  // a developer's knob for measuring V8's wasm settings (e.g. --liftoff-only): NODE_OPTIONS refuses most V8 flags
  const extra = process.env['TSVM_V8_FLAGS'];
  if (extra) setFlagsFromString(extra);
  else {
    optimizer.compile = turbofan;
    optimizer.baseline = baseline;
    // (not in a worker thread: VMs in threads of one process share V8's flags, and another
    // VM's regions made while this one holds TurboFan's would be compiled by TurboFan, at once)
    if (availableParallelism() > 1 && isMainThread && process.env['TSVM_TF_SYNC'] !== '1') optimizer.later = later;
  }
}

/**
 * A developer's knob: more V8 flags for the optimiser's compiles
 * (TSVM_TF_FLAGS, e.g. "--no-wasm-loop-unrolling"), for measuring their cost
 * and gain; they are not put back after a compile, so they are meant for
 * flags that only TurboFan reads.
 */
const TF_FLAGS = process.env['TSVM_TF_FLAGS'] ?? '';
/** A developer's knob: TSVM_TFLOG=1 prints each optimised module's size and compile time (ms) on stderr. */
const TF_LOG = process.env['TSVM_TFLOG'] === '1';

/**
 * The wasm tier's optimiser (src/jit/wasm/host.ts `optimizer`): one hot
 * region compiled by TurboFan, synchronously, while every other region stays
 * in Liftoff. V8 reads --liftoff when a module's compile starts, so the flags
 * are lifted for this one compile and put back. A custom section makes the
 * bytes differ from the Liftoff module's: V8 keeps compiled modules by their
 * bytes and would hand back the baseline code otherwise.
 */
const TAG = new Uint8Array([0, 4, 3, 0x74, 0x66, 0x31]); // custom section "tf1", empty
function tagged(bytes: Uint8Array): Uint8Array {
  const t = new Uint8Array(bytes.length + TAG.length);
  t.set(bytes);
  t.set(TAG, bytes.length);
  return t;
}

function turbofan(bytes: Uint8Array): WasmModule {
  // --wasm-num-compilation-tasks=0: the compile on this thread alone. V8's
  // worker threads would otherwise each compile a function of the module in
  // their own glibc malloc arena, which keeps what TurboFan's zones used:
  // about 1.3 MiB of RSS per optimised region, for good
  setFlagsFromString(`--no-liftoff-only --no-liftoff --no-wasm-lazy-compilation --wasm-num-compilation-tasks=0 ${TF_FLAGS}`);
  try {
    const t0 = TF_LOG ? performance.now() : 0;
    const m = new Wasm.Module(tagged(bytes));
    if (TF_LOG) process.stderr.write(`TF ${bytes.length} ${(performance.now() - t0).toFixed(1)}\n`);
    return m;
  } finally {
    setFlagsFromString(`${resting()} --wasm-num-compilation-tasks=128`);
  }
}

/**
 * A region's module by V8's baseline compiler (src/jit/wasm/host.ts
 * `optimizer.baseline`), under the baseline's flags also while an
 * optimising compile holds them at TurboFan's (`later`).
 */
function baseline(bytes: Uint8Array): WasmModule {
  if (inFlight === 0) return new Wasm.Module(bytes);
  setFlagsFromString(BASELINE);
  try {
    return new Wasm.Module(bytes);
  } finally {
    setFlagsFromString(OPTIMISING);
  }
}

/**
 * The wasm tier's optimiser where the host has a core to spare
 * (src/jit/wasm/host.ts `optimizer.later`): one hot region compiled by
 * TurboFan on V8's worker threads while this thread runs the guest on. V8's
 * asynchronous compile decodes on a worker and reads the compiler flags in a
 * later step that runs on this thread's event loop, so the flags stay at
 * TurboFan's until every compile in flight has settled; meanwhile `baseline`
 * sets Liftoff's around each region it makes, and no module is compiled
 * lazily (V8 would read the flags at its first call). This thread's share
 * is the region emitted again and an instance; the compile itself, V8's
 * decoding included, is the workers'. Before (session 21) the module was
 * made here with V8's dynamic tier-up on for it alone: that cost this thread
 * a Liftoff compile of the region too, about as much again as the emit
 * (docs/cpu-jit.md, "Optimising off the guest's thread"). Installed on a
 * process's main thread only: a VM in a worker thread (the daemon's
 * --isolation thread) keeps the synchronous `turbofan`, since V8's flags
 * are the whole process's and `baseline` guards this thread's modules only.
 */
function later(bytes: Uint8Array): Promise<WasmModule> {
  if (inFlight++ === 0) setFlagsFromString(OPTIMISING);
  const settled = (): void => {
    if (--inFlight === 0) setFlagsFromString(BASELINE);
  };
  const p = Wasm.compile(tagged(bytes));
  p.then(settled, settled);
  return p;
}

tuneV8();
