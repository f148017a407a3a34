/**
 * Segmentation: descriptor-table reads and segment-register loads with the
 * protected-mode checks and the fault each failure raises (SDM vol. 3, 5.4-5.8,
 * and the MOV/POP Sreg pseudo-code in vol. 2).
 */
import { updateSegChecks } from './seglimit.js';
import type { Cpu } from './cpu.js';
import { Attr, Seg, Vec } from './consts.js';

/** A decoded descriptor (work object, reused: never allocate on these paths). */
export class Descriptor {
  lo = 0;
  hi = 0;
  /** Linear address of the descriptor itself (to set the accessed bit). */
  addr = 0;
  get base(): number {
    return (this.lo >>> 16) | ((this.hi & 0xff) << 16) | (this.hi & 0xff000000);
  }
  get limit(): number {
    const l = (this.lo & 0xffff) | (this.hi & 0xf0000);
    return this.hi & 0x800000 ? (l << 12) | 0xfff : l;
  }
  /** Access rights as kept in Cpu.segAttr. */
  get attr(): number {
    return (this.hi >>> 8) & 0xf0ff;
  }
  get dpl(): number {
    return (this.hi >>> 13) & 3;
  }
  get present(): boolean {
    return (this.hi & 0x8000) !== 0;
  }
  /** S bit set: code or data segment (not a system descriptor). */
  get isSegment(): boolean {
    return (this.hi & 0x1000) !== 0;
  }
  get isCode(): boolean {
    return (this.hi & 0x1800) === 0x1800;
  }
  /** System-descriptor type (low 4 bits of the type field), or data/code type. */
  get type(): number {
    return (this.hi >>> 8) & 0xf;
  }
}

/**
 * Read the descriptor for `sel` into `d`. Returns false if the selector's index
 * lies beyond its table's limit (the caller raises the fault that fits).
 */
export function readDescriptor(cpu: Cpu, sel: number, d: Descriptor): boolean {
  let base: number;
  let limit: number;
  if (sel & 4) {
    if ((cpu.segAttr[Seg.LDTR] & Attr.P) === 0 || cpu.sreg[Seg.LDTR] === 0) return false;
    base = cpu.segBase[Seg.LDTR];
    limit = cpu.segLimit[Seg.LDTR];
  } else {
    base = cpu.gdtBase;
    limit = cpu.gdtLimit;
  }
  const off = sel & 0xfff8;
  if (off + 7 > limit >>> 0) return false;
  d.addr = (base + off) | 0;
  d.lo = cpu.sysRead32(d.addr);
  d.hi = cpu.sysRead32((d.addr + 4) | 0);
  return true;
}

/** Set the accessed bit of a code/data descriptor in memory, as loading it does. */
export function setAccessed(cpu: Cpu, d: Descriptor): void {
  if ((d.hi & 0x100) === 0) {
    d.hi |= 0x100;
    cpu.sysWrite8((d.addr + 5) | 0, (d.hi >>> 8) & 0xff);
  }
}

/** Put a descriptor into a segment register's cache. */
export function setSegCache(cpu: Cpu, seg: number, sel: number, d: Descriptor): void {
  cpu.sreg[seg] = sel;
  cpu.segBase[seg] = d.base;
  cpu.segLimit[seg] = d.limit;
  cpu.segAttr[seg] = d.attr;
  if (seg === Seg.CS || seg === Seg.SS) cpu.updateModes();
  else updateSegChecks(cpu);
}

/** A null selector loaded into DS/ES/FS/GS: usable only until dereferenced. */
export function setSegNull(cpu: Cpu, seg: number, sel: number): void {
  cpu.sreg[seg] = sel;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = 0;
  cpu.segAttr[seg] = 0;
  updateSegChecks(cpu);
}

const work = new Descriptor();

/**
 * MOV/POP/LDS-style load of a data or stack segment register (not CS).
 * In real and v8086 mode the base is selector*16.
 */
export function loadSeg(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xffff;
  if (!cpu.protectedMode || cpu.vm86) {
    cpu.loadSegReal(seg, sel);
    return;
  }
  const d = work;
  const rpl = sel & 3;
  const cpl = cpu.cpl;
  if (seg === Seg.SS) {
    if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
    if (!readDescriptor(cpu, sel, d)) cpu.raiseGP(sel & 0xfffc);
    if (rpl !== cpl || d.dpl !== cpl) cpu.raiseGP(sel & 0xfffc);
    // writable data segment
    if ((d.hi & 0x1a00) !== 0x1200) cpu.raiseGP(sel & 0xfffc);
    if (!d.present) cpu.raiseErr(Vec.SS, sel & 0xfffc);
    setAccessed(cpu, d);
    setSegCache(cpu, seg, sel, d);
    return;
  }
  if ((sel & 0xfffc) === 0) {
    setSegNull(cpu, seg, sel);
    return;
  }
  if (!readDescriptor(cpu, sel, d)) cpu.raiseGP(sel & 0xfffc);
  // data, or readable code
  if (!d.isSegment || (d.hi & 0xa00) === 0x800) cpu.raiseGP(sel & 0xfffc);
  // data or non-conforming code: RPL and CPL must not exceed DPL
  if ((d.hi & 0xc00) !== 0xc00 && (rpl > d.dpl || cpl > d.dpl)) cpu.raiseGP(sel & 0xfffc);
  if (!d.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
  setAccessed(cpu, d);
  setSegCache(cpu, seg, sel, d);
}

const NULLABLE = [Seg.ES, Seg.DS, Seg.FS, Seg.GS];

/** After a privilege drop, data segments the new CPL may not use become null (SDM RET/IRET). */
export function nullInaccessibleSegs(cpu: Cpu): void {
  for (const seg of NULLABLE) {
    // a null FS/GS keeps its selector (as QEMU does; the SDM is silent)
    if (seg >= Seg.FS && (cpu.sreg[seg] & 0xfffc) === 0) continue;
    const a = cpu.segAttr[seg];
    const dpl = (a >> 5) & 3;
    const conformingCode = (a & (Attr.CODE | Attr.DC)) === (Attr.CODE | Attr.DC);
    if ((a & Attr.S) === 0 || (!conformingCode && dpl < cpu.cpl)) setSegNull(cpu, seg, 0);
  }
}
