/** Bit instructions: BT/BTS/BTR/BTC (register, memory and immediate forms), BSF/BSR. */
import { eaCheck } from '../seglimit.js';
import { Lazy, type Cpu } from '../cpu.js';
import { F } from '../consts.js';
import { op0f } from './table.js';

/** 0 = BT, 1 = BTS, 2 = BTR, 3 = BTC */
function applyBit(kind: number, v: number, bit: number): number {
  const m = 1 << bit;
  return kind === 1 ? v | m : kind === 2 ? v & ~m : kind === 3 ? v ^ m : v;
}

/** BTx r/m, reg: a memory operand is addressed by the full signed bit offset. */
function btReg(kind: number) {
  return [
    (cpu: Cpu) => {
      cpu.decodeModrm();
      const off = (cpu.reg16[((cpu.modrm >> 3) & 7) << 1] << 16) >> 16;
      if (cpu.modrm >= 0xc0) {
        const i = (cpu.modrm & 7) << 1;
        const v = cpu.reg16[i];
        cpu.setFlagBits(F.CF, (v >> (off & 15)) & 1);
        if (kind) cpu.reg16[i] = applyBit(kind, v, off & 15);
      } else {
        const lin = (cpu.ea + ((off >> 4) << 1)) | 0;
        if (cpu.segSlow !== 0) {
          eaCheck(cpu, (off >> 4) << 1, 2, false);
          if (kind) eaCheck(cpu, (off >> 4) << 1, 2, true);
        }
        const v = cpu.rd16(lin);
        if (kind) cpu.probeWrite(lin, 2);
        cpu.setFlagBits(F.CF, (v >> (off & 15)) & 1);
        if (kind) cpu.wr16(lin, applyBit(kind, v, off & 15));
      }
    },
    (cpu: Cpu) => {
      cpu.decodeModrm();
      const off = cpu.reg32[(cpu.modrm >> 3) & 7];
      if (cpu.modrm >= 0xc0) {
        const i = cpu.modrm & 7;
        const v = cpu.reg32[i];
        cpu.setFlagBits(F.CF, (v >>> (off & 31)) & 1);
        if (kind) cpu.reg32[i] = applyBit(kind, v, off & 31);
      } else {
        const lin = (cpu.ea + ((off >> 5) << 2)) | 0;
        if (cpu.segSlow !== 0) {
          eaCheck(cpu, (off >> 5) << 2, 4, false);
          if (kind) eaCheck(cpu, (off >> 5) << 2, 4, true);
        }
        const v = cpu.rd32(lin);
        if (kind) cpu.probeWrite(lin, 4);
        cpu.setFlagBits(F.CF, (v >>> (off & 31)) & 1);
        if (kind) cpu.wr32(lin, applyBit(kind, v, off & 31));
      }
    },
  ] as const;
}
op0f(0xa3, ...btReg(0));
op0f(0xab, ...btReg(1));
op0f(0xb3, ...btReg(2));
op0f(0xbb, ...btReg(3));

// 0F BA /4../7: BTx r/m, imm8 (the offset is taken modulo the operand size)
op0f(
  0xba,
  (cpu) => {
    cpu.decodeModrm();
    const kind = ((cpu.modrm >> 3) & 7) - 4;
    if (kind < 0) cpu.raiseUD();
    const v = cpu.readRm16();
    if (kind) cpu.rmwCheck(2);
    const bit = cpu.fetch8() & 15;
    cpu.setFlagBits(F.CF, (v >> bit) & 1);
    if (kind) cpu.writeRm16(applyBit(kind, v, bit));
  },
  (cpu) => {
    cpu.decodeModrm();
    const kind = ((cpu.modrm >> 3) & 7) - 4;
    if (kind < 0) cpu.raiseUD();
    const v = cpu.readRm32();
    if (kind) cpu.rmwCheck(4);
    const bit = cpu.fetch8() & 31;
    cpu.setFlagBits(F.CF, (v >>> bit) & 1);
    if (kind) cpu.writeRm32(applyBit(kind, v, bit));
  },
);

// BSF / BSR: a zero source sets ZF and leaves the destination unchanged (as P6 and QEMU do)
op0f(
  0xbc,
  (cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm16();
    if (v !== 0) cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = 31 - Math.clz32(v & -v);
    cpu.setLazy(Lazy.LOGIC, 0, 0, v, 15);
  },
  (cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm32();
    if (v !== 0) cpu.reg32[(cpu.modrm >> 3) & 7] = 31 - Math.clz32(v & -v);
    cpu.setLazy(Lazy.LOGIC, 0, 0, v, 31);
  },
);
op0f(
  0xbd,
  (cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm16();
    if (v !== 0) cpu.reg16[((cpu.modrm >> 3) & 7) << 1] = 31 - Math.clz32(v);
    cpu.setLazy(Lazy.LOGIC, 0, 0, v, 15);
  },
  (cpu) => {
    cpu.decodeModrm();
    const v = cpu.readRm32();
    if (v !== 0) cpu.reg32[(cpu.modrm >> 3) & 7] = 31 - Math.clz32(v);
    cpu.setLazy(Lazy.LOGIC, 0, 0, v, 31);
  },
);
