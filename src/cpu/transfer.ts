/**
 * Far control transfers: JMP/CALL far, RET far, IRET, in real, v8086 and
 * protected mode (SDM vol. 2 pseudo-code of JMP, CALL, RET, IRET; vol. 3 5.8).
 */
import { checkNewStack, checkPushes, segCheck, SS_READ } from './seglimit.js';
import type { Cpu } from './cpu.js';
import { F, Seg, Vec } from './consts.js';
import { Descriptor, nullInaccessibleSegs, readDescriptor, setAccessed, setSegCache } from './segments.js';
import { readTssStack, taskSwitch, TaskSource } from './tasks.js';
import { vmeIret } from './vme.js';

const code = new Descriptor();
const ss = new Descriptor();

function realMode(cpu: Cpu): boolean {
  return !cpu.protectedMode || cpu.vm86;
}

/** Check and load a code segment for a same-privilege JMP/CALL or a return; returns false if `sel` is not a code segment. */
function checkCodeSeg(cpu: Cpu, sel: number, d: Descriptor): void {
  if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
  if (!readDescriptor(cpu, sel, d)) cpu.raiseGP(sel & 0xfffc);
}

/** Privilege and presence checks of a JMP/CALL straight to a code segment (SDM JMP/CALL, same privilege). */
function checkDirectCodeTarget(cpu: Cpu, sel: number): void {
  const conforming = (code.hi & 0x400) !== 0;
  if (conforming ? code.dpl > cpu.cpl : (sel & 3) > cpu.cpl || code.dpl !== cpu.cpl) cpu.raiseGP(sel & 0xfffc);
  if (!code.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
}

export function farJump(cpu: Cpu, sel: number, off: number): void {
  if (realMode(cpu)) {
    cpu.loadSegReal(Seg.CS, sel);
    cpu.eip = off;
    return;
  }
  checkCodeSeg(cpu, sel, code);
  if (code.isCode) {
    checkDirectCodeTarget(cpu, sel);
    if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
    setAccessed(cpu, code);
    setSegCache(cpu, Seg.CS, (sel & 0xfffc) | cpu.cpl, code);
    cpu.eip = off;
    return;
  }
  systemTransfer(cpu, sel, off, false);
}

export function farCall(cpu: Cpu, sel: number, off: number): void {
  const retEip = cpu.eip;
  const retCs = cpu.sreg[Seg.CS];
  if (realMode(cpu)) {
    if (cpu.o32) {
      cpu.push32(retCs);
      cpu.push32(retEip);
    } else {
      cpu.push16(retCs);
      cpu.push16(retEip);
    }
    cpu.loadSegReal(Seg.CS, sel);
    cpu.eip = off;
    return;
  }
  checkCodeSeg(cpu, sel, code);
  if (code.isCode) {
    checkDirectCodeTarget(cpu, sel);
    const size = cpu.o32 ? 8 : 4;
    checkPushes(cpu, 2, size >> 1);
    cpu.probeWrite((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - size) & cpu.ssMask)) | 0, size);
    if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
    if (cpu.o32) {
      cpu.push32(retCs);
      cpu.push32(retEip);
    } else {
      cpu.push16(retCs);
      cpu.push16(retEip);
    }
    setAccessed(cpu, code);
    setSegCache(cpu, Seg.CS, (sel & 0xfffc) | cpu.cpl, code);
    cpu.eip = off;
    return;
  }
  systemTransfer(cpu, sel, off, true);
}

/** JMP/CALL through a call gate, task gate or TSS descriptor (`code` holds its descriptor). */
function systemTransfer(cpu: Cpu, sel: number, off: number, isCall: boolean): void {
  void off; // the gate or the TSS supplies the offset
  const type = code.type;
  const err = sel & 0xfffc;
  if (type === 0x1 || type === 0x9 || type === 0x5 || type === 0x4 || type === 0xc) {
    if (code.dpl < cpu.cpl || code.dpl < (sel & 3)) cpu.raiseGP(err);
    if (!code.present) cpu.raiseErr(Vec.NP, err);
  } else {
    cpu.raiseGP(err);
  }
  if (type === 0x4 || type === 0xc) {
    callGate(cpu, isCall);
    return;
  }
  // TSS descriptor or task gate (the TSS selector of a gate is checked by taskSwitch)
  const tssSel = type === 0x5 ? code.lo >>> 16 : sel;
  taskSwitch(cpu, tssSel, isCall ? TaskSource.CALL : TaskSource.JMP, cpu.eip, 0);
}

const target = new Descriptor();
const params = new Int32Array(32);

