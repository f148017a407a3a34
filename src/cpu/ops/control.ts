/**
 * Control flow and processor-control opcodes: Jcc, JMP, CALL, RET, LOOP,
 * JCXZ, INT/INTO/INT3/IRET, ENTER/LEAVE, BOUND, HLT, flag instructions,
 * IN/OUT, and the FF group.
 */
import { eaCheck, segCheck, SS_READ, SS_WRITE } from '../seglimit.js';
import type { Cpu } from '../cpu.js';
import { CR4, F, Seg, Vec } from '../consts.js';
import { deliverInterrupt } from '../interrupts.js';
import { checkIoPermission } from '../tasks.js';
import { farCall, farJump, farReturn, iret } from '../transfer.js';
import { setVirtualIf, vmeSoftInt } from '../vme.js';
import { incDecRm } from './alu.js';
import { op, op0f } from './table.js';

// ---- Jcc ----------------------------------------------------------------------
for (let cc = 0; cc < 16; cc++) {
  op(0x70 + cc, (cpu) => {
    const d = (cpu.fetch8() << 24) >> 24;
    if (cpu.cond(cc)) cpu.jumpNear(cpu.eip + d);
  });
  op0f(
    0x80 + cc,
    (cpu) => {
      const d = cpu.fetch16();
      if (cpu.cond(cc)) cpu.jumpNear(cpu.eip + d);
    },
    (cpu) => {
      const d = cpu.fetch32();
      if (cpu.cond(cc)) cpu.jumpNear((cpu.eip + d) | 0);
    },
  );
}

// ---- JMP / CALL / RET near and far -------------------------------------------------
op(0xeb, (cpu) => {
  const d = (cpu.fetch8() << 24) >> 24;
  cpu.jumpNear(cpu.eip + d);
});
op(
  0xe9,
  (cpu) => {
    const d = cpu.fetch16();
    cpu.jumpNear(cpu.eip + d);
  },
  (cpu) => {
    const d = cpu.fetch32();
    cpu.jumpNear((cpu.eip + d) | 0);
  },
);
op(
  0xe8,
  (cpu) => {
    const d = cpu.fetch16();
    cpu.push16(cpu.eip);
    cpu.jumpNear(cpu.eip + d);
  },
  (cpu) => {
    const d = cpu.fetch32();
    cpu.push32(cpu.eip);
    cpu.jumpNear((cpu.eip + d) | 0);
  },
);
op(0xea, (cpu) => {
  const off = cpu.fetchImm();
  const sel = cpu.fetch16();
  farJump(cpu, sel, off);
});
op(0x9a, (cpu) => {
  const off = cpu.fetchImm();
  const sel = cpu.fetch16();
  farCall(cpu, sel, off);
});
op(
  0xc3,
  (cpu) => {
    cpu.eip = cpu.pop16();
  },
  (cpu) => {
    cpu.eip = cpu.pop32();
  },
);
op(
  0xc2,
  (cpu) => {
    const n = cpu.fetch16();
    const ip = cpu.pop16();
    cpu.adjustSp(n);
    cpu.eip = ip;
  },
  (cpu) => {
    const n = cpu.fetch16();
    const ip = cpu.pop32();
    cpu.adjustSp(n);
    cpu.eip = ip;
  },
);
op(0xcb, (cpu) => farReturn(cpu, 0));
op(0xca, (cpu) => farReturn(cpu, cpu.fetch16()));

// ---- LOOP / JCXZ ------------------------------------------------------------------
function loopOp(kind: number) {
  return (cpu: Cpu) => {
    const d = (cpu.fetch8() << 24) >> 24;
    let cnt: number;
    if (cpu.a32) {
      cnt = (cpu.reg32[1] - 1) | 0;
      cpu.reg32[1] = cnt;
    } else {
      cnt = (cpu.reg16[2] - 1) & 0xffff;
      cpu.reg16[2] = cnt;
    }
    let take = cnt !== 0;
    if (kind === 0) take = take && !cpu.getZF(); // LOOPNE
    else if (kind === 1) take = take && cpu.getZF(); // LOOPE
    if (take) cpu.jumpNear(cpu.eip + d);
  };
}
op(0xe0, loopOp(0));
op(0xe1, loopOp(1));
op(0xe2, loopOp(2));
op(0xe3, (cpu) => {
  const d = (cpu.fetch8() << 24) >> 24;
  const cnt = cpu.a32 ? cpu.reg32[1] : cpu.reg16[2];
  if (cnt === 0) cpu.jumpNear(cpu.eip + d);
});

