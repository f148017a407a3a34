/**
 * String instructions (MOVS CMPS STOS LODS SCAS INS OUTS) with REP/REPE/REPNE.
 * A repeated instruction runs at most REP_CHUNK iterations per execution and
 * then restarts itself, so interrupts are taken between chunks. Registers are
 * updated after every iteration, so a fault leaves the architecturally
 * correct partial state.
 */
import { REP_CHUNK, type Cpu } from '../cpu.js';
import { F, Seg } from '../consts.js';
import { checkIoPermission } from '../tasks.js';
import { segCheck, SEG_WRITE } from '../seglimit.js';
import { alu, Alu } from './arith.js';
import { op } from './table.js';

function rd(cpu: Cpu, lin: number, size: number): number {
  return size === 1 ? cpu.rd8(lin) : size === 2 ? cpu.rd16(lin) : cpu.rd32(lin);
}
function wr(cpu: Cpu, lin: number, v: number, size: number): void {
  if (size === 1) cpu.wr8(lin, v);
  else if (size === 2) cpu.wr16(lin, v);
  else cpu.wr32(lin, v);
}
function getAcc(cpu: Cpu, size: number): number {
  return size === 1 ? cpu.reg8[0] : size === 2 ? cpu.reg16[0] : cpu.reg32[0];
}
function setAcc(cpu: Cpu, v: number, size: number): void {
  if (size === 1) cpu.reg8[0] = v;
  else if (size === 2) cpu.reg16[0] = v;
  else cpu.reg32[0] = v;
}

const enum S {
  MOVS,
  CMPS,
  STOS,
  LODS,
  SCAS,
  INS,
  OUTS,
}

function stringOp(kind: number, size: number) {
  return (cpu: Cpu): void => {
    const a32 = cpu.a32;
    const mask = a32 ? -1 : 0xffff;
    const delta = (cpu.flags & F.DF) !== 0 ? -size : size;
    const srcSeg = cpu.segOvr >= 0 ? cpu.segOvr : Seg.DS;
    const srcBase = cpu.segBase[srcSeg];
    const dstBase = cpu.segBase[Seg.ES];
    // segment limit checks (seglimit.ts), only when the segment is not flat
    const chkSrc = (cpu.segSlow & (1 << srcSeg)) !== 0;
    const dstWrite = kind === S.MOVS || kind === S.STOS || kind === S.INS;
    const chkDst = (cpu.segSlow & (1 << (Seg.ES + (dstWrite ? SEG_WRITE : 0)))) !== 0;
    const r32 = cpu.reg32;
    const top = size * 8 - 1;
    if (kind === S.INS || kind === S.OUTS) checkIoPermission(cpu, cpu.reg16[4], size);
    const rep = cpu.rep;
    // single-stepping, data and I/O breakpoints trap after the iteration (SDM 17.3.1.4, 17.2.4)
    let n = rep !== 0 && (cpu.flags & F.TF) === 0 && !cpu.dataBpArmed && !cpu.ioBpArmed ? REP_CHUNK : 1;
    while (n-- > 0) {
      if (rep !== 0 && (r32[1] & mask) === 0) return;
      const si = r32[6];
      const di = r32[7];
      if (chkSrc && kind !== S.STOS && kind !== S.SCAS && kind !== S.INS) segCheck(cpu, srcSeg, si & mask, size, false);
      if (chkDst && kind !== S.LODS && kind !== S.OUTS) segCheck(cpu, Seg.ES, di & mask, size, dstWrite);
      switch (kind) {
        case S.MOVS: {
          const v = rd(cpu, (srcBase + (si & mask)) | 0, size);
          wr(cpu, (dstBase + (di & mask)) | 0, v, size);
          r32[6] = (si & ~mask) | ((si + delta) & mask);
          r32[7] = (di & ~mask) | ((di + delta) & mask);
          break;
        }
        case S.CMPS: {
          const a = rd(cpu, (srcBase + (si & mask)) | 0, size);
          const b = rd(cpu, (dstBase + (di & mask)) | 0, size);
          alu(cpu, Alu.CMP, a, b, top);
          r32[6] = (si & ~mask) | ((si + delta) & mask);
          r32[7] = (di & ~mask) | ((di + delta) & mask);
          break;
        }
        case S.STOS:
          wr(cpu, (dstBase + (di & mask)) | 0, getAcc(cpu, size), size);
          r32[7] = (di & ~mask) | ((di + delta) & mask);
          break;
        case S.LODS:
          setAcc(cpu, rd(cpu, (srcBase + (si & mask)) | 0, size), size);
          r32[6] = (si & ~mask) | ((si + delta) & mask);
          break;
        case S.SCAS: {
          const b = rd(cpu, (dstBase + (di & mask)) | 0, size);
          alu(cpu, Alu.CMP, getAcc(cpu, size), b, top);
          r32[7] = (di & ~mask) | ((di + delta) & mask);
          break;
        }
        case S.INS: {
          const lin = (dstBase + (di & mask)) | 0;
          cpu.probeWrite(lin, size);
          const p = cpu.reg16[4];
          const v = size === 1 ? cpu.io.read8[p](p) : size === 2 ? cpu.io.read16[p](p) : cpu.io.read32[p](p);
          wr(cpu, lin, v, size);
          r32[7] = (di & ~mask) | ((di + delta) & mask);
          break;
        }
        default: {
          const v = rd(cpu, (srcBase + (si & mask)) | 0, size);
          const p = cpu.reg16[4];
          if (size === 1) cpu.io.write8[p](p, v);
          else if (size === 2) cpu.io.write16[p](p, v);
          else cpu.io.write32[p](p, v);
          r32[6] = (si & ~mask) | ((si + delta) & mask);
          break;
        }
      }
      if (rep === 0) return;
      const c = r32[1];
      r32[1] = (c & ~mask) | ((c - 1) & mask);
      if (kind === S.CMPS || kind === S.SCAS) {
        // REPE stops when ZF=0, REPNE when ZF=1
        if (cpu.getZF() !== (rep === 0xf3)) return;
      }
    }
    // more iterations remain: run this instruction again (interrupts may be taken first)
    if ((r32[1] & mask) !== 0) cpu.eip = cpu.instrStart;
  };
}

const KINDS: [number, number][] = [
  [0xa4, S.MOVS],
  [0xa6, S.CMPS],
  [0xaa, S.STOS],
  [0xac, S.LODS],
  [0xae, S.SCAS],
  [0x6c, S.INS],
  [0x6e, S.OUTS],
];
for (const [code, kind] of KINDS) {
  op(code, stringOp(kind, 1));
  op(code + 1, stringOp(kind, 2), stringOp(kind, 4));
}
