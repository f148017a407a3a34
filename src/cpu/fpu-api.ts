/**
 * The contract between the CPU and the x87 FPU (fpu/): what the FPU may ask
 * of the CPU (FpuBus) and what the CPU calls (FpuUnit).
 */
export interface FpuBus {
  /** Linear-address accesses; they may throw the CPU's fault object (#PF/#GP). */
  read8(lin: number): number;
  read16(lin: number): number;
  read32(lin: number): number;
  write8(lin: number, v: number): void;
  write16(lin: number, v: number): void;
  write32(lin: number, v: number): void;
  /**
   * The memory operand (`len` bytes at the instruction's effective address)
   * is about to be read or written: raise its segment fault (limit, type)
   * now, so an image that crosses the limit (FNSAVE, FNSTENV, FSTP m80, ...)
   * faults before any part of it is written (SDM vol. 2: #GP(0)/#SS(0) for
   * "a memory operand effective address outside the segment limit").
   */
  operand(len: number, write: boolean): void;
  /** An unmasked exception is pending at a waiting instruction: #MF (CR0.NE) or IRQ 13. */
  reportError(): void;
  /** FCOMI/FUCOMI set ZF/PF/CF. */
  setEflagsZPC(zf: boolean, pf: boolean, cf: boolean): void;
  /** FCMOVcc reads EFLAGS. */
  getEflags(): number;
  /** FNSTSW AX. */
  setAx(v: number): void;
}

export interface FpuUnit {
  instrCs: number;
  instrIp: number;
  dataSeg: number;
  dataOff: number;
  /** An unmasked exception is pending (FSW.ES): the next waiting instruction reports it. */
  readonly errorPending: boolean;
  reset(): void;
  /** False for encodings a P6 rejects with #UD. */
  isValid(op: number, modrm: number): boolean;
  execute(op: number, modrm: number, ea: number, o32: boolean, realMode: boolean): void;
  fwait(): void;
  fxsave(ea: number): void;
  fxrstor(ea: number): void;
}
