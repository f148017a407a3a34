/** Architectural constants (Intel SDM vol. 3) shared by the CPU files. */

/** Segment register numbers, in the order the ModRM `reg` field encodes them; 6 and 7 hold LDTR and TR. */
export const enum Seg {
  ES = 0,
  CS = 1,
  SS = 2,
  DS = 3,
  FS = 4,
  GS = 5,
  LDTR = 6,
  TR = 7,
}

/** EFLAGS bits. */
export const enum F {
  CF = 0x1,
  R1 = 0x2,
  PF = 0x4,
  AF = 0x10,
  ZF = 0x40,
  SF = 0x80,
  TF = 0x100,
  IF = 0x200,
  DF = 0x400,
  OF = 0x800,
  IOPL = 0x3000,
  NT = 0x4000,
  RF = 0x10000,
  VM = 0x20000,
  AC = 0x40000,
  VIF = 0x80000,
  VIP = 0x100000,
  ID = 0x200000,
  ARITH = 0x8d5,
}

/** CR0 bits. */
export const enum CR0 {
  PE = 1,
  MP = 2,
  EM = 4,
  TS = 8,
  ET = 0x10,
  NE = 0x20,
  WP = 0x10000,
  AM = 0x40000,
  NW = 0x20000000,
  CD = 0x40000000,
  PG = 0x80000000 | 0,
}

/** CR4 bits. */
export const enum CR4 {
  VME = 1,
  PVI = 2,
  TSD = 4,
  DE = 8,
  PSE = 0x10,
  PAE = 0x20,
  MCE = 0x40,
  PGE = 0x80,
  PCE = 0x100,
  OSFXSR = 0x200,
  OSXMMEXCPT = 0x400,
}

/** Exception vectors. */
export const enum Vec {
  DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OF = 4,
  BR = 5,
  UD = 6,
  NM = 7,
  DF = 8,
  TS = 10,
  NP = 11,
  SS = 12,
  GP = 13,
  PF = 14,
  MF = 16,
  AC = 17,
  MC = 18,
  XM = 19,
}

/** Flags kept in a software TLB entry's low 12 bits (the rest is hostPage ^ linearPage). */
export const enum Tlb {
  VALID = 1,
  NO_WRITE_SUPER = 2,
  NO_WRITE_USER = 4,
  NO_USER = 8,
  GLOBAL = 16,
  /**
   * Writes take the slow path: the host page holds compiled blocks, which
   * that path invalidates (src/jit), or it is clean since the last dirty-page
   * mark, and the first write marks it dirty (PhysicalMemory.dirtyPages).
   */
  CODE = 32,
}

/** Descriptor access-rights bits, as kept in segAttr: (descriptor high dword >>> 8) & 0xf0ff. */
export const enum Attr {
  ACCESSED = 0x1,
  RW = 0x2, // writable data / readable code
  DC = 0x4, // expand-down data / conforming code
  CODE = 0x8,
  S = 0x10, // code or data (not system)
  DPL = 0x60,
  P = 0x80,
  AVL = 0x1000,
  DB = 0x4000, // default operand size / big
  G = 0x8000,
}

/** IA32_APIC_BASE (MSR 0x1B) bits (SDM vol. 3A, 10.4.4). */
export const enum ApicBase {
  BSP = 0x100,
  ENABLE = 0x800,
  /** Bits 31:12: the page of the APIC registers. */
  ADDRESS = 0xfffff000,
  /** Bits 0-7, 9 and 10 (x2APIC, not implemented) are reserved: writing them raises #GP. */
  RESERVED = 0x6ff,
  /** The value at RESET for the bootstrap processor: 0xFEE00000, BSP, enabled. */
  RESET = 0xfee00900,
}