/**
 * The rest of a JMP/CALL through the call gate in `code` (SDM CALL and JMP
 * pseudo-code, vol. 3 5.8.4-5.8.5): a CALL to a more privileged non-conforming
 * segment switches to the stack for the new CPL from the TSS and copies the
 * gate's parameter count of words/dwords from the caller's stack. The gate's
 * size (286 or 386 gate), not the operand size, decides what is pushed.
 */
function callGate(cpu: Cpu, isCall: boolean): void {
  const gate32 = code.type === 0xc;
  const csSel = code.lo >>> 16;
  const offset = gate32 ? (code.lo & 0xffff) | (code.hi & 0xffff0000) : code.lo & 0xffff;
  const count = code.hi & 0x1f;
  const cpl = cpu.cpl;
  const t = target;
  if ((csSel & 0xfffc) === 0) cpu.raiseGP(0);
  if (!readDescriptor(cpu, csSel, t)) cpu.raiseGP(csSel & 0xfffc);
  if (!t.isCode || t.dpl > cpl) cpu.raiseGP(csSel & 0xfffc);
  const conforming = (t.hi & 0x400) !== 0;
  // a JMP never changes privilege: non-conforming targets need DPL = CPL
  if (!isCall && !conforming && t.dpl !== cpl) cpu.raiseGP(csSel & 0xfffc);
  if (!t.present) cpu.raiseErr(Vec.NP, csSel & 0xfffc);
  if (!isCall) {
    if (offset >>> 0 > t.limit >>> 0) cpu.raiseGP(0);
    setAccessed(cpu, t);
    setSegCache(cpu, Seg.CS, (csSel & 0xfffc) | cpl, t);
    cpu.eip = offset;
    return;
  }
  const size = gate32 ? 4 : 2;
  const retEip = cpu.eip;
  const retCs = cpu.sreg[Seg.CS];
  if (conforming || t.dpl === cpl) {
    // same privilege
    checkPushes(cpu, 2, size);
    cpu.probeWrite((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - 2 * size) & cpu.ssMask)) | 0, 2 * size);
    if (offset >>> 0 > t.limit >>> 0) cpu.raiseGP(0);
    if (gate32) {
      cpu.push32(retCs);
      cpu.push32(retEip);
    } else {
      cpu.push16(retCs);
      cpu.push16(retEip);
    }
    setAccessed(cpu, t);
    setSegCache(cpu, Seg.CS, (csSel & 0xfffc) | cpl, t);
    cpu.eip = offset;
    return;
  }
  // more privilege: the new stack comes from the TSS
  const dpl = t.dpl;
  readTssStack(cpu, dpl, 0);
  const newSs = cpu.tssSs;
  const newEsp = cpu.tssEsp;
  if ((newSs & 0xfffc) === 0) cpu.raiseErr(Vec.TS, 0);
  if (!readDescriptor(cpu, newSs, ss)) cpu.raiseErr(Vec.TS, newSs & 0xfffc);
  if ((newSs & 3) !== dpl || ss.dpl !== dpl || (ss.hi & 0x1a00) !== 0x1200) cpu.raiseErr(Vec.TS, newSs & 0xfffc);
  if (!ss.present) cpu.raiseErr(Vec.SS, newSs & 0xfffc);
  const ssBase = ss.base;
  const ssMask = (ss.hi & 0x400000) !== 0 ? -1 : 0xffff;
  const frame = (4 + count) * size;
  checkNewStack(ss, newEsp, 4 + count, size, cpu, newSs & 0xfffc);
  cpu.probeWriteSys((ssBase + ((newEsp - frame) & ssMask)) | 0, frame);
  if (offset >>> 0 > t.limit >>> 0) cpu.raiseGP(0);
  // parameters, read from the caller's stack with the caller's privilege
  const oldSs = cpu.sreg[Seg.SS];
  const oldEsp = cpu.reg32[4];
  const oldBase = cpu.segBase[Seg.SS];
  const oldMask = cpu.ssMask;
  for (let i = 0; i < count; i++) {
    const lin = (oldBase + ((oldEsp + i * size) & oldMask)) | 0;
    if ((cpu.segSlow & SS_READ) !== 0) segCheck(cpu, Seg.SS, (oldEsp + i * size) & oldMask, size, false);
    params[i] = gate32 ? cpu.rd32(lin) : cpu.rd16(lin);
  }
  let sp = newEsp;
  const push = (v: number): void => {
    sp = (sp - size) & ssMask;
    const lin = (ssBase + sp) | 0;
    if (gate32) cpu.sysWrite32(lin, v);
    else cpu.sysWrite16(lin, v);
  };
  push(oldSs);
  push(oldEsp);
  for (let i = count - 1; i >= 0; i--) push(params[i]!);
  push(retCs);
  push(retEip);
  setAccessed(cpu, ss);
  setAccessed(cpu, t);
  cpu.setCpl(dpl);
  setSegCache(cpu, Seg.SS, (newSs & 0xfffc) | dpl, ss);
  cpu.reg32[4] = ssMask === -1 ? sp : (newEsp & ~0xffff) | sp;
  setSegCache(cpu, Seg.CS, (csSel & 0xfffc) | dpl, t);
  cpu.eip = offset;
}

