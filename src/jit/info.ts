/**
 * `info jit` (the monitor, src/vmm/monitor.ts): what each execution tier has
 * done since the machine started, as counters a user can compare between two
 * moments of a guest's life.
 */
import type { Cpu } from '../cpu/cpu.js';
import { BlockCache } from './blocks.js';
import { HOT_MIN, HOT_PER_BYTE, WasmCache } from './wasm-tier.js';
import { compileClock, optimizer } from './wasm/host.js';

/** The text of `info jit` for a machine's CPU and its compiled tier (null: the interpreter alone). */
export function jitInfo(cpu: Cpu, jit: BlockCache | WasmCache | null): string {
  const total = cpu.instructionsRun;
  const blocks = jit instanceof WasmCache ? jit.blocks : jit;
  const inRegions = jit instanceof WasmCache ? jit.instructionsRun : 0;
  const inBlocks = blocks?.instructionsRun ?? 0;
  const interp = total - inRegions - inBlocks;
  const tier = jit === null ? 'interp' : jit instanceof WasmCache ? 'wasm' : 'blocks';
  const lines = [`tier: ${tier}${jit ? `, threshold ${jit.threshold}` : ''}`, `instructions run: ${total}`];
  const row = (name: string, n: number): string => `  ${name.padEnd(18)} ${String(n).padStart(14)}  ${pct(n, total)}`;
  if (jit instanceof WasmCache) lines.push(row('wasm regions', inRegions));
  if (blocks) lines.push(row('js blocks', inBlocks));
  lines.push(row('interpreter', interp));
  if (jit instanceof WasmCache) {
    const c = jit.instructionsCompiled;
    lines.push(
      `wasm regions: ${jit.regionsCompiled} compiled (${c} instructions, ${(jit.wasmBytes / 1048576).toFixed(1)} MiB of wasm, ${ms(jit.compileMs)} ${clock()} compiling, ${c ? ((jit.compileMs * 1000) / c).toFixed(1) : '0'} us per instruction, ${c ? ((jit.emitMs * 1000) / c).toFixed(1) : '0'} of them writing the wasm)`,
      `  recompiled for a new entry ${jit.recompiles}, invalidated by writes ${jit.invalidations}, pages left to lower tiers ${jit.pagesGivenUp}, refused by the engine ${jit.compileErrors}`,
      `  optimised when hot ${jit.regionsOptimised} (${(jit.optimisedBytes / 1048576).toFixed(1)} MiB of wasm, ${ms(jit.optimiseMs)} ${clock()} here${jit.optimiseErrors ? `, refused ${jit.optimiseErrors}` : ''})${optimizer.compile === null ? ' (no optimiser on this host)' : jit.later !== null ? ` on another thread (${jit.optimisedRunning} in place, ${jit.optimisePending} still compiling, ${jit.optimiseStale} dropped: their page had changed)` : ''}, ${hotRule(jit)}`,
      `  hottest: ${jit.hottest(8).map((h) => `${h.eipPage.toString(16)} ${(h.ran / 1e6).toFixed(1)}M${h.optimised ? '*' : ''}`).join(', ')} (EIP page, instructions since compiled, * optimised)`,
      `  calls from JS ${jit.regionCalls}, calls by the chain dispatcher ${jit.chainedCalls}${jit.chaining ? '' : ' (chaining off)'}, entries not at a label ${jit.labelMisses}, at an exit ${jit.exitEntries}`,
      `  calls from JS that went on after a TLB refill: data ${jit.dataRefills}, code ${jit.codeRefills}`,
      `  exits to JS by reason:`,
    );
    for (const [why, n] of Object.entries(jit.exits)) {
      lines.push(`    ${why.padEnd(26)} ${String(n).padStart(12)}  ${pct(n, jit.regionCalls)}`);
      if (why === 'off the page') for (const [w, m] of Object.entries(jit.offPage)) lines.push(`      off: ${w.padEnd(19)} ${String(m).padStart(12)}  ${pct(m, jit.regionCalls)}`);
    }
  }
  if (blocks) {
    lines.push(`js blocks: ${blocks.compiled} compiled (${ms(blocks.compileMs)} ${clock()} compiling), ${blocks.reused} reused after eviction, invalidated by writes ${blocks.invalidations}`);
  }
  return lines.join('\n');
}

/** When a region counts as hot (-accel tsvm,hot=N, or the cost model). */
function hotRule(jit: WasmCache): string {
  const hot = jit.hot;
  if (hot === 0) return 'optimiser off (hot=0)';
  if (hot !== undefined) return `at ${hot} instructions (hot=${hot})`;
  const bound = jit.later !== null ? 'half of another core' : 'a tenth of the time';
  return `at ${HOT_PER_BYTE} instructions per byte of its wasm (${HOT_MIN / 1e6} M at least), the hottest first, within ${bound}`;
}

/** Which clock compile times are in: the compiling thread's CPU time, or wall time. */
function clock(): string {
  return compileClock.cpu ? 'CPU' : 'wall';
}

function pct(n: number, of: number): string {
  return of > 0 ? `${((n / of) * 100).toFixed(1).padStart(5)}%` : '     -';
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
}
