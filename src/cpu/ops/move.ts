/**
 * Data movement: MOV in all its forms, XCHG, LEA, PUSH/POP (incl. segment
 * registers, PUSHA/POPA, PUSHF/POPF), far-pointer loads, MOVZX/MOVSX, XLAT,
 * LAHF/SAHF, CMOVcc, SETcc, BSWAP, XADD, CMPXCHG, CMPXCHG8B.
 */
import { checkPushes, eaCheck } from '../seglimit.js';
import type { Cpu } from '../cpu.js';
import { F, Seg } from '../consts.js';
import { loadSeg } from '../segments.js';
import { vmePopf, vmePushf } from '../vme.js';
import { alu, Alu } from './arith.js';
import { op, op0f } from './table.js';

// ---- MOV r/m <-> r -----------------------------------------------------------
op(0x88, (cpu) => {
  cpu.decodeModrm();
  cpu.writeRm8(cpu.reg8[cpu.regIdx8()]);
});
op(
  0x89,
  (cpu) => {
    cpu.decodeModrm();
    cpu.writeRm16(cpu.reg16[((cpu.modrm >> 3) & 7) << 1]);
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.writeRm32(cpu.reg32[(cpu.modrm >> 3) & 7]);
  },
);
op(0x8a, (cpu) => {
  cpu.decodeModrm();
  cpu.reg8[cpu.regIdx8()] = cpu.readRm8();
});
op(
  0x8b,
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = cpu.readRm16();
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg32[(cpu.modrm >> 3) & 7] = cpu.readRm32();
  },
);
// MOV r/m16, Sreg: a register destination gets the zero-extended selector with 32-bit operand size
op(
  0x8c,
  (cpu) => {
    cpu.decodeModrm();
    const s = (cpu.modrm >> 3) & 7;
    if (s > 5) cpu.raiseUD();
    cpu.writeRm16(cpu.sreg[s]);
  },
  (cpu) => {
    cpu.decodeModrm();
    const s = (cpu.modrm >> 3) & 7;
    if (s > 5) cpu.raiseUD();
    if (cpu.modrm >= 0xc0) cpu.reg32[cpu.modrm & 7] = cpu.sreg[s];
    else {
      if (cpu.segSlow !== 0) eaCheck(cpu, 0, 2, true);
      cpu.wr16(cpu.ea, cpu.sreg[s]);
    }
  },
);
op(0x8e, (cpu) => {
  cpu.decodeModrm();
  const s = (cpu.modrm >> 3) & 7;
  if (s === Seg.CS || s > 5) cpu.raiseUD();
  loadSeg(cpu, s, cpu.readRm16());
  if (s === Seg.SS) cpu.inhibitIrq = true;
});
op(0x8d, (cpu) => {
  cpu.decodeModrm();
  if (cpu.modrm >= 0xc0) cpu.raiseUD();
  const i = (cpu.modrm >> 3) & 7;
  if (cpu.o32) cpu.reg32[i] = cpu.eaOff;
  else cpu.reg16[i << 1] = cpu.eaOff;
});

// ---- MOV with moffs -----------------------------------------------------------
function moffs(cpu: Cpu, len: number, write: boolean): number {
  const off = cpu.a32 ? cpu.fetch32() : cpu.fetch16();
  return cpu.dataLin(off, len, write);
}
op(0xa0, (cpu) => {
  cpu.reg8[0] = cpu.rd8(moffs(cpu, 1, false));
});
op(
  0xa1,
  (cpu) => {
    cpu.reg16[0] = cpu.rd16(moffs(cpu, 2, false));
  },
  (cpu) => {
    cpu.reg32[0] = cpu.rd32(moffs(cpu, 4, false));
  },
);
op(0xa2, (cpu) => cpu.wr8(moffs(cpu, 1, true), cpu.reg8[0]));
op(
  0xa3,
  (cpu) => cpu.wr16(moffs(cpu, 2, true), cpu.reg16[0]),
  (cpu) => cpu.wr32(moffs(cpu, 4, true), cpu.reg32[0]),
);

