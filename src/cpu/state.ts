/**
 * The CPU's architectural state as plain data, for snapshots and migration.
 * Saved: everything software can observe or that decides what happens next
 * (registers, descriptor caches, control/debug registers, MSRs, TSC, halt
 * and interrupt-shadow state). Not saved: the TLB and other caches, which are
 * rebuilt, and per-instruction decode scratch.
 */
import { SHADOW, type Cpu } from './cpu.js';
import { checkState, StateError } from '../state/state.js';
import { updateDebugActive } from './debug.js';

export interface CpuState {
  regs: Int32Array;
  eip: number;
  flags: number;
  sreg: Uint16Array;
  segBase: Int32Array;
  segLimit: Int32Array;
  segAttr: Int32Array;
  gdtBase: number;
  gdtLimit: number;
  idtBase: number;
  idtLimit: number;
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  dr: Int32Array;
  cpl: number;
  sysenterCs: number;
  sysenterEsp: number;
  sysenterEip: number;
  apicBase: number;
  tsc: number;
  halted: boolean;
  inhibitIrq: boolean;
  nmiPending: boolean;
  instructionsRun: number;
  debugTrap: number;
  /**
   * The MOV SS / POP SS shadow (Cpu.ssShadow): the next instruction still
   * holds back its debug traps and gets no instruction breakpoint, and the
   * data breakpoints the load hit wait in the low bits. A state saved between
   * the load and the next instruction must keep it. Missing in states saved
   * before it was added: no shadow.
   */
  ssShadow?: number;
}

export function saveCpuState(cpu: Cpu): CpuState {
  return {
    regs: cpu.reg32.slice(),
    eip: cpu.eip,
    flags: cpu.getFlags(),
    sreg: cpu.sreg.slice(),
    segBase: cpu.segBase.slice(),
    segLimit: cpu.segLimit.slice(),
    segAttr: cpu.segAttr.slice(),
    gdtBase: cpu.gdtBase,
    gdtLimit: cpu.gdtLimit,
    idtBase: cpu.idtBase,
    idtLimit: cpu.idtLimit,
    cr0: cpu.cr0,
    cr2: cpu.cr2,
    cr3: cpu.cr3,
    cr4: cpu.cr4,
    dr: cpu.dr.slice(),
    cpl: cpu.cpl,
    sysenterCs: cpu.sysenterCs,
    sysenterEsp: cpu.sysenterEsp,
    sysenterEip: cpu.sysenterEip,
    apicBase: cpu.apicBase,
    tsc: cpu.readTsc(),
    halted: cpu.halted,
    inhibitIrq: cpu.inhibitIrq,
    nmiPending: cpu.nmiPending,
    instructionsRun: cpu.instructionsRun,
    debugTrap: cpu.debugTrap,
    ssShadow: cpu.ssShadow,
  };
}

/**
 * Load state saved by saveCpuState; validates everything before changing the
 * CPU. Compiled code is kept: it depends on memory, not on registers (each
 * compiled unit checks the mode and segments it assumes when entered), so
 * the caller that replaces memory invalidates what it changed
 * (Machine.loadStateWithoutRam).
 */
/** Check a CPU state without changing anything (loadCpuState() does it first). Throws StateError. */
export function checkCpuState(cpu: Cpu, s: CpuState): void {
  const { ssShadow: _, ...template } = saveCpuState(cpu);
  checkState('cpu', template, s);
  if (s.cpl < 0 || s.cpl > 3) throw new StateError(`cpu: CPL ${s.cpl} is not 0..3`);
  const shadow = s.ssShadow ?? 0;
  if (typeof shadow !== 'number' || (shadow !== 0 && (shadow & ~0xf) !== SHADOW)) {
    throw new StateError(`cpu: field ssShadow must be 0 or ${SHADOW} plus DR6 bits 0-3, not ${String(shadow)}`);
  }
}

export function loadCpuState(cpu: Cpu, s: CpuState): void {
  checkCpuState(cpu, s);
  const shadow = s.ssShadow ?? 0;
  cpu.reg32.set(s.regs);
  cpu.eip = s.eip | 0;
  cpu.sreg.set(s.sreg);
  cpu.segBase.set(s.segBase);
  cpu.segLimit.set(s.segLimit);
  cpu.segAttr.set(s.segAttr);
  cpu.gdtBase = s.gdtBase | 0;
  cpu.gdtLimit = s.gdtLimit & 0xffff;
  cpu.idtBase = s.idtBase | 0;
  cpu.idtLimit = s.idtLimit & 0xffff;
  cpu.cr0 = s.cr0 | 0;
  cpu.cr2 = s.cr2 | 0;
  cpu.cr3 = s.cr3 | 0;
  cpu.cr4 = s.cr4 | 0;
  cpu.dr.set(s.dr);
  cpu.sysenterCs = s.sysenterCs | 0;
  cpu.sysenterEsp = s.sysenterEsp | 0;
  cpu.sysenterEip = s.sysenterEip | 0;
  cpu.apicBase = s.apicBase | 0;
  cpu.instructionsRun = s.instructionsRun;
  cpu.writeTsc(s.tsc);
  cpu.halted = s.halted;
  cpu.inhibitIrq = s.inhibitIrq;
  cpu.nmiPending = s.nmiPending;
  cpu.debugTrap = s.debugTrap | 0;
  cpu.ssShadow = shadow;
  cpu.setCpl(s.cpl);
  cpu.setFlags(s.flags, -1);
  cpu.updateModes();
  updateDebugActive(cpu);
  cpu.flushTlb(true);
}
