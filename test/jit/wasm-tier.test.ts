// The wasm tier against the interpreter, in lockstep: test/jit/conds.asm
// (every condition after every flag producer the region compiler takes,
// memory operands through DS/SS bases, CALL/RET, 8-bit registers,
// self-modifying code) and test/jit/forms.asm (every other form it takes:
// 16-bit operands, LOCK, REP string chunks across pages, shifts and
// rotates, MUL/DIV, bit instructions, stack forms, indirect transfers) run
// on the interpreter and on the compiled tiers in
// slices of odd lengths; after every slice the instruction count, EIP,
// registers and EFLAGS must agree, and at the end RAM too. test/jit/chain.asm
// (calls, returns and loops across RAM pages with paging on, self-modifying
// stores into pages of a running chain, page-table changes) checks the
// chain dispatcher (wasm/chain.ts) the same way, with chaining on and off.
// test/jit/irq.asm runs CLI, STI, POPF and RDTSC in compiled code under a
// fast timer interrupt, and logs where each interrupt arrived: STI's shadow,
// POPF setting IF or TF, interrupts delivered at the right instruction.
// test/jit/x87.asm runs x87 instructions and FXSAVE/FXRSTOR through the
// regions' FPU import (src/jit/fpu-call.ts), with #NM, #MF and #PF sending
// one back to the interpreter now and then, and FIST rewriting code ahead.
// test/jit/seg.asm does the same for MOV ES/DS/FS/GS through the regions'
// segment-load import (src/jit/sys-call.ts): flat, based, limited, null,
// not present, past the GDT's limit; and for MOV CR3, which switches the
// page the next instruction comes from (the region must leave after it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../src/board/machine.js';
import type { AccelConfig } from '../../src/jit/accel.js';
import { WasmCache } from '../../src/jit/wasm-tier.js';
import { optimizer } from '../../src/jit/wasm/host.js';
// the V8 settings every tsvm process runs with, and the optimiser they install (hot regions through TurboFan)
import '../../src/vmm/v8flags.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

function rom(name: string): Uint8Array {
  const out = join(mkdtempSync(join(tmpdir(), 'tsvm-jit-')), `${name}.bin`);
  execFileSync('nasm', ['-f', 'bin', join(ROOT, `test/jit/${name}.asm`), '-o', out]);
  return new Uint8Array(readFileSync(out));
}

function state(m: Machine): string {
  const c = m.cpu;
  const regs = Array.from(c.reg32, (v) => (v >>> 0).toString(16)).join(' ');
  return `n=${c.instructionsRun} eip=${(c.eip >>> 0).toString(16)} flags=${c.getFlags().toString(16)} regs=${regs} ${m.stopReason}`;
}

function ramHash(m: Machine): string {
  return createHash('sha256').update(m.mem.mem.subarray(0, m.mem.ramSize)).digest('hex');
}

type Variant = AccelConfig & { chain?: false; later?: true };
const TIERS: Variant[] = [
  { tier: 'wasm', threshold: 1 },
  { tier: 'wasm', threshold: 20 },
  { tier: 'wasm', threshold: 1, chain: false },
  // every region optimised once it has run a few thousand instructions, the guest's thread waiting for the compile
  { tier: 'wasm', threshold: 20, hot: 2000 },
  // the same on V8's workers, the optimised code put in place between slices when it is ready
  // (the test yields to the event loop after every slice, as the VM runner does between its slices)
  ...(optimizer.later !== null ? [{ tier: 'wasm', threshold: 20, hot: 2000, later: true } as const] : []),
  { tier: 'blocks', threshold: 1 },
];