// ---- MOV r, imm ; MOV r/m, imm ------------------------------------------------
for (let r = 0; r < 8; r++) {
  const i8 = ((r & 3) << 2) | (r >> 2);
  op(0xb0 + r, (cpu) => {
    cpu.reg8[i8] = cpu.fetch8();
  });
  op(
    0xb8 + r,
    (cpu) => {
      cpu.reg16[r << 1] = cpu.fetch16();
    },
    (cpu) => {
      cpu.reg32[r] = cpu.fetch32();
    },
  );
}
op(0xc6, (cpu) => {
  cpu.decodeModrm();
  if ((cpu.modrm & 0x38) !== 0) cpu.raiseUD();
  cpu.writeRm8(cpu.fetch8());
});
op(
  0xc7,
  (cpu) => {
    cpu.decodeModrm();
    if ((cpu.modrm & 0x38) !== 0) cpu.raiseUD();
    cpu.writeRm16(cpu.fetch16());
  },
  (cpu) => {
    cpu.decodeModrm();
    if ((cpu.modrm & 0x38) !== 0) cpu.raiseUD();
    cpu.writeRm32(cpu.fetch32());
  },
);

// ---- XCHG --------------------------------------------------------------------
op(0x86, (cpu) => {
  cpu.decodeModrm();
  const i = cpu.regIdx8();
  const v = cpu.readRm8();
  cpu.writeRm8(cpu.reg8[i]);
  cpu.reg8[i] = v;
});
op(
  0x87,
  (cpu) => {
    cpu.decodeModrm();
    const i = ((cpu.modrm >> 3) & 7) << 1;
    const v = cpu.readRm16();
    cpu.writeRm16(cpu.reg16[i]);
    cpu.reg16[i] = v;
  },
  (cpu) => {
    cpu.decodeModrm();
    const i = (cpu.modrm >> 3) & 7;
    const v = cpu.readRm32();
    cpu.writeRm32(cpu.reg32[i]);
    cpu.reg32[i] = v;
  },
);
op(0x90, (cpu) => {
  // NOP; F3 90 is PAUSE, which takes time (cpu.pause)
  if (cpu.rep === 0xf3) cpu.pause();
});
for (let r = 1; r < 8; r++) {
  op(
    0x90 + r,
    (cpu) => {
      const v = cpu.reg16[0];
      cpu.reg16[0] = cpu.reg16[r << 1];
      cpu.reg16[r << 1] = v;
    },
    (cpu) => {
      const v = cpu.reg32[0];
      cpu.reg32[0] = cpu.reg32[r];
      cpu.reg32[r] = v;
    },
  );
}

// ---- PUSH / POP ----------------------------------------------------------------
for (let r = 0; r < 8; r++) {
  op(
    0x50 + r,
    (cpu) => cpu.push16(cpu.reg16[r << 1]),
    (cpu) => cpu.push32(cpu.reg32[r]),
  );
  op(
    0x58 + r,
    (cpu) => {
      const v = cpu.pop16();
      cpu.reg16[r << 1] = v;
    },
    (cpu) => {
      const v = cpu.pop32();
      cpu.reg32[r] = v;
    },
  );
}
op(
  0x68,
  (cpu) => cpu.push16(cpu.fetch16()),
  (cpu) => cpu.push32(cpu.fetch32()),
);
op(
  0x6a,
  (cpu) => cpu.push16((cpu.fetch8() << 24) >> 24),
  (cpu) => cpu.push32((cpu.fetch8() << 24) >> 24),
);
op(0x8f, (cpu) => {
  // POP r/m: ESP is incremented before the destination address is computed (SDM POP),
  // so the ModRM byte is decoded after the pop; a faulting store restores ESP.
  const espBefore = cpu.reg32[4];
  const v = cpu.pop();
  try {
    cpu.decodeModrm();
    if ((cpu.modrm & 0x38) !== 0) cpu.raiseUD();
    if (cpu.o32) cpu.writeRm32(v);
    else cpu.writeRm16(v);
  } catch (e) {
    cpu.reg32[4] = espBefore;
    throw e;
  }
});

