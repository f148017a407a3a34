/**
 * Arithmetic and logic opcodes: 00-3F ALU rows, 80-83, INC/DEC, F6/F7,
 * TEST, IMUL forms, shifts, SHLD/SHRD, BCD adjusts, CBW/CWD.
 */
import { Lazy, type Cpu } from '../cpu.js';
import { F, Vec } from '../consts.js';
import { alu, Alu, mulDiv, mulS32, shift, shiftDouble, wide } from './arith.js';
import { op, op0f } from './table.js';

// ---- 00-3F: the eight ALU operations in six forms each ------------------
for (let k = 0; k < 8; k++) {
  const base = k << 3;
  const store = k !== Alu.CMP;
  // r/m8, r8
  op(base, (cpu) => {
    cpu.decodeModrm();
    const a = cpu.readRm8();
    if (store) cpu.rmwCheck(1);
    const r = alu(cpu, k, a, cpu.reg8[cpu.regIdx8()], 7);
    if (store) cpu.writeRm8(r);
  });
  // r/m16/32, r16/32
  op(
    base + 1,
    (cpu) => {
      cpu.decodeModrm();
      const a = cpu.readRm16();
      if (store) cpu.rmwCheck(2);
      const r = alu(cpu, k, a, cpu.reg16[((cpu.modrm >> 3) & 7) << 1], 15);
      if (store) cpu.writeRm16(r);
    },
    (cpu) => {
      cpu.decodeModrm();
      const a = cpu.readRm32();
      if (store) cpu.rmwCheck(4);
      const r = alu(cpu, k, a, cpu.reg32[(cpu.modrm >> 3) & 7], 31);
      if (store) cpu.writeRm32(r);
    },
  );
  // r8, r/m8
  op(base + 2, (cpu) => {
    cpu.decodeModrm();
    const i = cpu.regIdx8();
    const r = alu(cpu, k, cpu.reg8[i], cpu.readRm8(), 7);
    if (store) cpu.reg8[i] = r;
  });
  op(
    base + 3,
    (cpu) => {
      cpu.decodeModrm();
      const i = ((cpu.modrm >> 3) & 7) << 1;
      const r = alu(cpu, k, cpu.reg16[i], cpu.readRm16(), 15);
      if (store) cpu.reg16[i] = r;
    },
    (cpu) => {
      cpu.decodeModrm();
      const i = (cpu.modrm >> 3) & 7;
      const r = alu(cpu, k, cpu.reg32[i], cpu.readRm32(), 31);
      if (store) cpu.reg32[i] = r;
    },
  );
  // AL, imm8
  op(base + 4, (cpu) => {
    const r = alu(cpu, k, cpu.reg8[0], cpu.fetch8(), 7);
    if (store) cpu.reg8[0] = r;
  });
  op(
    base + 5,
    (cpu) => {
      const r = alu(cpu, k, cpu.reg16[0], cpu.fetch16(), 15);
      if (store) cpu.reg16[0] = r;
    },
    (cpu) => {
      const r = alu(cpu, k, cpu.reg32[0], cpu.fetch32(), 31);
      if (store) cpu.reg32[0] = r;
    },
  );
}

// ---- 80-83: ALU r/m, imm ---------------------------------------------------
function grp1_8(cpu: Cpu): void {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  const a = cpu.readRm8();
  if (k !== Alu.CMP) cpu.rmwCheck(1);
  const r = alu(cpu, k, a, cpu.fetch8(), 7);
  if (k !== Alu.CMP) cpu.writeRm8(r);
}
op(0x80, grp1_8);
op(0x82, grp1_8);
op(
  0x81,
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const a = cpu.readRm16();
    if (k !== Alu.CMP) cpu.rmwCheck(2);
    const r = alu(cpu, k, a, cpu.fetch16(), 15);
    if (k !== Alu.CMP) cpu.writeRm16(r);
  },
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const a = cpu.readRm32();
    if (k !== Alu.CMP) cpu.rmwCheck(4);
    const r = alu(cpu, k, a, cpu.fetch32(), 31);
    if (k !== Alu.CMP) cpu.writeRm32(r);
  },
);
op(
  0x83,
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const a = cpu.readRm16();
    if (k !== Alu.CMP) cpu.rmwCheck(2);
    const r = alu(cpu, k, a, ((cpu.fetch8() << 24) >> 24) & 0xffff, 15);
    if (k !== Alu.CMP) cpu.writeRm16(r);
  },
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const a = cpu.readRm32();
    if (k !== Alu.CMP) cpu.rmwCheck(4);
    const r = alu(cpu, k, a, (cpu.fetch8() << 24) >> 24, 31);
    if (k !== Alu.CMP) cpu.writeRm32(r);
  },
);

