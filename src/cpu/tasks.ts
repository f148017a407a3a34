/**
 * Task-state segments: the inner-privilege stacks an interrupt or call gate
 * switches to, hardware task switching and the I/O permission bitmap
 * (SDM vol. 3, chapter 7; vol. 1, 19.5).
 */
import { updateSegChecks } from './seglimit.js';
import type { Cpu } from './cpu.js';
import { CR0, F, Seg, Vec } from './consts.js';
import { Descriptor, readDescriptor, setAccessed, setSegCache } from './segments.js';
import { DR6, ioBreakpoint, scheduleDebugTrap, updateDebugActive } from './debug.js';

/** What started a task switch (it decides the busy bit, NT and the back link). */
export const enum TaskSource {
  JMP = 0,
  CALL = 1,
  INT = 2,
  IRET = 3,
}

/**
 * Read SS:ESP for privilege level `dpl` from the current TSS into cpu.tssSs / cpu.tssEsp.
 * Raises #TS(TR) if the TSS is too short to hold them.
 */
export function readTssStack(cpu: Cpu, dpl: number, ext: number): void {
  const type = cpu.segAttr[Seg.TR] & 0xf;
  const base = cpu.segBase[Seg.TR];
  const limit = cpu.segLimit[Seg.TR] >>> 0;
  if ((type & 8) !== 0) {
    const off = 4 + dpl * 8;
    if (off + 5 > limit) cpu.raiseErr(Vec.TS, (cpu.sreg[Seg.TR] & 0xfffc) + ext);
    cpu.tssEsp = cpu.sysRead32((base + off) | 0);
    cpu.tssSs = cpu.sysRead16((base + off + 4) | 0);
  } else {
    const off = 2 + dpl * 4;
    if (off + 3 > limit) cpu.raiseErr(Vec.TS, (cpu.sreg[Seg.TR] & 0xfffc) + ext);
    cpu.tssEsp = cpu.sysRead16((base + off) | 0);
    cpu.tssSs = cpu.sysRead16((base + off + 2) | 0);
  }
}

// Work storage for a task switch (never allocate on these paths).
const tss = new Descriptor();
const seg = new Descriptor();
const newRegs = new Int32Array(8);
/** Selectors of the new task in Seg order (ES CS SS DS FS GS), which is also the TSS order. */
const newSegs = new Uint16Array(6);

/** Set or clear the busy bit (type bit 1) of the TSS descriptor `sel` in the GDT. */
function setBusy(cpu: Cpu, sel: number, busy: boolean): void {
  const a = (cpu.gdtBase + (sel & 0xfff8) + 5) | 0;
  const v = cpu.sysRead8(a);
  cpu.sysWrite8(a, busy ? v | 2 : v & ~2);
}

/**
 * Switch to the task whose TSS selector is `sel` (task gates are resolved by
 * the caller, which also did the gate's privilege checks). `retEip` is the EIP
 * saved in the old task; `ext` is the EXT bit for error codes. Follows the
 * order of SDM vol. 3, 7.3: every check that can fail in the old task's
 * context comes first, then the old state is saved, then the new state is
 * loaded; faults after that point (segment checks, EIP limit) are delivered in
 * the new task (cpu.instrStart is moved to the new EIP for that).
 * Returns true when the new TSS is a 32-bit one (the size of an error code push).
 */