for (const prog of ['conds', 'forms', 'chain', 'irq', 'x87', 'seg']) {
  for (const v of TIERS) {
    const accel: AccelConfig = { tier: v.tier, threshold: v.threshold, ...(v.hot !== undefined ? { hot: v.hot } : {}) };
    test(`lockstep with the interpreter: ${prog}.asm, tier=${accel.tier} threshold=${accel.threshold}${v.hot !== undefined ? ` hot=${v.hot}` : ''}${v.later ? ' (optimised on V8 workers)' : ''}${v.chain === false ? ' chain=off' : ''}`, async () => {
      const bios = rom(prog);
      const ref = new Machine({ memoryBytes: 16 << 20, bios, accel: { tier: 'interp', threshold: 1 } });
      const sub = new Machine({ memoryBytes: 16 << 20, bios, accel });
      // TSVM_WASM_CHAIN=0 as a machine would see it: a cache without the dispatcher
      const jit = v.chain === false ? (sub.cpu.codeCache = new WasmCache(sub.cpu, sub.stateMemory, accel.threshold, false)) : sub.jit;
      if (jit instanceof WasmCache) jit.background = v.later === true;
      let slices = 0;
      for (let i = 0; ref.stopReason === 'running' && i < 100_000; i++) {
        const n = 1 + ((i * 7919) % 1531); // slice ends at scattered points
        ref.runSlice(n);
        sub.runSlice(n);
        assert.equal(state(sub), state(ref), `after slice ${i} (${n} instructions)`);
        slices++;
        if (v.later && jit instanceof WasmCache && jit.optimisePending > 0) await new Promise((r) => setTimeout(r, 1));
      }
      assert.equal(ref.stopReason, 'halt', 'the program ran to its end');
      assert.equal(ramHash(sub), ramHash(ref), 'RAM');
      assert.ok(slices > 100);
      // irq.asm's handler counts the interrupts and traps it took (COUNT)
      if (prog === 'irq') assert.ok(new DataView(ref.mem.mem.buffer, ref.mem.mem.byteOffset).getUint32(0x70004, true) > 300, 'interrupts were delivered');
      if (jit instanceof WasmCache) {
        assert.equal(jit.compileErrors, 0, jit.firstCompileError);
        const share = jit.instructionsRun / sub.cpu.instructionsRun;
        // forms.asm is made of taken forms only: a form that stops being compiled shows here;
        // chain.asm's loops in the last bytes of a page and across a page end must run compiled
        // too (an instruction that crosses the page end is compiled, checked against the next page at run time)
        // irq.asm: the interrupt handler (IN/OUT, IRET) and the single-stepped code are the interpreter's
        // x87.asm: its x87 instructions are a third of it; run as exits they would leave under 0.7;
        // seg.asm: the slice ends, the exits after ES is limited or CR3 loaded, and the faults' stepping
        assert.ok(share > (prog === 'conds' ? 0.4 : prog === 'irq' ? 0.6 : prog === 'x87' ? 0.85 : prog === 'seg' ? 0.6 : 0.9), `a good share of the instructions run in compiled regions (${(share * 100).toFixed(1)}%)`);
        // x87.asm: about 60 of its 100 instructions an iteration are x87 ones, one (FCMOVcc) the interpreter's;
        // seg.asm: 5 of its 35 or so are MOV Sreg
        if (prog === 'x87' || prog === 'seg') assert.ok(jit.exits['instruction not compiled'] < sub.cpu.instructionsRun / 20, `the ${prog} instructions run in the regions (${jit.exits['instruction not compiled']} exits for an instruction not compiled)`);
        const calls = jit.regionCalls + jit.chainedCalls;
        // (one in 8: a page is decoded whole only after SWEEP_AFTER recompiles, so a few
        // functions entered from other pages miss `threshold` times before they are labels)
        if (prog === 'chain') assert.ok(jit.labelMisses < calls / 8, `entries that are not labels: ${jit.labelMisses} in ${calls} region calls`);
        if (v.hot !== undefined) {
          assert.equal(jit.optimiseErrors, 0, 'the optimiser took every hot region');
          assert.ok(jit.optimisedRunning > 0, `hot regions ran optimised code (${jit.regionsOptimised} handed over, ${jit.optimisedRunning} put in place, ${jit.optimiseStale} dropped, ${jit.optimisePending} still compiling)`);
          // the runs the optimised code came back to: conds.asm rewrites its own code, so some come back stale
          if (v.later) assert.equal(jit.optimisedRunning + jit.optimiseStale + jit.optimisePending, jit.regionsOptimised, 'every module handed over came back or is on its way');
        }
        if (v.chain === false) assert.equal(jit.chainedCalls, 0, 'chaining off');
        // most region calls of chain.asm are made by the dispatcher
        else if (prog === 'chain') assert.ok(jit.chainedCalls > 2 * jit.regionCalls, `chained ${jit.chainedCalls}, from JS ${jit.regionCalls}`);
      }
    });
  }
}