// ---- INC / DEC r16/r32 (40-4F) --------------------------------------------
for (let reg = 0; reg < 8; reg++) {
  op(
    0x40 + reg,
    (cpu) => {
      const a = cpu.reg16[reg << 1];
      const r = a + 1;
      cpu.reg16[reg << 1] = r;
      cpu.setLazyKeepCF(Lazy.ADD, a, 1, r, 15);
    },
    (cpu) => {
      const a = cpu.reg32[reg];
      const r = (a + 1) | 0;
      cpu.reg32[reg] = r;
      cpu.setLazyKeepCF(Lazy.ADD, a, 1, r, 31);
    },
  );
  op(
    0x48 + reg,
    (cpu) => {
      const a = cpu.reg16[reg << 1];
      const r = a - 1;
      cpu.reg16[reg << 1] = r;
      cpu.setLazyKeepCF(Lazy.SUB, a, 1, r, 15);
    },
    (cpu) => {
      const a = cpu.reg32[reg];
      const r = (a - 1) | 0;
      cpu.reg32[reg] = r;
      cpu.setLazyKeepCF(Lazy.SUB, a, 1, r, 31);
    },
  );
}

// ---- TEST ------------------------------------------------------------------
op(0x84, (cpu) => {
  cpu.decodeModrm();
  cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.readRm8() & cpu.reg8[cpu.regIdx8()], 7);
});
op(
  0x85,
  (cpu) => {
    cpu.decodeModrm();
    cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.readRm16() & cpu.reg16[((cpu.modrm >> 3) & 7) << 1], 15);
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.readRm32() & cpu.reg32[(cpu.modrm >> 3) & 7], 31);
  },
);
op(0xa8, (cpu) => cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.reg8[0] & cpu.fetch8(), 7));
op(
  0xa9,
  (cpu) => cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.reg16[0] & cpu.fetch16(), 15),
  (cpu) => cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.reg32[0] & cpu.fetch32(), 31),
);

// ---- F6/F7: TEST/NOT/NEG/MUL/IMUL/DIV/IDIV ---------------------------------
op(0xf6, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  const v = cpu.readRm8();
  switch (k) {
    case 0:
    case 1:
      cpu.setLazy(Lazy.LOGIC, 0, 0, v & cpu.fetch8(), 7);
      return;
    case 2:
      cpu.writeRm8(~v);
      return;
    case 3: {
      const r = -v | 0;
      cpu.writeRm8(r);
      cpu.setLazy(Lazy.SUB, 0, v, r, 7);
      return;
    }
    default:
      mulDiv(cpu, k, v, 8);
  }
});
op(
  0xf7,
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const v = cpu.readRm16();
    switch (k) {
      case 0:
      case 1:
        cpu.setLazy(Lazy.LOGIC, 0, 0, v & cpu.fetch16(), 15);
        return;
      case 2:
        cpu.writeRm16(~v);
        return;
      case 3: {
        const r = -v | 0;
        cpu.writeRm16(r);
        cpu.setLazy(Lazy.SUB, 0, v, r, 15);
        return;
      }
      default:
        mulDiv(cpu, k, v, 16);
    }
  },
  (cpu) => {
    cpu.decodeModrm();
    const k = (cpu.modrm >> 3) & 7;
    const v = cpu.readRm32();
    switch (k) {
      case 0:
      case 1:
        cpu.setLazy(Lazy.LOGIC, 0, 0, v & cpu.fetch32(), 31);
        return;
      case 2:
        cpu.writeRm32(~v);
        return;
      case 3: {
        const r = -v | 0;
        cpu.writeRm32(r);
        cpu.setLazy(Lazy.SUB, 0, v, r, 31);
        return;
      }
      default:
        mulDiv(cpu, k, v, 32);
    }
  },
);

// ---- FE / FF /0 /1: INC/DEC r/m (FF /2../7 live in control.ts) ------------
op(0xfe, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  if (k > 1) cpu.raiseUD();
  const a = cpu.readRm8();
  const r = k === 0 ? a + 1 : a - 1;
  cpu.writeRm8(r);
  cpu.setLazyKeepCF(k === 0 ? Lazy.ADD : Lazy.SUB, a, 1, r, 7);
});