/** PUSH of a segment register: a 32-bit push writes only the low 16 bits (as P6 and QEMU do). */
function pushSeg(s: number) {
  return [
    (cpu: Cpu) => cpu.push16(cpu.sreg[s]),
    (cpu: Cpu) => {
      const sp = (cpu.reg32[4] - 4) & cpu.ssMask;
      checkPushes(cpu, 1, 4);
      cpu.probeWrite((cpu.segBase[Seg.SS] + sp) | 0, 4);
      cpu.wr16((cpu.segBase[Seg.SS] + sp) | 0, cpu.sreg[s]);
      cpu.reg32[4] = (cpu.reg32[4] & ~cpu.ssMask) | sp;
    },
  ] as const;
}
function popSeg(s: number) {
  return (cpu: Cpu) => {
    const sp = cpu.reg32[4];
    const v = cpu.o32 ? cpu.pop32() : cpu.pop16();
    try {
      loadSeg(cpu, s, v & 0xffff);
    } catch (e) {
      cpu.reg32[4] = sp;
      throw e;
    }
    if (s === Seg.SS) cpu.inhibitIrq = true;
  };
}
op(0x06, ...pushSeg(Seg.ES));
op(0x0e, ...pushSeg(Seg.CS));
op(0x16, ...pushSeg(Seg.SS));
op(0x1e, ...pushSeg(Seg.DS));
op0f(0xa0, ...pushSeg(Seg.FS));
op0f(0xa8, ...pushSeg(Seg.GS));
op(0x07, popSeg(Seg.ES));
op(0x17, popSeg(Seg.SS));
op(0x1f, popSeg(Seg.DS));
op0f(0xa1, popSeg(Seg.FS));
op0f(0xa9, popSeg(Seg.GS));

op(
  0x60,
  (cpu) => {
    const sp = cpu.reg16[8];
    checkPushes(cpu, 8, 2);
    cpu.probeWrite((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - 16) & cpu.ssMask)) | 0, 16);
    for (let r = 0; r < 8; r++) cpu.push16(r === 4 ? sp : cpu.reg16[r << 1]);
  },
  (cpu) => {
    const sp = cpu.reg32[4];
    checkPushes(cpu, 8, 4);
    cpu.probeWrite((cpu.segBase[Seg.SS] + ((cpu.reg32[4] - 32) & cpu.ssMask)) | 0, 32);
    for (let r = 0; r < 8; r++) cpu.push32(r === 4 ? sp : cpu.reg32[r]);
  },
);
op(
  0x61,
  (cpu) => {
    const v = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let r = 7; r >= 0; r--) v[r] = cpu.peek16((7 - r) * 2);
    for (let r = 7; r >= 0; r--) if (r !== 4) cpu.reg16[r << 1] = v[r];
    cpu.adjustSp(16);
  },
  (cpu) => {
    const v = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let r = 7; r >= 0; r--) v[r] = cpu.peek32((7 - r) * 4);
    for (let r = 7; r >= 0; r--) if (r !== 4) cpu.reg32[r] = v[r];
    cpu.adjustSp(32);
  },
);

// ---- PUSHF / POPF / LAHF / SAHF ------------------------------------------------
op(0x9c, (cpu) => {
  if (cpu.vm86 && (cpu.flags & F.IOPL) !== F.IOPL) return vmePushf(cpu);
  const f = cpu.getFlags();
  // VM and RF are never pushed
  if (cpu.o32) cpu.push32(f & 0x00fcffff);
  else cpu.push16(f);
});
op(0x9d, (cpu) => {
  if (cpu.vm86 && (cpu.flags & F.IOPL) !== F.IOPL) return vmePopf(cpu);
  const v = cpu.o32 ? cpu.pop32() : cpu.pop16();
  let mask = F.ARITH | F.TF | F.DF | F.NT | (cpu.o32 ? F.AC | F.ID : 0);
  const iopl = (cpu.flags >> 12) & 3;
  if (!cpu.protectedMode || cpu.cpl === 0) mask |= F.IOPL | F.IF;
  else if (cpu.vm86) mask |= F.IF;
  else if (cpu.cpl <= iopl) mask |= F.IF;
  cpu.setFlags(v, mask);
});
op(0x9e, (cpu) => {
  cpu.setFlagBits(F.SF | F.ZF | F.AF | F.PF | F.CF, cpu.reg8[1]);
});
op(0x9f, (cpu) => {
  cpu.reg8[1] = (cpu.getFlags() & 0xd5) | 2;
});