// ---- INT / INTO / INT3 / IRET -------------------------------------------------------
function softInt(cpu: Cpu, vec: number): void {
  if (cpu.vm86) {
    if ((cpu.cr4 & CR4.VME) !== 0) {
      if (vmeSoftInt(cpu, vec)) return;
    } else if ((cpu.flags & F.IOPL) !== F.IOPL) cpu.raiseGP(0);
  }
  deliverInterrupt(cpu, vec, false, 0, true, cpu.eip);
}
op(0xcd, (cpu) => softInt(cpu, cpu.fetch8()));
op(0xcc, (cpu) => deliverInterrupt(cpu, Vec.BP, false, 0, true, cpu.eip));
op(0xce, (cpu) => {
  if (cpu.getOF()) deliverInterrupt(cpu, Vec.OF, false, 0, true, cpu.eip);
});
op(0xf1, (cpu) => {
  // INT1 / ICEBP: a #DB delivered like an external event (no DPL check)
  deliverInterrupt(cpu, Vec.DB, false, 0, false, cpu.eip);
});
op(0xcf, (cpu) => iret(cpu));

// ---- ENTER / LEAVE --------------------------------------------------------------------
op(0xc8, (cpu) => {
  const alloc = cpu.fetch16();
  const level = cpu.fetch8() & 31;
  const o32 = cpu.o32;
  const size = o32 ? 4 : 2;
  const ssBase = cpu.segBase[Seg.SS];
  const mask = cpu.ssMask;
  let sp = cpu.reg32[4];
  let bp = cpu.reg32[5];
  // work on local copies so a fault leaves ESP/EBP unchanged
  const slow = cpu.segSlow & (SS_READ | SS_WRITE);
  const push = (v: number) => {
    sp = (sp & ~mask) | ((sp - size) & mask);
    if (slow !== 0) segCheck(cpu, Seg.SS, sp & mask, size, true);
    if (o32) cpu.wr32((ssBase + (sp & mask)) | 0, v);
    else cpu.wr16((ssBase + (sp & mask)) | 0, v);
  };
  push(o32 ? bp : bp & 0xffff);
  const frame = sp;
  if (level > 0) {
    for (let i = 1; i < level; i++) {
      bp = (bp & ~mask) | ((bp - size) & mask);
      if (slow !== 0) segCheck(cpu, Seg.SS, bp & mask, size, false);
      const v = o32 ? cpu.rd32((ssBase + (bp & mask)) | 0) : cpu.rd16((ssBase + (bp & mask)) | 0);
      push(v);
    }
    push(o32 ? frame : frame & 0xffff);
  }
  sp = (sp & ~mask) | ((sp - alloc) & mask);
  // The final stack pointer is checked as a store of the operand size would be
  // (SDM: #SS(0) if the new ESP is outside the stack segment; a page fault if
  // it is not writable), before anything is committed: a fault leaves ESP and
  // EBP as they were (Bochs probes it the same way; QEMU does not check it).
  if (slow !== 0) segCheck(cpu, Seg.SS, sp & mask, size, true);
  cpu.probeWrite((ssBase + (sp & mask)) | 0, size);
  cpu.reg32[4] = sp;
  if (o32) cpu.reg32[5] = frame;
  else cpu.reg16[10] = frame;
});
op(
  0xc9,
  (cpu) => {
    const sp = cpu.reg32[4];
    cpu.reg32[4] = (sp & ~cpu.ssMask) | (cpu.reg32[5] & cpu.ssMask);
    try {
      cpu.reg16[10] = cpu.pop16();
    } catch (e) {
      cpu.reg32[4] = sp;
      throw e;
    }
  },
  (cpu) => {
    const sp = cpu.reg32[4];
    cpu.reg32[4] = (sp & ~cpu.ssMask) | (cpu.reg32[5] & cpu.ssMask);
    try {
      cpu.reg32[5] = cpu.pop32();
    } catch (e) {
      cpu.reg32[4] = sp;
      throw e;
    }
  },
);

// ---- BOUND -----------------------------------------------------------------------
op(
  0x62,
  (cpu) => {
    cpu.decodeModrm();
    if (cpu.modrm >= 0xc0) cpu.raiseUD();
    const idx = (cpu.reg16[((cpu.modrm >> 3) & 7) << 1] << 16) >> 16;
    if (cpu.segSlow !== 0) eaCheck(cpu, 0, 4, false);
    const lo = (cpu.rd16(cpu.ea) << 16) >> 16;
    const hi = (cpu.rd16((cpu.ea + 2) | 0) << 16) >> 16;
    if (idx < lo || idx > hi) cpu.raise(Vec.BR);
  },
  (cpu) => {
    cpu.decodeModrm();
    if (cpu.modrm >= 0xc0) cpu.raiseUD();
    const idx = cpu.reg32[(cpu.modrm >> 3) & 7];
    if (cpu.segSlow !== 0) eaCheck(cpu, 0, 8, false);
    const lo = cpu.rd32(cpu.ea);
    const hi = cpu.rd32((cpu.ea + 4) | 0);
    if (idx < lo || idx > hi) cpu.raise(Vec.BR);
  },
);