/** FF /0 and /1 (called from the FF dispatcher). */
export function incDecRm(cpu: Cpu, dec: boolean): void {
  if (cpu.o32) {
    const a = cpu.readRm32();
    const r = (dec ? a - 1 : a + 1) | 0;
    cpu.writeRm32(r);
    cpu.setLazyKeepCF(dec ? Lazy.SUB : Lazy.ADD, a, 1, r, 31);
  } else {
    const a = cpu.readRm16();
    const r = dec ? a - 1 : a + 1;
    cpu.writeRm16(r);
    cpu.setLazyKeepCF(dec ? Lazy.SUB : Lazy.ADD, a, 1, r, 15);
  }
}

// ---- IMUL r, r/m, imm and IMUL r, r/m ---------------------------------------
function imul16(cpu: Cpu, a: number, b: number): number {
  const p = ((a << 16) >> 16) * ((b << 16) >> 16);
  const c = p !== (p << 16) >> 16 ? 1 : 0;
  cpu.setResultFlags(p & 0xffff, 15, c, c, 0);
  return p;
}
function imul32(cpu: Cpu, a: number, b: number): number {
  mulS32(a, b);
  const c = wide.hi !== wide.lo >> 31 ? 1 : 0;
  cpu.setResultFlags(wide.lo, 31, c, c, 0);
  return wide.lo;
}
op(
  0x69,
  (cpu) => {
    cpu.decodeModrm();
    const a = cpu.readRm16();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = imul16(cpu, a, cpu.fetch16());
  },
  (cpu) => {
    cpu.decodeModrm();
    const a = cpu.readRm32();
    cpu.reg32[(cpu.modrm >> 3) & 7] = imul32(cpu, a, cpu.fetch32());
  },
);
op(
  0x6b,
  (cpu) => {
    cpu.decodeModrm();
    const a = cpu.readRm16();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = imul16(cpu, a, (cpu.fetch8() << 24) >> 24);
  },
  (cpu) => {
    cpu.decodeModrm();
    const a = cpu.readRm32();
    cpu.reg32[(cpu.modrm >> 3) & 7] = imul32(cpu, a, (cpu.fetch8() << 24) >> 24);
  },
);
op0f(
  0xaf,
  (cpu) => {
    cpu.decodeModrm();
    const i = ((cpu.modrm >> 3) & 7) << 1;
    cpu.reg16[i] = imul16(cpu, cpu.reg16[i], cpu.readRm16());
  },
  (cpu) => {
    cpu.decodeModrm();
    const i = (cpu.modrm >> 3) & 7;
    cpu.reg32[i] = imul32(cpu, cpu.reg32[i], cpu.readRm32());
  },
);

// ---- shifts and rotates ----------------------------------------------------
// count source: 0 = imm8, 1 = one, 2 = CL
function makeShift8(src: number) {
  return (cpu: Cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm8();
    cpu.rmwCheck(1); // a memory operand is written back even for a zero count (as QEMU does)
    const c = src === 0 ? cpu.fetch8() : src === 1 ? 1 : cpu.reg8[4];
    if ((c & 31) === 0) return;
    cpu.writeRm8(shift(cpu, (cpu.modrm >> 3) & 7, v, c, 8));
  };
}
function makeShift16(src: number) {
  return (cpu: Cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm16();
    cpu.rmwCheck(2); // a memory operand is written back even for a zero count (as QEMU does)
    const c = src === 0 ? cpu.fetch8() : src === 1 ? 1 : cpu.reg8[4];
    if ((c & 31) === 0) return;
    cpu.writeRm16(shift(cpu, (cpu.modrm >> 3) & 7, v, c, 16));
  };
}
function makeShift32(src: number) {
  return (cpu: Cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm32();
    cpu.rmwCheck(4); // a memory operand is written back even for a zero count (as QEMU does)
    const c = src === 0 ? cpu.fetch8() : src === 1 ? 1 : cpu.reg8[4];
    if ((c & 31) === 0) return;
    cpu.writeRm32(shift(cpu, (cpu.modrm >> 3) & 7, v, c, 32));
  };
}
op(0xc0, makeShift8(0));
op(0xc1, makeShift16(0), makeShift32(0));
op(0xd0, makeShift8(1));
op(0xd1, makeShift16(1), makeShift32(1));
op(0xd2, makeShift8(2));
op(0xd3, makeShift16(2), makeShift32(2));

