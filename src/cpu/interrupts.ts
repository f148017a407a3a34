/**
 * Interrupt and exception delivery: the real-mode IVT and the protected-mode
 * IDT (interrupt, trap and task gates, with stack switches to an inner
 * privilege level and out of virtual-8086 mode). SDM vol. 3, 6.12-6.13, and
 * the INT n pseudo-code in vol. 2.
 */
import { checkNewStack, checkPushes } from './seglimit.js';
import type { Cpu } from './cpu.js';
import { F, Seg, Vec } from './consts.js';
import { Descriptor, readDescriptor, setAccessed, setSegCache, setSegNull } from './segments.js';
import { taskSwitch, TaskSource, readTssStack } from './tasks.js';

const gate = new Descriptor();
const code = new Descriptor();
const stack = new Descriptor();

/**
 * Deliver interrupt `vec`. `software` is true for INT n / INT3 / INTO (no EXT
 * bit, gate DPL checked against CPL). `retEip` is the EIP to return to.
 */
export function deliverInterrupt(cpu: Cpu, vec: number, hasErr: boolean, err: number, software: boolean, retEip: number): void {
  cpu.interruptCount++;
  if (!cpu.protectedMode) {
    deliverReal(cpu, vec, retEip);
    return;
  }
  deliverProtected(cpu, vec, hasErr, err, software, retEip);
}

function deliverReal(cpu: Cpu, vec: number, retEip: number): void {
  const entry = vec * 4;
  if (entry + 3 > cpu.idtLimit >>> 0) {
    // the IVT entry is beyond the IDT limit: #GP (in real mode this escalates to a shutdown)
    cpu.raiseGP(0);
  }
  const addr = (cpu.idtBase + entry) | 0;
  const ip = cpu.sysRead16(addr);
  const cs = cpu.sysRead16((addr + 2) | 0);
  const flags = cpu.getFlags();
  cpu.o32 = false;
  checkPushes(cpu, 3, 2);
  cpu.push16(flags);
  cpu.push16(cpu.sreg[Seg.CS]);
  cpu.push16(retEip);
  cpu.setFlagBits(F.IF | F.TF | F.AC | F.RF, 0);
  cpu.loadSegReal(Seg.CS, cs);
  cpu.eip = ip;
  cpu.halted = false;
}