// ---- far pointers: LES LDS LSS LFS LGS --------------------------------------
function loadFar(s: number) {
  return (cpu: Cpu) => {
    cpu.decodeModrm();
    if (cpu.modrm >= 0xc0) cpu.raiseUD();
    const i = (cpu.modrm >> 3) & 7;
    if (cpu.segSlow !== 0) eaCheck(cpu, 0, cpu.o32 ? 6 : 4, false);
    if (cpu.o32) {
      const off = cpu.rd32(cpu.ea);
      const sel = cpu.rd16((cpu.ea + 4) | 0);
      loadSeg(cpu, s, sel);
      cpu.reg32[i] = off;
    } else {
      const off = cpu.rd16(cpu.ea);
      const sel = cpu.rd16((cpu.ea + 2) | 0);
      loadSeg(cpu, s, sel);
      cpu.reg16[i << 1] = off;
    }
    if (s === Seg.SS) cpu.inhibitIrq = true;
  };
}
op(0xc4, loadFar(Seg.ES));
op(0xc5, loadFar(Seg.DS));
op0f(0xb2, loadFar(Seg.SS));
op0f(0xb4, loadFar(Seg.FS));
op0f(0xb5, loadFar(Seg.GS));

// ---- MOVZX / MOVSX ----------------------------------------------------------------
op0f(
  0xb6,
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = cpu.readRm8();
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg32[(cpu.modrm >> 3) & 7] = cpu.readRm8();
  },
);
op0f(
  0xb7,
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = cpu.readRm16();
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg32[(cpu.modrm >> 3) & 7] = cpu.readRm16();
  },
);
op0f(
  0xbe,
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = (cpu.readRm8() << 24) >> 24;
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg32[(cpu.modrm >> 3) & 7] = (cpu.readRm8() << 24) >> 24;
  },
);
op0f(
  0xbf,
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = cpu.readRm16();
  },
  (cpu) => {
    cpu.decodeModrm();
    cpu.reg32[(cpu.modrm >> 3) & 7] = (cpu.readRm16() << 16) >> 16;
  },
);

// ---- XLAT ------------------------------------------------------------------------
op(0xd7, (cpu) => {
  const off = cpu.a32 ? (cpu.reg32[3] + cpu.reg8[0]) | 0 : (cpu.reg16[6] + cpu.reg8[0]) & 0xffff;
  cpu.reg8[0] = cpu.rd8(cpu.dataLin(off, 1, false));
});

// ---- CMOVcc / SETcc ------------------------------------------------------------------
for (let cc = 0; cc < 16; cc++) {
  op0f(
    0x40 + cc,
    (cpu) => {
      cpu.decodeModrm();
      const v = cpu.readRm16();
      if (cpu.cond(cc)) cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = v;
    },
    (cpu) => {
      cpu.decodeModrm();
      const v = cpu.readRm32();
      if (cpu.cond(cc)) cpu.reg32[(cpu.modrm >> 3) & 7] = v;
    },
  );
  op0f(0x90 + cc, (cpu) => {
    cpu.decodeModrm();
    cpu.writeRm8(cpu.cond(cc) ? 1 : 0);
  });
}