function makeShiftDouble(left: boolean, imm: boolean) {
  return [
    (cpu: Cpu) => {
      cpu.decodeModrm();
      const v = cpu.readRm16();
      cpu.rmwCheck(2);
      const c = imm ? cpu.fetch8() : cpu.reg8[4];
      if ((c & 31) === 0) return;
      cpu.writeRm16(shiftDouble(cpu, left, v, cpu.reg16[((cpu.modrm >> 3) & 7) << 1], c, 16));
    },
    (cpu: Cpu) => {
      cpu.decodeModrm();
      const v = cpu.readRm32();
      cpu.rmwCheck(4);
      const c = imm ? cpu.fetch8() : cpu.reg8[4];
      if ((c & 31) === 0) return;
      cpu.writeRm32(shiftDouble(cpu, left, v, cpu.reg32[(cpu.modrm >> 3) & 7], c, 32));
    },
  ] as const;
}
op0f(0xa4, ...makeShiftDouble(true, true));
op0f(0xa5, ...makeShiftDouble(true, false));
op0f(0xac, ...makeShiftDouble(false, true));
op0f(0xad, ...makeShiftDouble(false, false));

// ---- BCD -------------------------------------------------------------------
op(0x27, (cpu) => {
  // DAA
  const old = cpu.reg8[0];
  const oldCf = cpu.getCF();
  let al = old;
  let cf = 0;
  let af = 0;
  if ((al & 0xf) > 9 || cpu.getAF()) {
    al = (al + 6) & 0xff;
    cf = oldCf | (old > 0xf9 ? 1 : 0);
    af = 1;
  }
  if (old > 0x99 || oldCf) {
    al = (al + 0x60) & 0xff;
    cf = 1;
  }
  cpu.reg8[0] = al;
  cpu.setResultFlags(al, 7, cf, 0, af);
});
op(0x2f, (cpu) => {
  // DAS
  const old = cpu.reg8[0];
  const oldCf = cpu.getCF();
  let al = old;
  let cf = 0;
  let af = 0;
  if ((al & 0xf) > 9 || cpu.getAF()) {
    al = (al - 6) & 0xff;
    cf = oldCf | (old < 6 ? 1 : 0);
    af = 1;
  }
  if (old > 0x99 || oldCf) {
    al = (al - 0x60) & 0xff;
    cf = 1;
  }
  cpu.reg8[0] = al;
  cpu.setResultFlags(al, 7, cf, 0, af);
});
op(0x37, (cpu) => {
  // AAA
  let f = 0;
  if ((cpu.reg8[0] & 0xf) > 9 || cpu.getAF()) {
    cpu.reg16[0] = (cpu.reg16[0] + 0x106) & 0xffff;
    f = F.AF | F.CF;
  }
  cpu.reg8[0] &= 0xf;
  cpu.setFlagBits(F.ARITH, f | (cpu.getFlags() & (F.ZF | F.SF | F.PF | F.OF)));
});
op(0x3f, (cpu) => {
  // AAS
  let f = 0;
  if ((cpu.reg8[0] & 0xf) > 9 || cpu.getAF()) {
    cpu.reg16[0] = (cpu.reg16[0] - 6) & 0xffff;
    cpu.reg8[1] = (cpu.reg8[1] - 1) & 0xff;
    f = F.AF | F.CF;
  }
  cpu.reg8[0] &= 0xf;
  cpu.setFlagBits(F.ARITH, f | (cpu.getFlags() & (F.ZF | F.SF | F.PF | F.OF)));
});
op(0xd4, (cpu) => {
  // AAM imm8
  const base = cpu.fetch8();
  if (base === 0) cpu.raise(Vec.DE);
  const al = cpu.reg8[0];
  cpu.reg8[1] = Math.floor(al / base);
  cpu.reg8[0] = al % base;
  cpu.setLazy(Lazy.LOGIC, 0, 0, cpu.reg8[0], 7);
});
op(0xd5, (cpu) => {
  // AAD imm8
  const base = cpu.fetch8();
  const al = (cpu.reg8[0] + cpu.reg8[1] * base) & 0xff;
  cpu.reg16[0] = al;
  cpu.setLazy(Lazy.LOGIC, 0, 0, al, 7);
});

// ---- CBW/CWDE, CWD/CDQ -----------------------------------------------------
op(
  0x98,
  (cpu) => {
    cpu.reg16[0] = (cpu.reg8[0] << 24) >> 24;
  },
  (cpu) => {
    cpu.reg32[0] = (cpu.reg16[0] << 16) >> 16;
  },
);
op(
  0x99,
  (cpu) => {
    cpu.reg16[4] = (cpu.reg16[0] << 16) >> 31;
  },
  (cpu) => {
    cpu.reg32[2] = cpu.reg32[0] >> 31;
  },
);

// ---- SALC (D6): AL = CF ? 0xFF : 0 (undocumented, present on every IA-32 CPU) ----
op(0xd6, (cpu) => {
  cpu.reg8[0] = cpu.getCF() ? 0xff : 0;
});