function deliverProtected(cpu: Cpu, vec: number, hasErr: boolean, err: number, software: boolean, retEip: number): void {
  const ext = software ? 0 : 1;
  const idtErr = vec * 8 + 2 + ext;
  if (vec * 8 + 7 > cpu.idtLimit >>> 0) cpu.raiseGP(idtErr);
  const ga = (cpu.idtBase + vec * 8) | 0;
  gate.lo = cpu.sysRead32(ga);
  gate.hi = cpu.sysRead32((ga + 4) | 0);
  const type = (gate.hi >>> 8) & 0x1f;
  if (type !== 0x05 && type !== 0x06 && type !== 0x07 && type !== 0x0e && type !== 0x0f) cpu.raiseGP(idtErr);
  if (software && gate.dpl < cpu.cpl) cpu.raiseGP(vec * 8 + 2);
  if (!gate.present) cpu.raiseErr(Vec.NP, idtErr);

  if (type === 0x05) {
    // the error code goes on the new task's stack, sized by its TSS type (as QEMU does)
    const tss32 = taskSwitch(cpu, gate.lo >>> 16, TaskSource.INT, retEip, ext);
    if (hasErr) {
      if (tss32) cpu.push32(err);
      else cpu.push16(err);
    }
    cpu.halted = false;
    return;
  }

  const gate32 = (type & 8) !== 0;
  const sel = gate.lo >>> 16;
  // The SDM defines the offset of a 16-bit gate as its low word only (QEMU also uses the reserved high word).
  const offset = gate32 ? (gate.lo & 0xffff) | (gate.hi & 0xffff0000) : gate.lo & 0xffff;
  if ((sel & 0xfffc) === 0) cpu.raiseGP(ext);
  if (!readDescriptor(cpu, sel, code)) cpu.raiseGP((sel & 0xfffc) + ext);
  if (!code.isCode || code.dpl > cpu.cpl) cpu.raiseGP((sel & 0xfffc) + ext);
  if (!code.present) cpu.raiseErr(Vec.NP, (sel & 0xfffc) + ext);
  const conforming = (code.hi & 0x400) !== 0;
  const dpl = code.dpl;
  const oldFlags = cpu.getFlags();
  const wasVm86 = cpu.vm86;

  if (!conforming && dpl < cpu.cpl) {
    // inner privilege: switch to the stack from the TSS
    if (wasVm86 && dpl !== 0) cpu.raiseGP(sel & 0xfffc);
    readTssStack(cpu, dpl, ext);
    const newSs = cpu.tssSs;
    const newEsp = cpu.tssEsp;
    if ((newSs & 0xfffc) === 0) cpu.raiseErr(Vec.TS, ext);
    if (!readDescriptor(cpu, newSs, stack)) cpu.raiseErr(Vec.TS, (newSs & 0xfffc) + ext);
    if ((newSs & 3) !== dpl || stack.dpl !== dpl || (stack.hi & 0x1a00) !== 0x1200) {
      cpu.raiseErr(Vec.TS, (newSs & 0xfffc) + ext);
    }
    if (!stack.present) cpu.raiseErr(Vec.SS, (newSs & 0xfffc) + ext);
    const ssBase = stack.base;
    const ssMask = stack.hi & 0x400000 ? -1 : 0xffff;
    const oldSs = cpu.sreg[Seg.SS];
    const oldEsp = cpu.reg32[4];
    const oldCs = cpu.sreg[Seg.CS];
    // Build the frame on the new stack before changing any state.
    const size = gate32 ? 4 : 2;
    const words = (wasVm86 ? 9 : 5) + (hasErr ? 1 : 0);
    let sp = newEsp;
    const push = (v: number) => {
      sp = (sp - size) & ssMask;
      const lin = (ssBase + (sp & ssMask)) | 0;
      if (size === 4) cpu.sysWrite32(lin, v);
      else cpu.sysWrite16(lin, v);
    };
    // probe the whole frame first (a fault here leaves the CPU unchanged)
    checkNewStack(stack, newEsp, words, size, cpu, (newSs & 0xfffc) + ext);
    cpu.probeWriteSys((ssBase + ((newEsp - words * size) & ssMask)) | 0, words * size);
    if (wasVm86) {
      push(cpu.sreg[Seg.GS]);
      push(cpu.sreg[Seg.FS]);
      push(cpu.sreg[Seg.DS]);
      push(cpu.sreg[Seg.ES]);
    }
    push(oldSs);
    push(oldEsp);
    push(oldFlags);
    push(oldCs);
    push(retEip);
    if (hasErr) push(err);
    setAccessed(cpu, stack);
    setAccessed(cpu, code);
    if (wasVm86) {
      setSegNull(cpu, Seg.GS, 0);
      setSegNull(cpu, Seg.FS, 0);
      setSegNull(cpu, Seg.DS, 0);
      setSegNull(cpu, Seg.ES, 0);
    }
    cpu.setFlagBits(F.TF | F.RF | F.NT | F.VM | (type & 1 ? 0 : F.IF), 0);
    cpu.setCpl(dpl);
    setSegCache(cpu, Seg.SS, (newSs & 0xfffc) | dpl, stack);
    cpu.reg32[4] = ssMask === -1 ? sp : (cpu.reg32[4] & ~0xffff) | (sp & 0xffff);
  } else if (conforming || dpl === cpu.cpl) {
    if (wasVm86) cpu.raiseGP(sel & 0xfffc);
    const size = gate32 ? 4 : 2;
    const words = 3 + (hasErr ? 1 : 0);
    checkPushes(cpu, words, size);
    cpu.probeWriteSys((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - words * size) & cpu.ssMask)) | 0, words * size);
    if (gate32) {
      cpu.push32(oldFlags);
      cpu.push32(cpu.sreg[Seg.CS]);
      cpu.push32(retEip);
      if (hasErr) cpu.push32(err);
    } else {
      cpu.push16(oldFlags);
      cpu.push16(cpu.sreg[Seg.CS]);
      cpu.push16(retEip);
      if (hasErr) cpu.push16(err);
    }
    setAccessed(cpu, code);
    cpu.setFlagBits(F.TF | F.RF | F.NT | F.VM | (type & 1 ? 0 : F.IF), 0);
  } else {
    cpu.raiseGP((sel & 0xfffc) + ext);
  }
  setSegCache(cpu, Seg.CS, (sel & 0xfffc) | cpu.cpl, code);
  cpu.updateModes();
  if (offset >>> 0 > cpu.segLimit[Seg.CS] >>> 0) cpu.raiseGP(0);
  cpu.eip = offset;
  cpu.halted = false;
}