// ---- BSWAP ---------------------------------------------------------------------------
for (let r = 0; r < 8; r++) {
  op0f(
    0xc8 + r,
    (cpu) => {
      // BSWAP with a 16-bit operand is undefined; P6 (and QEMU) clear the register's low word
      cpu.reg16[r << 1] = 0;
    },
    (cpu) => {
      const v = cpu.reg32[r];
      cpu.reg32[r] = (v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
    },
  );
}

// ---- XADD, CMPXCHG, CMPXCHG8B -------------------------------------------------------
op0f(0xc0, (cpu) => {
  cpu.decodeModrm();
  const i = cpu.regIdx8();
  const a = cpu.readRm8();
  cpu.rmwCheck(1);
  const r = alu(cpu, Alu.ADD, a, cpu.reg8[i], 7);
  // the source register gets the old value first, so XADD r, r leaves the sum (SDM: TEMP; SRC <- DEST; DEST <- TEMP)
  cpu.reg8[i] = a;
  cpu.writeRm8(r);
});
op0f(
  0xc1,
  (cpu) => {
    cpu.decodeModrm();
    const i = ((cpu.modrm >> 3) & 7) << 1;
    const a = cpu.readRm16();
    cpu.rmwCheck(2);
    const r = alu(cpu, Alu.ADD, a, cpu.reg16[i], 15);
    cpu.reg16[i] = a;
    cpu.writeRm16(r);
  },
  (cpu) => {
    cpu.decodeModrm();
    const i = (cpu.modrm >> 3) & 7;
    const a = cpu.readRm32();
    cpu.rmwCheck(4);
    const r = alu(cpu, Alu.ADD, a, cpu.reg32[i], 31);
    cpu.reg32[i] = a;
    cpu.writeRm32(r);
  },
);
op0f(0xb0, (cpu) => {
  cpu.decodeModrm();
  const d = cpu.readRm8();
  cpu.rmwCheck(1); // a store that would fault leaves the flags alone
  alu(cpu, Alu.CMP, cpu.reg8[0], d, 7);
  if (cpu.reg8[0] === d) cpu.writeRm8(cpu.reg8[cpu.regIdx8()]);
  else {
    // the destination is written back unchanged (a locked read-modify-write)
    cpu.writeRm8(d);
    cpu.reg8[0] = d;
  }
});
op0f(
  0xb1,
  (cpu) => {
    cpu.decodeModrm();
    const d = cpu.readRm16();
    cpu.rmwCheck(2); // a store that would fault leaves the flags alone
    alu(cpu, Alu.CMP, cpu.reg16[0], d, 15);
    if (cpu.reg16[0] === d) cpu.writeRm16(cpu.reg16[((cpu.modrm >> 3) & 7) << 1]);
    else {
      cpu.writeRm16(d);
      cpu.reg16[0] = d;
    }
  },
  (cpu) => {
    cpu.decodeModrm();
    const d = cpu.readRm32();
    cpu.rmwCheck(4); // a store that would fault leaves the flags alone
    alu(cpu, Alu.CMP, cpu.reg32[0], d, 31);
    if (cpu.reg32[0] === d) cpu.writeRm32(cpu.reg32[(cpu.modrm >> 3) & 7]);
    else {
      cpu.writeRm32(d);
      cpu.reg32[0] = d;
    }
  },
);
op0f(0xc7, (cpu) => {
  cpu.decodeModrm();
  if (cpu.modrm >= 0xc0 || ((cpu.modrm >> 3) & 7) !== 1) cpu.raiseUD();
  if (cpu.segSlow !== 0) {
    eaCheck(cpu, 0, 8, false);
    eaCheck(cpu, 0, 8, true);
  }
  const lo = cpu.rd32(cpu.ea);
  const hi = cpu.rd32((cpu.ea + 4) | 0);
  cpu.probeWrite(cpu.ea, 8);
  if (lo === cpu.reg32[0] && hi === cpu.reg32[2]) {
    cpu.wr32(cpu.ea, cpu.reg32[3]);
    cpu.wr32((cpu.ea + 4) | 0, cpu.reg32[1]);
    cpu.setFlagBits(F.ZF, F.ZF);
  } else {
    cpu.wr32(cpu.ea, lo);
    cpu.wr32((cpu.ea + 4) | 0, hi);
    cpu.reg32[0] = lo;
    cpu.reg32[2] = hi;
    cpu.setFlagBits(F.ZF, 0);
  }
});

