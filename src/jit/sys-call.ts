/**
 * System instructions a region hands to the interpreter's own code through
 * an import, instead of leaving for each: MOV Sreg and MOV CR3.
 *
 * The segment load a region imports (`env.seg`, region.ts Emitter.segLoad):
 * MOV ES/DS/FS/GS, r/m16, loaded by the interpreter's own code
 * (src/cpu/segments.ts loadSeg), instead of the region leaving for the
 * interpreter at each one. Linux loads DS, ES, FS and GS on every system
 * call's way in and out (seq | gzip: 1.6 M times).
 *
 * The answer (region.ts FPU_ON/FPU_BEFORE/FPU_AFTER):
 *  - on: loaded, and what regions assume of the segments (`okSegs`: which
 *    are flat and permissive, ES/SS/DS bases of 0) is as it was when the
 *    region was entered, so it and the chain dispatcher may go on;
 *  - before: a fault (#GP, #NP, #PF reading the descriptor), raised before
 *    anything is loaded: the interpreter runs the instruction and raises it;
 *  - after: loaded, but those assumptions changed, or setting the
 *    descriptor's accessed bit wrote a page holding compiled code.
 * The exchange area's copies of the selectors and bases, which regions
 * read, are written here too.
 */
import type { Cpu } from '../cpu/cpu.js';
import { Seg, Tlb } from '../cpu/consts.js';
import { CpuFault } from '../cpu/fault.js';
import { loadSeg } from '../cpu/segments.js';
import { FPU_AFTER, FPU_BEFORE, FPU_ON, Xchg } from './wasm/region.js';

/** Base slots of the exchange area, by Seg (CS has none). */
const BASE_AT = [Xchg.ESB, -1, Xchg.SSB, Xchg.DSB, Xchg.FSB, Xchg.GSB];

export function segImport(cpu: Cpu, xchg: Int32Array, codeWrites: () => number, okSegs: (cpu: Cpu) => number): (sreg: number, sel: number) => number {
  return (sreg, sel) => {
    const ok = okSegs(cpu);
    const w = codeWrites();
    try {
      loadSeg(cpu, sreg, sel);
    } catch (e) {
      if (e instanceof CpuFault) return FPU_BEFORE;
      throw e;
    }
    const s = cpu.sreg;
    xchg[Xchg.SEL + (sreg >> 1)] = sreg >> 1 === 0 ? s[Seg.ES] | (s[Seg.CS] << 16) : sreg >> 1 === 1 ? s[Seg.SS] | (s[Seg.DS] << 16) : s[Seg.FS] | (s[Seg.GS] << 16);
    xchg[BASE_AT[sreg]] = cpu.segBase[sreg];
    return okSegs(cpu) === ok && codeWrites() === w ? FPU_ON : FPU_AFTER;
  };
}

/**
 * MOV CR3, r32 (`env.cr3`, called from region.ts Emitter.insn): the interpreter's
 * load (CR3's page-directory bits, the TLB flushed but for global pages).
 * Not at CPL 0 (or in v8086 mode): before, the interpreter raises #GP. The
 * region goes on when its own code page's translation survived the flush
 * (Linux maps the kernel with global pages): the same entry, so the same
 * code; else after.
 */
export function cr3Import(cpu: Cpu): (v: number, eip: number) => number {
  return (v, eip) => {
    if (cpu.vm86 || (cpu.protectedMode && cpu.cpl !== 0)) return FPU_BEFORE;
    const page = ((cpu.segBase[Seg.CS] + eip) | 0) >>> 12;
    const e = cpu.tlb[page];
    cpu.loadCr3(v);
    return (e & Tlb.VALID) !== 0 && cpu.tlb[page] === e ? FPU_ON : FPU_AFTER;
  };
}