export function taskSwitch(cpu: Cpu, sel: number, source: TaskSource, retEip: number, ext: number): boolean {
  const d = tss;
  const err = (sel & 0xfffc) + ext;
  if (source === TaskSource.IRET) {
    // the back link must name a busy TSS in the GDT
    if ((sel & 4) !== 0 || !readDescriptor(cpu, sel, d)) cpu.raiseErr(Vec.TS, err);
    if (d.isSegment || (d.type & 7) !== 3) cpu.raiseErr(Vec.TS, err);
  } else {
    if ((sel & 4) !== 0 || !readDescriptor(cpu, sel, d)) cpu.raiseGP(err);
    if (d.isSegment || (d.type !== 1 && d.type !== 9)) cpu.raiseGP(err);
  }
  if (!d.present) cpu.raiseErr(Vec.NP, err);
  const new32 = (d.type & 8) !== 0;
  const base = d.base;
  const limit = d.limit;
  if (limit >>> 0 < (new32 ? 0x67 : 0x2b)) cpu.raiseErr(Vec.TS, err);

  // read the new task's state (a #PF here still belongs to the old task)
  let newCr3 = 0;
  let newEip: number;
  let newFlags: number;
  let newLdt: number;
  let trap = 0;
  if (new32) {
    newCr3 = cpu.sysRead32((base + 0x1c) | 0);
    newEip = cpu.sysRead32((base + 0x20) | 0);
    newFlags = cpu.sysRead32((base + 0x24) | 0);
    for (let i = 0; i < 8; i++) newRegs[i] = cpu.sysRead32((base + 0x28 + i * 4) | 0);
    for (let i = 0; i < 6; i++) newSegs[i] = cpu.sysRead16((base + 0x48 + i * 4) | 0);
    newLdt = cpu.sysRead16((base + 0x60) | 0);
    trap = cpu.sysRead16((base + 0x64) | 0) & 1;
  } else {
    newEip = cpu.sysRead16((base + 0x0e) | 0);
    newFlags = cpu.sysRead16((base + 0x10) | 0);
    for (let i = 0; i < 8; i++) newRegs[i] = cpu.sysRead16((base + 0x12 + i * 2) | 0);
    for (let i = 0; i < 4; i++) newSegs[i] = cpu.sysRead16((base + 0x22 + i * 2) | 0);
    newSegs[Seg.FS] = 0;
    newSegs[Seg.GS] = 0;
    newLdt = cpu.sysRead16((base + 0x2a) | 0);
  }

  // make sure every write below can be done (old TSS, new TSS link, busy bits)
  const oldBase = cpu.segBase[Seg.TR];
  const old32 = (cpu.segAttr[Seg.TR] & 8) !== 0;
  if (old32) cpu.probeWriteSys((oldBase + 0x20) | 0, 0x40);
  else cpu.probeWriteSys((oldBase + 0x0e) | 0, 0x1c);
  if (source === TaskSource.CALL || source === TaskSource.INT) cpu.probeWriteSys(base, 2);
  cpu.probeWriteSys((cpu.gdtBase + (cpu.sreg[Seg.TR] & 0xfff8) + 5) | 0, 1);
  cpu.probeWriteSys((d.addr + 5) | 0, 1);

  // ---- commit: save the old task ----
  const oldTr = cpu.sreg[Seg.TR];
  if (source === TaskSource.JMP || source === TaskSource.IRET) setBusy(cpu, oldTr, false);
  let oldFlags = cpu.getFlags();
  if (source === TaskSource.IRET) oldFlags &= ~F.NT;
  const r = cpu.reg32;
  if (old32) {
    cpu.sysWrite32((oldBase + 0x20) | 0, retEip);
    cpu.sysWrite32((oldBase + 0x24) | 0, oldFlags);
    for (let i = 0; i < 8; i++) cpu.sysWrite32((oldBase + 0x28 + i * 4) | 0, r[i]);
    for (let i = 0; i < 6; i++) cpu.sysWrite16((oldBase + 0x48 + i * 4) | 0, cpu.sreg[i]);
  } else {
    cpu.sysWrite16((oldBase + 0x0e) | 0, retEip);
    cpu.sysWrite16((oldBase + 0x10) | 0, oldFlags);
    for (let i = 0; i < 8; i++) cpu.sysWrite16((oldBase + 0x12 + i * 2) | 0, r[i]);
    for (let i = 0; i < 4; i++) cpu.sysWrite16((oldBase + 0x22 + i * 2) | 0, cpu.sreg[i]);
  }
  if (source === TaskSource.CALL || source === TaskSource.INT) {
    cpu.sysWrite16(base, oldTr);
    newFlags |= F.NT;
  }
  if (source !== TaskSource.IRET) setBusy(cpu, sel, true);

  // ---- load the new task ----
  cpu.cr0 |= CR0.TS;
  cpu.sreg[Seg.TR] = sel;
  cpu.segBase[Seg.TR] = base;
  cpu.segLimit[Seg.TR] = limit;
  cpu.segAttr[Seg.TR] = d.attr | 2; // busy
  if (new32 && (cpu.cr0 & CR0.PG) !== 0) {
    cpu.cr3 = newCr3 & ~0xfe7;
    cpu.flushTlb(false);
  }
  // from here on a fault is reported in the new task, at its first instruction
  cpu.eip = newEip;
  cpu.instrStart = newEip;
  if (new32) {
    cpu.setFlags(newFlags, 0x3f7fd5);
    for (let i = 0; i < 8; i++) r[i] = newRegs[i];
  } else {
    cpu.setFlags(newFlags, 0x7fd5);
    for (let i = 0; i < 8; i++) cpu.reg16[i << 1] = newRegs[i];
  }
  // local breakpoints belong to the old task (SDM 17.2.4)
  cpu.dr[7] &= ~0x55;
  updateDebugActive(cpu);
  if ((newFlags & F.VM) !== 0 && new32) {
    cpu.setCpl(3);
    for (let i = 0; i < 6; i++) cpu.loadSegReal(i, newSegs[i]);
  } else {
    // selectors first (a fault below shows them), descriptors with their checks next
    for (let i = 0; i < 6; i++) {
      cpu.sreg[i] = newSegs[i];
      cpu.segAttr[i] = 0;
    }
    cpu.setCpl(newSegs[Seg.CS] & 3);
  }
  cpu.updateModes();
  loadTaskLdt(cpu, newLdt, ext);
  if ((newFlags & F.VM) === 0 || !new32) {
    const cpl = newSegs[Seg.CS] & 3;
    loadTaskSeg(cpu, Seg.CS, newSegs[Seg.CS], cpl, ext);
    loadTaskSeg(cpu, Seg.SS, newSegs[Seg.SS], cpl, ext);
    loadTaskSeg(cpu, Seg.ES, newSegs[Seg.ES], cpl, ext);
    loadTaskSeg(cpu, Seg.DS, newSegs[Seg.DS], cpl, ext);
    loadTaskSeg(cpu, Seg.FS, newSegs[Seg.FS], cpl, ext);
    loadTaskSeg(cpu, Seg.GS, newSegs[Seg.GS], cpl, ext);
  }
  if (newEip >>> 0 > cpu.segLimit[Seg.CS] >>> 0) cpu.raiseGP(0);
  // the T bit: a debug trap before the new task's first instruction
  if (trap) scheduleDebugTrap(cpu, DR6.BT);
  return new32;
}

