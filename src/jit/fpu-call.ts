/**
 * The FPU as a region imports it (`env.fpu`, region.ts Emitter.fpu): an x87
 * instruction (D8-DF) or FXSAVE/FXRSTOR (0F AE /0 /1) runs on the CPU's own
 * FPU (src/cpu/fpu.ts, exact 80-bit), with the operand decoded by the
 * region, instead of the region leaving for the interpreter at each one
 * (seq | gzip ran 2.8 M x87 instructions and 0.9 M FXSAVE/FXRSTOR that way).
 *
 * The answer says how the region goes on:
 *  - FPU_ON: done;
 *  - FPU_BEFORE: nothing done that the interpreter will not do again the
 *    same way (a fault, CR0.EM or TS set, an x87 error pending, an encoding
 *    the FPU refuses, FXSAVE/FXRSTOR misaligned or through a segment that
 *    needs limit checks): the region leaves before the
 *    instruction and the interpreter runs it, raising what it raises. The
 *    FPU changes nothing of its state before its operand is read or its
 *    stores made (what a #PF restart needs), so the attempt is not seen;
 *  - FPU_AFTER: done, but a store hit a page holding compiled code (the
 *    running region may be stale): the region leaves after it.
 * With FPU_OUT, the high 16 bits are what FCOMI/FUCOMI set in EFLAGS
 * (ZF/PF/CF) or FNSTSW stored in AX: the region holds both, so the CPU's
 * FPU bus leaves them in cpu.fpuOut while the import runs it.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CR0, Seg } from '../cpu/consts.js';
import { CpuFault } from '../cpu/fault.js';
import { SEG_WRITE } from '../cpu/seglimit.js';
import { FPU_AFTER, FPU_BEFORE, FPU_O16, FPU_ON, FPU_OUT, FPU_SEG_SHIFT } from './wasm/region.js';

/** cpu.fpuOut armed: nothing written (FCOMI and FNSTSW AX write 16 bits or less). */
const NOTHING_OUT = 0x10000;

/** The import for `cpu`; `codeWrites` counts writes into pages holding compiled code. */
export function fpuImport(cpu: Cpu, codeWrites: () => number): (op: number, modrm: number, off: number, eip: number) => number {
  return (op, modrm, off, eip) => {
    const fpu = cpu.fpu;
    if (fpu === null || (cpu.cr0 & (CR0.EM | CR0.TS)) !== 0) return FPU_BEFORE;
    const key = op & 0xfff;
    const seg = (op >> FPU_SEG_SHIFT) & 7;
    const lin = (cpu.segBase[seg] + off) | 0;
    if (modrm < 0xc0) {
      // what the interpreter's decode leaves for the FPU's bus (its segment checks, cpu.ts FpuBus)
      cpu.eaSeg = seg;
      cpu.eaOff = off;
      cpu.ea = lin;
    }
    const w = codeWrites();
    let out = NOTHING_OUT;
    try {
      if (key === 0x1ae) {
        // the alignment and the whole image's segment check first, as the interpreter's (ops/system.ts)
        if ((lin & 15) !== 0 || (cpu.segSlow & ((1 << seg) | (1 << (seg + SEG_WRITE)))) !== 0) return FPU_BEFORE;
        if ((modrm & 0x38) === 0) fpu.fxsave(lin);
        else fpu.fxrstor(lin);
      } else {
        if (!fpu.isValid(key, modrm) || fpu.errorPending) return FPU_BEFORE;
        fpu.instrCs = cpu.sreg[Seg.CS];
        fpu.instrIp = eip;
        if (modrm < 0xc0) {
          fpu.dataSeg = cpu.sreg[seg];
          fpu.dataOff = off;
        }
        cpu.fpuOut = NOTHING_OUT;
        fpu.execute(key, modrm, lin, (op & FPU_O16) === 0, !cpu.protectedMode || cpu.vm86);
      }
    } catch (e) {
      if (e instanceof CpuFault) return FPU_BEFORE;
      throw e;
    } finally {
      out = cpu.fpuOut;
      cpu.fpuOut = -1;
    }
    return (codeWrites() !== w ? FPU_AFTER : FPU_ON) | (out >= 0 && out < NOTHING_OUT ? FPU_OUT | (out << 16) : 0);
  };
}
