/**
 * Virtual-8086 mode extensions and protected-mode virtual interrupts
 * (SDM vol. 3, 20.3 "Interrupt and Exception Handling in Virtual-8086 Mode"
 * and 20.4 "Protected-Mode Virtual Interrupts"; the CLI, STI, PUSHF, POPF,
 * INT n and IRET pseudo-code in vol. 2).
 *
 * With CR4.VME=1, v8086 code running at IOPL < 3 gets a virtual interrupt
 * flag: CLI/STI change VIF instead of faulting, a 16-bit PUSHF shows VIF in
 * IF's place (and IOPL as 3), a 16-bit POPF/IRET load VIF from the popped IF
 * (IF and IOPL stay), and STI, POPF or IRET that would set VIF while VIP is
 * set raise #GP(0) so the monitor can deliver the pending interrupt. INT n
 * consults the interrupt redirection bitmap (the 32 bytes of the TSS below the
 * I/O map base): a clear bit sends it to the 8086 program's own vector table
 * at linear 0, a set bit to the IDT (IOPL = 3) or to #GP(0) (IOPL < 3).
 * With CR4.PVI=1, CLI/STI at CPL 3 with IOPL < 3 in protected mode change VIF.
 *
 * These are only reached when the ordinary IOPL check fails (or, for INT n
 * in v8086 mode, when VME is on), so none of this is on the hot path.
 */
import { checkPushes } from './seglimit.js';
import type { Cpu } from './cpu.js';
import { CR4, F, Seg } from './consts.js';

/** CLI (on=false) or STI (on=true) that IOPL forbids: VIF with VME (v8086) or PVI (CPL 3), else #GP(0). */
export function setVirtualIf(cpu: Cpu, on: boolean): void {
  const ok = cpu.vm86 ? (cpu.cr4 & CR4.VME) !== 0 : cpu.cpl === 3 && (cpu.cr4 & CR4.PVI) !== 0;
  if (!ok || (on && (cpu.flags & F.VIP) !== 0)) cpu.raiseGP(0);
  if (on) cpu.flags |= F.VIF;
  else cpu.flags &= ~F.VIF;
}

/** The FLAGS image v8086 code at IOPL < 3 sees with VME (PUSHF, redirected INT n): IOPL 3, VIF in IF's place. */
function virtualFlags16(cpu: Cpu): number {
  const f = cpu.getFlags();
  return (f & 0xffff & ~F.IF) | F.IOPL | ((f & F.VIF) !== 0 ? F.IF : 0);
}

/** PUSHF in v8086 mode at IOPL < 3: allowed with VME and a 16-bit operand, else #GP(0). */
export function vmePushf(cpu: Cpu): void {
  if (cpu.o32 || (cpu.cr4 & CR4.VME) === 0) cpu.raiseGP(0);
  cpu.push16(virtualFlags16(cpu));
}

/**
 * The FLAGS a 16-bit POPF or IRET pops in v8086 mode at IOPL < 3 with VME:
 * #GP(0) if it sets TF, or sets IF while VIP is set; otherwise the flags
 * except IF and IOPL are loaded and VIF takes the popped IF.
 */
function loadVirtualFlags16(cpu: Cpu, v: number): void {
  if ((v & F.TF) !== 0 || ((v & F.IF) !== 0 && (cpu.flags & F.VIP) !== 0)) cpu.raiseGP(0);
  cpu.setFlags(v | ((v & F.IF) !== 0 ? F.VIF : 0), F.ARITH | F.TF | F.DF | F.NT | F.VIF);
}

/** POPF in v8086 mode at IOPL < 3. */
export function vmePopf(cpu: Cpu): void {
  if (cpu.o32 || (cpu.cr4 & CR4.VME) === 0) cpu.raiseGP(0);
  const v = cpu.peek16(0);
  loadVirtualFlags16(cpu, v);
  cpu.adjustSp(2);
}

/** IRET in v8086 mode at IOPL < 3. */
export function vmeIret(cpu: Cpu): void {
  if (cpu.o32 || (cpu.cr4 & CR4.VME) === 0) cpu.raiseGP(0);
  const ip = cpu.peek16(0);
  const cs = cpu.peek16(2);
  const v = cpu.peek16(4);
  loadVirtualFlags16(cpu, v);
  cpu.adjustSp(6);
  cpu.loadSegReal(Seg.CS, cs);
  cpu.eip = ip;
}

/**
 * INT n in v8086 mode with CR4.VME=1 (SDM INT n, "virtual-8086 mode interrupt
 * with VME enabled"). Returns true when the interrupt was redirected to the
 * 8086 handler (IVT at linear 0); false when it goes to the IDT (bit set,
 * IOPL = 3). Raises #GP(0) for a set bit at IOPL < 3, or when the TSS cannot
 * hold the bitmap byte.
 */
export function vmeSoftInt(cpu: Cpu, vec: number): boolean {
  const base = cpu.segBase[Seg.TR];
  const limit = cpu.segLimit[Seg.TR] >>> 0;
  if (limit < 0x67) cpu.raiseGP(0);
  const off = cpu.sysRead16((base + 0x66) | 0) - 32 + (vec >>> 3);
  if (off < 0 || off > limit) cpu.raiseGP(0);
  const iopl3 = (cpu.flags & F.IOPL) === F.IOPL;
  if ((cpu.sysRead8((base + off) | 0) >>> (vec & 7)) & 1) {
    if (!iopl3) cpu.raiseGP(0);
    return false;
  }
  const img = iopl3 ? cpu.getFlags() & 0xffff : virtualFlags16(cpu);
  const ip = cpu.sysRead16(vec * 4);
  const cs = cpu.sysRead16(vec * 4 + 2);
  checkPushes(cpu, 3, 2);
  cpu.probeWrite((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - 6) & cpu.ssMask)) | 0, 6);
  cpu.push16(img);
  cpu.push16(cpu.sreg[Seg.CS]);
  cpu.push16(cpu.eip);
  cpu.setFlagBits(F.TF | F.RF | (iopl3 ? F.IF : F.VIF), 0);
  cpu.loadSegReal(Seg.CS, cs);
  cpu.eip = ip;
  cpu.interruptCount++;
  return true;
}