function loadTaskLdt(cpu: Cpu, sel: number, ext: number): void {
  cpu.sreg[Seg.LDTR] = sel & ~4;
  cpu.segBase[Seg.LDTR] = 0;
  cpu.segLimit[Seg.LDTR] = 0;
  cpu.segAttr[Seg.LDTR] = 0;
  if (sel & 4) cpu.raiseErr(Vec.TS, (sel & 0xfffc) + ext);
  if ((sel & 0xfffc) === 0) return;
  if (!readDescriptor(cpu, sel, seg)) cpu.raiseErr(Vec.TS, (sel & 0xfffc) + ext);
  if (seg.isSegment || seg.type !== 2) cpu.raiseErr(Vec.TS, (sel & 0xfffc) + ext);
  if (!seg.present) cpu.raiseErr(Vec.TS, (sel & 0xfffc) + ext);
  cpu.segBase[Seg.LDTR] = seg.base;
  cpu.segLimit[Seg.LDTR] = seg.limit;
  cpu.segAttr[Seg.LDTR] = seg.attr;
}

/** Load one segment register of the new task with the checks of SDM table 7-1. */
function loadTaskSeg(cpu: Cpu, s: number, sel: number, cpl: number, ext: number): void {
  const e = (sel & 0xfffc) + ext;
  if ((sel & 0xfffc) === 0) {
    if (s === Seg.CS || s === Seg.SS) cpu.raiseErr(Vec.TS, e);
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0;
    cpu.segAttr[s] = 0;
    updateSegChecks(cpu);
    return;
  }
  if (!readDescriptor(cpu, sel, seg) || !seg.isSegment) cpu.raiseErr(Vec.TS, e);
  const rpl = sel & 3;
  const dpl = seg.dpl;
  if (s === Seg.CS) {
    if (!seg.isCode) cpu.raiseErr(Vec.TS, e);
    const conforming = (seg.hi & 0x400) !== 0;
    if (conforming ? dpl > rpl : dpl !== rpl) cpu.raiseErr(Vec.TS, e);
  } else if (s === Seg.SS) {
    if ((seg.hi & 0xa00) !== 0x200) cpu.raiseErr(Vec.TS, e); // writable data
    if (dpl !== cpl || rpl !== cpl) cpu.raiseErr(Vec.TS, e);
  } else {
    if ((seg.hi & 0xa00) === 0x800) cpu.raiseErr(Vec.TS, e); // execute-only code
    // data and non-conforming code: DPL >= CPL and DPL >= RPL
    if ((seg.hi & 0xc00) !== 0xc00 && (dpl < cpl || dpl < rpl)) cpu.raiseErr(Vec.TS, e);
  }
  if (!seg.present) cpu.raiseErr(s === Seg.SS ? Vec.SS : Vec.NP, e);
  setAccessed(cpu, seg);
  setSegCache(cpu, s, sel, seg);
}

/**
 * I/O permission for IN/OUT/INS/OUTS (SDM vol. 1, 19.5): always allowed in
 * real mode and when CPL <= IOPL; otherwise (and always in v8086 mode) every
 * bit for the accessed ports in the TSS I/O bitmap must be clear, or #GP(0).
 */
export function checkIoPermission(cpu: Cpu, port: number, len: number): void {
  if (cpu.ioBpArmed) ioBreakpoint(cpu, port, len); // a trap after the instruction (debug.ts)
  if (!cpu.protectedMode) return;
  if (!cpu.vm86 && cpu.cpl <= ((cpu.flags >> 12) & 3)) return;
  const type = cpu.segAttr[Seg.TR] & 0xf;
  const limit = cpu.segLimit[Seg.TR] >>> 0;
  if ((type & 8) === 0 || limit < 0x67) cpu.raiseGP(0);
  const base = cpu.segBase[Seg.TR];
  const mapOff = cpu.sysRead16((base + 0x66) | 0) + (port >>> 3);
  if (mapOff + 1 > limit) cpu.raiseGP(0);
  const bits = cpu.sysRead16((base + mapOff) | 0);
  if ((bits >>> (port & 7)) & ((1 << len) - 1)) cpu.raiseGP(0);
}
