/**
 * The execution tier and its thresholds, a machine option (MachineConfig.accel,
 * CLI `-accel tsvm,tier=...,threshold=N`) so that tests and benchmarks choose it
 * explicitly:
 *
 *  - `interp`: every instruction through the interpreter (tier 0, the reference);
 *  - `blocks`: hot basic blocks compiled to JS functions (blocks.ts);
 *  - `wasm`:   hot pages compiled to WebAssembly regions (wasm-tier.ts), with
 *              blocks below them for what a region does not run; the default.
 *
 * `threshold` is how many entries an address sees before it is compiled; 1
 * compiles on first sight (what the differential tests use to push every
 * instruction through the compiler).
 */
export type Tier = 'interp' | 'blocks' | 'wasm';
export const TIERS: readonly Tier[] = ['interp', 'blocks', 'wasm'];

export interface AccelConfig {
  tier: Tier;
  /** Entries through an address before its code is compiled (>= 1). */
  threshold: number;
  /**
   * wasm: guest instructions a region runs before it is compiled again by
   * the host's optimiser (wasm-tier.ts); 0 never; unset, the default, a
   * count that grows with the region's size, the optimiser held to a share of
   * the time (wasm-tier.ts HOT_PER_BYTE, OPT_SHARE).
   */
  hot?: number;
}

/**
 * Entries through the same address before its block is compiled. Compiling a
 * JS block costs about 1 ms of CPU (new Function on this thread, then V8's
 * optimising compiler on its own threads), a few thousand interpreted
 * instructions' worth, while a block saves well under a microsecond per entry;
 * a Linux boot runs tens of thousands of distinct blocks only a few hundred
 * times each. Measured on the default guest's boot (CPU seconds to the
 * prompt): 40 -> 163, 300 -> 145, 1000 -> 130, 3000 -> 126; no blocks 138.
 */
export const DEFAULT_THRESHOLD = 2000;

export class AccelError extends Error {}

/** Largest threshold accepted (an int32 counter must not wrap). */
const MAX_THRESHOLD = 1 << 30;
/** Largest `hot` accepted (a double counter; 2^50 instructions is years of guest time). */
const MAX_HOT = 2 ** 50;

/**
 * Parse `tsvm[,tier=interp|blocks|wasm][,threshold=N][,hot=N]` (the `-accel` option).
 * Throws AccelError with a message that says what was wrong.
 */
export function parseAccel(text: string, base: AccelConfig = defaultAccel('')): AccelConfig {
  const parts = text.split(',');
  if (parts[0] !== 'tsvm') {
    throw new AccelError(`-accel '${text}': the accelerator is 'tsvm' (e.g. -accel tsvm,tier=blocks,threshold=1)`);
  }
  const out: AccelConfig = { ...base };
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const val = eq < 0 ? '' : p.slice(eq + 1);
    if (key === 'tier') {
      if (!(TIERS as readonly string[]).includes(val)) throw new AccelError(`-accel: tier '${val}' is not known; use one of ${TIERS.join(', ')}`);
      out.tier = val as Tier;
    } else if (key === 'threshold') {
      const n = Number(val);
      if (!/^\d+$/.test(val) || n < 1 || n > MAX_THRESHOLD) throw new AccelError(`-accel: threshold '${val}' is not a whole number from 1 to ${MAX_THRESHOLD}`);
      out.threshold = n;
    } else if (key === 'hot') {
      const n = Number(val);
      if (!/^\d+$/.test(val) || n > MAX_HOT) throw new AccelError(`-accel: hot '${val}' is not a whole number from 0 (never optimise) to ${MAX_HOT}`);
      out.hot = n;
    } else {
      throw new AccelError(`-accel: property '${key}' is not known; the properties are tier=${TIERS.join('|')}, threshold=N and hot=N`);
    }
  }
  return out;
}

/**
 * The default when no option is given: wasm at DEFAULT_THRESHOLD (docs/cpu-jit.md,
 * "Why wasm is the default"), unless the
 * environment variable TSVM_CPU_BLOCKS says otherwise (kept as a fallback for
 * scripts: `0` runs the interpreter alone, `eager` compiles on first sight).
 */
export function defaultAccel(env: string | undefined = readEnv('TSVM_CPU_BLOCKS')): AccelConfig {
  if (env === '0') return { tier: 'interp', threshold: DEFAULT_THRESHOLD };
  if (env === 'eager') return { tier: 'blocks', threshold: 1 };
  return { tier: 'wasm', threshold: DEFAULT_THRESHOLD };
}

function readEnv(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}