// ---- HLT and flag instructions ---------------------------------------------------
op(0xf4, (cpu) => {
  if (cpu.protectedMode && cpu.cpl !== 0) cpu.raiseGP(0);
  cpu.halted = true;
});
op(0xf5, (cpu) => cpu.setFlagBits(F.CF, cpu.getCF() ^ 1));
op(0xf8, (cpu) => cpu.setFlagBits(F.CF, 0));
op(0xf9, (cpu) => cpu.setFlagBits(F.CF, F.CF));
op(0xfc, (cpu) => {
  cpu.flags &= ~F.DF;
});
op(0xfd, (cpu) => {
  cpu.flags |= F.DF;
});

/** CLI/STI are IOPL-sensitive in protected and v8086 mode (vme.ts: VIF instead of #GP with VME/PVI). */
function iopl(cpu: Cpu): boolean {
  if (!cpu.protectedMode) return true;
  return ((cpu.flags >> 12) & 3) >= (cpu.vm86 ? 3 : cpu.cpl);
}
op(0xfa, (cpu) => {
  if (!iopl(cpu)) return setVirtualIf(cpu, false);
  cpu.flags &= ~F.IF;
});
op(0xfb, (cpu) => {
  if (!iopl(cpu)) return setVirtualIf(cpu, true);
  if ((cpu.flags & F.IF) === 0) cpu.inhibitIrq = true;
  cpu.flags |= F.IF;
});

// ---- IN / OUT ----------------------------------------------------------------------
op(0xe4, (cpu) => {
  const p = cpu.fetch8();
  checkIoPermission(cpu, p, 1);
  cpu.reg8[0] = cpu.io.read8[p](p);
});
op(
  0xe5,
  (cpu) => {
    const p = cpu.fetch8();
    checkIoPermission(cpu, p, 2);
    cpu.reg16[0] = cpu.io.read16[p](p);
  },
  (cpu) => {
    const p = cpu.fetch8();
    checkIoPermission(cpu, p, 4);
    cpu.reg32[0] = cpu.io.read32[p](p);
  },
);
op(0xe6, (cpu) => {
  const p = cpu.fetch8();
  checkIoPermission(cpu, p, 1);
  cpu.io.write8[p](p, cpu.reg8[0]);
});
op(
  0xe7,
  (cpu) => {
    const p = cpu.fetch8();
    checkIoPermission(cpu, p, 2);
    cpu.io.write16[p](p, cpu.reg16[0]);
  },
  (cpu) => {
    const p = cpu.fetch8();
    checkIoPermission(cpu, p, 4);
    cpu.io.write32[p](p, cpu.reg32[0]);
  },
);
op(0xec, (cpu) => {
  const p = cpu.reg16[4];
  checkIoPermission(cpu, p, 1);
  cpu.reg8[0] = cpu.io.read8[p](p);
});
op(
  0xed,
  (cpu) => {
    const p = cpu.reg16[4];
    checkIoPermission(cpu, p, 2);
    cpu.reg16[0] = cpu.io.read16[p](p);
  },
  (cpu) => {
    const p = cpu.reg16[4];
    checkIoPermission(cpu, p, 4);
    cpu.reg32[0] = cpu.io.read32[p](p);
  },
);
op(0xee, (cpu) => {
  const p = cpu.reg16[4];
  checkIoPermission(cpu, p, 1);
  cpu.io.write8[p](p, cpu.reg8[0]);
});
op(
  0xef,
  (cpu) => {
    const p = cpu.reg16[4];
    checkIoPermission(cpu, p, 2);
    cpu.io.write16[p](p, cpu.reg16[0]);
  },
  (cpu) => {
    const p = cpu.reg16[4];
    checkIoPermission(cpu, p, 4);
    cpu.io.write32[p](p, cpu.reg32[0]);
  },
);

// ---- FF group: INC DEC CALL CALLF JMP JMPF PUSH ------------------------------------------
op(0xff, (cpu) => {
  cpu.decodeModrm();
  const k = (cpu.modrm >> 3) & 7;
  switch (k) {
    case 0:
    case 1:
      incDecRm(cpu, k === 1);
      return;
    case 2: {
      const t = cpu.o32 ? cpu.readRm32() : cpu.readRm16();
      if (cpu.o32) cpu.push32(cpu.eip);
      else cpu.push16(cpu.eip);
      cpu.jumpNear(t);
      return;
    }
    case 4:
      cpu.jumpNear(cpu.o32 ? cpu.readRm32() : cpu.readRm16());
      return;
    case 3:
    case 5: {
      if (cpu.modrm >= 0xc0) cpu.raiseUD();
      if (cpu.segSlow !== 0) eaCheck(cpu, 0, cpu.o32 ? 6 : 4, false);
      const off = cpu.o32 ? cpu.rd32(cpu.ea) : cpu.rd16(cpu.ea);
      const sel = cpu.rd16((cpu.ea + (cpu.o32 ? 4 : 2)) | 0);
      if (k === 3) farCall(cpu, sel, off);
      else farJump(cpu, sel, off);
      return;
    }
    case 6:
      if (cpu.o32) cpu.push32(cpu.readRm32());
      else cpu.push16(cpu.readRm16());
      return;
    default:
      cpu.raiseUD();
  }
});