/** RET far with `imm` bytes of parameters to release. */
export function farReturn(cpu: Cpu, imm: number): void {
  const o32 = cpu.o32;
  const size = o32 ? 4 : 2;
  if (realMode(cpu)) {
    const ip = o32 ? cpu.peek32(0) : cpu.peek16(0);
    const cs = o32 ? cpu.peek32(4) & 0xffff : cpu.peek16(2);
    if (!o32 && ip > 0xffff) cpu.raiseGP(0);
    cpu.adjustSp(2 * size + imm);
    cpu.loadSegReal(Seg.CS, cs);
    cpu.eip = ip;
    return;
  }
  const off = o32 ? cpu.peek32(0) : cpu.peek16(0);
  const sel = (o32 ? cpu.peek32(4) : cpu.peek16(2)) & 0xffff;
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
  if (!readDescriptor(cpu, sel, code)) cpu.raiseGP(sel & 0xfffc);
  if (!code.isCode || rpl < cpu.cpl) cpu.raiseGP(sel & 0xfffc);
  const conforming = (code.hi & 0x400) !== 0;
  if (conforming ? code.dpl > rpl : code.dpl !== rpl) cpu.raiseGP(sel & 0xfffc);
  if (!code.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
  if (rpl === cpu.cpl) {
    if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
    cpu.adjustSp(2 * size + imm);
    setAccessed(cpu, code);
    setSegCache(cpu, Seg.CS, sel, code);
    cpu.eip = off;
    return;
  }
  // return to an outer privilege level: pop SS:ESP too
  const newEsp = o32 ? cpu.peek32(8 + imm) : cpu.peek16(4 + imm);
  const newSs = (o32 ? cpu.peek32(12 + imm) : cpu.peek16(6 + imm)) & 0xffff;
  loadOuterStack(cpu, newSs, rpl);
  if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
  setAccessed(cpu, code);
  cpu.setCpl(rpl);
  setSegCache(cpu, Seg.CS, sel, code);
  setAccessed(cpu, ss);
  setSegCache(cpu, Seg.SS, newSs, ss);
  cpu.reg32[4] = cpu.stack32 ? (newEsp + imm) | 0 : (cpu.reg32[4] & ~0xffff) | ((newEsp + imm) & 0xffff);
  cpu.eip = off;
  nullInaccessibleSegs(cpu);
}

/** Validate the SS a return to privilege `rpl` loads (into the `ss` work descriptor). */
function loadOuterStack(cpu: Cpu, sel: number, rpl: number): void {
  if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
  if (!readDescriptor(cpu, sel, ss)) cpu.raiseGP(sel & 0xfffc);
  if ((sel & 3) !== rpl || ss.dpl !== rpl || (ss.hi & 0x1a00) !== 0x1200) cpu.raiseGP(sel & 0xfffc);
  if (!ss.present) cpu.raiseErr(Vec.SS, sel & 0xfffc);
}

/** IRET / IRETD. */
export function iret(cpu: Cpu): void {
  const o32 = cpu.o32;
  if (!cpu.protectedMode) {
    const ip = o32 ? cpu.peek32(0) : cpu.peek16(0);
    const cs = o32 ? cpu.peek32(4) & 0xffff : cpu.peek16(2);
    const fl = o32 ? cpu.peek32(8) : cpu.peek16(4);
    cpu.adjustSp(o32 ? 12 : 6);
    cpu.loadSegReal(Seg.CS, cs);
    cpu.eip = ip;
    const mask = F.ARITH | F.TF | F.IF | F.DF | F.IOPL | F.NT | (o32 ? F.AC | F.ID | F.RF : 0);
    cpu.setFlags(fl, mask);
    return;
  }
  if (cpu.vm86) {
    if ((cpu.flags & F.IOPL) !== F.IOPL) return vmeIret(cpu);
    const ip = o32 ? cpu.peek32(0) : cpu.peek16(0);
    const cs = o32 ? cpu.peek32(4) & 0xffff : cpu.peek16(2);
    const fl = o32 ? cpu.peek32(8) : cpu.peek16(4);
    cpu.adjustSp(o32 ? 12 : 6);
    cpu.loadSegReal(Seg.CS, cs);
    cpu.eip = o32 ? ip : ip & 0xffff;
    // IOPL and VM cannot change from v8086 mode
    cpu.setFlags(fl, F.ARITH | F.TF | F.IF | F.DF | F.NT | (o32 ? F.AC | F.ID | F.RF : 0));
    return;
  }
  if (cpu.flags & F.NT) {
    // return from a nested task: the back link is the first word of the TSS
    const link = cpu.sysRead16(cpu.segBase[Seg.TR]);
    taskSwitch(cpu, link, TaskSource.IRET, cpu.eip, 0);
    return;
  }
  const off = o32 ? cpu.peek32(0) : cpu.peek16(0);
  const sel = (o32 ? cpu.peek32(4) : cpu.peek16(2)) & 0xffff;
  const fl = o32 ? cpu.peek32(8) : cpu.peek16(4);
  if (o32 && (fl & F.VM) !== 0 && cpu.cpl === 0) {
    iretToV86(cpu, off, sel, fl);
    return;
  }
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) cpu.raiseGP(0);
  if (!readDescriptor(cpu, sel, code)) cpu.raiseGP(sel & 0xfffc);
  if (!code.isCode || rpl < cpu.cpl) cpu.raiseGP(sel & 0xfffc);
  const conforming = (code.hi & 0x400) !== 0;
  if (conforming ? code.dpl > rpl : code.dpl !== rpl) cpu.raiseGP(sel & 0xfffc);
  if (!code.present) cpu.raiseErr(Vec.NP, sel & 0xfffc);
  const size = o32 ? 4 : 2;
  const oldCpl = cpu.cpl;
  // which flags the new EFLAGS may change, decided by the CPL *before* the return
  const iopl = (cpu.flags >> 12) & 3;
  let mask = F.ARITH | F.TF | F.DF | F.NT | (o32 ? F.AC | F.ID | F.RF : 0);
  if (oldCpl === 0) mask |= F.IOPL | (o32 ? F.VIF | F.VIP : 0); // SDM IRET: CPL 0 loads VIF/VIP too
  if (oldCpl <= iopl) mask |= F.IF;
  if (rpl === oldCpl) {
    if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
    cpu.adjustSp(3 * size);
    setAccessed(cpu, code);
    setSegCache(cpu, Seg.CS, sel, code);
    cpu.eip = off;
    cpu.setFlags(fl, mask);
    return;
  }
  const newEsp = o32 ? cpu.peek32(12) : cpu.peek16(6);
  const newSs = (o32 ? cpu.peek32(16) : cpu.peek16(8)) & 0xffff;
  loadOuterStack(cpu, newSs, rpl);
  if (off >>> 0 > code.limit >>> 0) cpu.raiseGP(0);
  setAccessed(cpu, code);
  cpu.setFlags(fl, mask);
  cpu.setCpl(rpl);
  setSegCache(cpu, Seg.CS, sel, code);
  setAccessed(cpu, ss);
  setSegCache(cpu, Seg.SS, newSs, ss);
  cpu.reg32[4] = cpu.stack32 ? newEsp : (cpu.reg32[4] & ~0xffff) | (newEsp & 0xffff);
  cpu.eip = off;
  nullInaccessibleSegs(cpu);
}

/** IRETD from CPL 0 with VM set in the popped EFLAGS: enter virtual-8086 mode (SDM IRET, RETURN-TO-VIRTUAL-8086-MODE). */
function iretToV86(cpu: Cpu, off: number, sel: number, fl: number): void {
  const esp = cpu.peek32(12);
  const ssSel = cpu.peek32(16) & 0xffff;
  const es = cpu.peek32(20) & 0xffff;
  const ds = cpu.peek32(24) & 0xffff;
  const fs = cpu.peek32(28) & 0xffff;
  const gs = cpu.peek32(32) & 0xffff;
  cpu.setFlags(fl, 0x3f7fd5);
  cpu.setCpl(3);
  cpu.loadSegReal(Seg.CS, sel);
  cpu.loadSegReal(Seg.SS, ssSel);
  cpu.loadSegReal(Seg.ES, es);
  cpu.loadSegReal(Seg.DS, ds);
  cpu.loadSegReal(Seg.FS, fs);
  cpu.loadSegReal(Seg.GS, gs);
  cpu.updateModes();
  cpu.reg32[4] = esp;
  cpu.eip = off & 0xffff;
}
