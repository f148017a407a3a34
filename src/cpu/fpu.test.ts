// Unit tests for the x87 FPU (src/cpu/fpu.ts). The VECTORS table was produced
// on a real Intel x87 (via FNSAVE after each instruction) and is checked bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fpu, type FpuBus } from './fpu.js';

/** A flat 64 KiB memory bus that records the CPU-side calls. */
class MockBus implements FpuBus {
  readonly mem = new Uint8Array(0x10000);
  errors = 0;
  ax = -1;
  eflags = 0x2;
  zpc: boolean[] = [];
  /** When set, reportError throws (CR0.NE=1 #MF). */
  throwOnError = false;
  /** Writes at or above this address fault (to test restartability). */
  faultAt = 0x10000;
  operand(): void {}
  read8(a: number): number {
    return this.mem[a];
  }
  read16(a: number): number {
    return this.mem[a] | (this.mem[a + 1] << 8);
  }
  read32(a: number): number {
    return (this.read16(a) | (this.read16(a + 2) << 16)) >>> 0;
  }
  write8(a: number, v: number): void {
    if (a >= this.faultAt) throw FAULT;
    this.mem[a] = v;
  }
  write16(a: number, v: number): void {
    this.write8(a, v & 0xff);
    this.write8(a + 1, (v >> 8) & 0xff);
  }
  write32(a: number, v: number): void {
    this.write16(a, v & 0xffff);
    this.write16(a + 2, (v >>> 16) & 0xffff);
  }
  reportError(): void {
    this.errors++;
    if (this.throwOnError) throw MF;
  }
  setEflagsZPC(zf: boolean, pf: boolean, cf: boolean): void {
    this.zpc = [zf, pf, cf];
  }
  getEflags(): number {
    return this.eflags;
  }
  setAx(v: number): void {
    this.ax = v;
  }
  hex(a: number, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += this.mem[a + i].toString(16).padStart(2, '0');
    return s;
  }
  setHex(a: number, h: string): void {
    for (let i = 0; i < h.length / 2; i++) this.mem[a + i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  }
}
const FAULT = { fault: 'pf' };
const MF = { fault: 'mf' };

const SCRATCH = 0x100;
const OPND = 0x200;

function make(): { f: Fpu; bus: MockBus } {
  const bus = new MockBus();
  const f = new Fpu(bus);
  f.execute(0xdb, 0xe3, 0, true, false); // FNINIT
  return { f, bus };
}

function parse(v: string): [number, number, number] {
  const [se, m] = v.split(':');
  return [parseInt(se, 16), parseInt(m.slice(0, 8), 16) | 0, parseInt(m.slice(8), 16) | 0];
}

/** FLD m80 of "se:mantissa". */
function fld(f: Fpu, bus: MockBus, v: string): void {
  const [se, hi, lo] = parse(v);
  bus.write32(SCRATCH, lo);
  bus.write32(SCRATCH + 4, hi);
  bus.write16(SCRATCH + 8, se);
  f.execute(0xdb, 0x28, SCRATCH, true, false);
}

function fldcw(f: Fpu, bus: MockBus, cw: number): void {
  bus.write16(SCRATCH, cw);
  f.execute(0xd9, 0x28, SCRATCH, true, false);
}

function st(f: Fpu, i: number): string {
  if (f.stEmpty(i)) return 'empty';
  return (
    f.stSignExp(i).toString(16).padStart(4, '0') +
    ':' +
    f.stMantHi(i).toString(16).padStart(8, '0') +
    f.stMantLo(i).toString(16).padStart(8, '0')
  );
}

const ONE = '3fff:8000000000000000';
const TWO = '4000:8000000000000000';
const THREE = '4000:c000000000000000';

type Vector = [string, number, number, number, string, string, string, number, number, string, string, string];
// [name, op, modrm, cw, ST0, ST1, memory operand (16 bytes hex), expected SW, TW, ST0, ST1, memory]
const VECTORS: Vector[] = [
  ["fdivr 1/3 pc24 near", 0xd8, 0xf9, 0x007f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3ffd:aaaaab0000000000', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc24 down", 0xd8, 0xf9, 0x047f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaa0000000000', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc24 up", 0xd8, 0xf9, 0x087f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3ffd:aaaaab0000000000', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc24 zero", 0xd8, 0xf9, 0x0c7f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaa0000000000', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc53 near", 0xd8, 0xf9, 0x027f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaaaaaaaaa800', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc53 down", 0xd8, 0xf9, 0x067f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaaaaaaaaa800', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc53 up", 0xd8, 0xf9, 0x0a7f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3ffd:aaaaaaaaaaaab000', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc53 zero", 0xd8, 0xf9, 0x0e7f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaaaaaaaaa800', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc64 near", 0xd8, 0xf9, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3ffd:aaaaaaaaaaaaaaab', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc64 down", 0xd8, 0xf9, 0x077f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaaaaaaaaaaaa', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc64 up", 0xd8, 0xf9, 0x0b7f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3ffd:aaaaaaaaaaaaaaab', '3fff:8000000000000000', ''],
  ["fdivr 1/3 pc64 zero", 0xd8, 0xf9, 0x0f7f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3ffd:aaaaaaaaaaaaaaaa', '3fff:8000000000000000', ''],
  ["fdiv -2/3 near", 0xd8, 0xf1, 0x037f, 'c000:0000000000000000', '4000:c000000000000000', '', 0x3001, 0x2fff, 'ffff:c000000000000000', '4000:c000000000000000', ''],
  ["fdiv -2/3 down", 0xd8, 0xf1, 0x077f, 'c000:0000000000000000', '4000:c000000000000000', '', 0x3001, 0x2fff, 'ffff:c000000000000000', '4000:c000000000000000', ''],
  ["fdiv -2/3 up", 0xd8, 0xf1, 0x0b7f, 'c000:0000000000000000', '4000:c000000000000000', '', 0x3001, 0x2fff, 'ffff:c000000000000000', '4000:c000000000000000', ''],
  ["fdiv -2/3 zero", 0xd8, 0xf1, 0x0f7f, 'c000:0000000000000000', '4000:c000000000000000', '', 0x3001, 0x2fff, 'ffff:c000000000000000', '4000:c000000000000000', ''],
  ["fsqrt 2 pc24 near", 0xd9, 0xfa, 0x007f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f30000000000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc24 down", 0xd9, 0xfa, 0x047f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f30000000000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc24 up", 0xd9, 0xfa, 0x087f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3fff:b504f40000000000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc24 zero", 0xd9, 0xfa, 0x0c7f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f30000000000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc53 near", 0xd9, 0xfa, 0x027f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3fff:b504f333f9de6800', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc53 down", 0xd9, 0xfa, 0x067f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f333f9de6000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc53 up", 0xd9, 0xfa, 0x0a7f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3fff:b504f333f9de6800', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc53 zero", 0xd9, 0xfa, 0x0e7f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f333f9de6000', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc64 near", 0xd9, 0xfa, 0x037f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f333f9de6484', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc64 down", 0xd9, 0xfa, 0x077f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f333f9de6484', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc64 up", 0xd9, 0xfa, 0x0b7f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '3fff:b504f333f9de6485', '3fff:8000000000000000', ''],
  ["fsqrt 2 pc64 zero", 0xd9, 0xfa, 0x0f7f, '4000:8000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '3fff:b504f333f9de6484', '3fff:8000000000000000', ''],
  ["fadd tie to even", 0xd8, 0xc1, 0x037f, '3fff:8000000000000000', '3fbf:8000000000000000', '', 0x3020, 0x0fff, '3fff:8000000000000000', '3fbf:8000000000000000', ''],
  ["fadd tie odd rounds up", 0xd8, 0xc1, 0x037f, '3fff:8000000000000001', '3fbf:8000000000000000', '', 0x3220, 0x0fff, '3fff:8000000000000002', '3fbf:8000000000000000', ''],
  ["fsub exact zero is +0", 0xd8, 0xe1, 0x037f, '4000:c000000000000000', '4000:c000000000000000', '', 0x3000, 0x1fff, '0000:0000000000000000', '4000:c000000000000000', ''],
  ["fsub exact zero round down is -0", 0xd8, 0xe1, 0x077f, '4000:c000000000000000', '4000:c000000000000000', '', 0x3000, 0x1fff, '8000:0000000000000000', '4000:c000000000000000', ''],
  ["fsub cancellation", 0xd8, 0xe1, 0x037f, '3fff:8000000000000001', '3fff:8000000000000000', '', 0x3000, 0x0fff, '3fc0:8000000000000000', '3fff:8000000000000000', ''],
  ["fmul min normal by 1/2 exact denormal", 0xd8, 0xc9, 0x037f, '0001:8000000000000000', '3ffe:8000000000000000', '', 0x3000, 0x2fff, '0000:4000000000000000', '3ffe:8000000000000000', ''],
  ["fmul underflow inexact", 0xd8, 0xc9, 0x037f, '0001:c000000000000001', '3ffd:8000000000000000', '', 0x3030, 0x2fff, '0000:3000000000000000', '3ffd:8000000000000000', ''],
  ["fmul underflow unmasked wraps", 0xd8, 0xc9, 0x036f, '0001:8000000000000000', '3ffd:8000000000000000', '', 0xb090, 0x0fff, '5fff:8000000000000000', '3ffd:8000000000000000', ''],
  ["fmul overflow near", 0xd8, 0xc9, 0x037f, '7ffe:ffffffffffffffff', '4000:8000000000000000', '', 0x3228, 0x2fff, '7fff:8000000000000000', '4000:8000000000000000', ''],
  ["fmul overflow down", 0xd8, 0xc9, 0x077f, '7ffe:ffffffffffffffff', '4000:8000000000000000', '', 0x3028, 0x0fff, '7ffe:ffffffffffffffff', '4000:8000000000000000', ''],
  ["fmul overflow up", 0xd8, 0xc9, 0x0b7f, '7ffe:ffffffffffffffff', '4000:8000000000000000', '', 0x3228, 0x2fff, '7fff:8000000000000000', '4000:8000000000000000', ''],
  ["fmul overflow zero", 0xd8, 0xc9, 0x0f7f, '7ffe:ffffffffffffffff', '4000:8000000000000000', '', 0x3028, 0x0fff, '7ffe:ffffffffffffffff', '4000:8000000000000000', ''],
  ["fmul overflow unmasked wraps", 0xd8, 0xc9, 0x0377, '7ffe:ffffffffffffffff', '4000:8000000000000000', '', 0xb088, 0x0fff, '1fff:ffffffffffffffff', '4000:8000000000000000', ''],
  ["fdiv by zero", 0xd8, 0xf1, 0x037f, '4000:c000000000000000', '0000:0000000000000000', '', 0x3004, 0x6fff, '7fff:8000000000000000', '0000:0000000000000000', ''],
  ["fdiv 0/0 invalid", 0xd8, 0xf1, 0x037f, '0000:0000000000000000', '0000:0000000000000000', '', 0x3001, 0x6fff, 'ffff:c000000000000000', '0000:0000000000000000', ''],
  ["fdiv 0/0 invalid unmasked", 0xd8, 0xf1, 0x037e, '0000:0000000000000000', '0000:0000000000000000', '', 0xb081, 0x5fff, '0000:0000000000000000', '0000:0000000000000000', ''],
  ["fadd inf-inf invalid", 0xd8, 0xe1, 0x037f, '7fff:8000000000000000', '7fff:8000000000000000', '', 0x3001, 0xafff, 'ffff:c000000000000000', '7fff:8000000000000000', ''],
  ["fadd qnan+snan gives qnan", 0xd8, 0xc1, 0x037f, '7fff:c000000000001234', '7fff:8000000000001234', '', 0x3001, 0xafff, '7fff:c000000000001234', '7fff:8000000000001234', ''],
  ["fadd two qnans larger significand", 0xd8, 0xc1, 0x037f, '7fff:c000000000000001', 'ffff:c000000000000002', '', 0x3000, 0xafff, 'ffff:c000000000000002', 'ffff:c000000000000002', ''],
  ["fadd denormal operand DE", 0xd8, 0xc1, 0x037f, '0000:0000000000000001', '3fff:8000000000000000', '', 0x3022, 0x0fff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fadd unsupported (unnormal)", 0xd8, 0xc1, 0x037f, '3fff:4000000000000000', '3fff:8000000000000000', '', 0x3001, 0x2fff, 'ffff:c000000000000000', '3fff:8000000000000000', ''],
  ["fadd pseudo-denormal", 0xd8, 0xc1, 0x037f, '0000:8000000000000000', '3fff:8000000000000000', '', 0x3022, 0x0fff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["frndint 2.5 near", 0xd9, 0xfc, 0x037f, '4000:a000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '4000:8000000000000000', '3fff:8000000000000000', ''],
  ["frndint 2.5 down", 0xd9, 0xfc, 0x077f, '4000:a000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '4000:8000000000000000', '3fff:8000000000000000', ''],
  ["frndint 2.5 up", 0xd9, 0xfc, 0x0b7f, '4000:a000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '4000:c000000000000000', '3fff:8000000000000000', ''],
  ["frndint 2.5 zero", 0xd9, 0xfc, 0x0f7f, '4000:a000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, '4000:8000000000000000', '3fff:8000000000000000', ''],
  ["frndint -2.5 near", 0xd9, 0xfc, 0x037f, 'c000:a000000000000000', '3fff:8000000000000000', '', 0x3020, 0x0fff, 'c000:8000000000000000', '3fff:8000000000000000', ''],
  ["fist m16 -3.5 near", 0xdf, 0x10, 0x037f, 'c000:e000000000000000', '3fff:8000000000000000', '00000000000000000000000000000000', 0x3220, 0x0fff, 'c000:e000000000000000', '3fff:8000000000000000', 'fcff0000000000000000000000000000'],
  ["fist m16 -3.5 down", 0xdf, 0x10, 0x077f, 'c000:e000000000000000', '3fff:8000000000000000', '00000000000000000000000000000000', 0x3220, 0x0fff, 'c000:e000000000000000', '3fff:8000000000000000', 'fcff0000000000000000000000000000'],
  ["fist m16 -3.5 up", 0xdf, 0x10, 0x0b7f, 'c000:e000000000000000', '3fff:8000000000000000', '00000000000000000000000000000000', 0x3020, 0x0fff, 'c000:e000000000000000', '3fff:8000000000000000', 'fdff0000000000000000000000000000'],
  ["fist m16 -3.5 zero", 0xdf, 0x10, 0x0f7f, 'c000:e000000000000000', '3fff:8000000000000000', '00000000000000000000000000000000', 0x3020, 0x0fff, 'c000:e000000000000000', '3fff:8000000000000000', 'fdff0000000000000000000000000000'],
  ["fistp m32 out of range", 0xdb, 0x18, 0x037f, '401e:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3801, 0x3fff, '3fff:8000000000000000', 'empty', '00000080aaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fistp m32 -2^31 ok", 0xdb, 0x18, 0x037f, 'c01e:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3800, 0x3fff, '3fff:8000000000000000', 'empty', '00000080aaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fistp m64 -2^63 ok", 0xdf, 0x38, 0x037f, 'c03e:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3800, 0x3fff, '3fff:8000000000000000', 'empty', '0000000000000080aaaaaaaaaaaaaaaa'],
  ["fistp m64 nan", 0xdf, 0x38, 0x037f, '7fff:c000000000001234', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3801, 0x3fff, '3fff:8000000000000000', 'empty', '0000000000000080aaaaaaaaaaaaaaaa'],
  ["fistp m16 unmasked IE stores nothing", 0xdf, 0x18, 0x037e, '400f:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0xb081, 0x0fff, '400f:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fbstp", 0xdf, 0x30, 0x037f, 'c039:db4da5f7ef412b1e', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3a20, 0x3fff, '3fff:8000000000000000', 'empty', '61718293091627384980aaaaaaaaaaaa'],
  ["fbstp out of range", 0xdf, 0x30, 0x037f, '403e:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3801, 0x3fff, '3fff:8000000000000000', 'empty', '00000000000000c0ffffaaaaaaaaaaaa'],
  ["fbld", 0xdf, 0x20, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '78563412907856341280000000000000', 0x2800, 0x03ff, 'c037:db4da5d31879a700', '3fff:8000000000000000', '78563412907856341280000000000000'],
  ["fld m32 denormal", 0xd9, 0x00, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '01000000000000000000000000000000', 0x2802, 0x03ff, '3f6a:8000000000000000', '3fff:8000000000000000', '01000000000000000000000000000000'],
  ["fld m32 snan", 0xd9, 0x00, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '0100807f000000000000000000000000', 0x2801, 0x0bff, '7fff:c000010000000000', '3fff:8000000000000000', '0100807f000000000000000000000000'],
  ["fld m64 denormal", 0xdd, 0x00, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '01000000000000000000000000000000', 0x2802, 0x03ff, '3bcd:8000000000000000', '3fff:8000000000000000', '01000000000000000000000000000000'],
  ["fld m64 -inf", 0xdd, 0x00, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '000000000000f0ff0000000000000000', 0x2800, 0x0bff, 'ffff:8000000000000000', '3fff:8000000000000000', '000000000000f0ff0000000000000000'],
  ["fst m32 1/3 near", 0xd9, 0x10, 0x037f, '3ffd:aaaaaaaaaaaaaaab', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3220, 0x0fff, '3ffd:aaaaaaaaaaaaaaab', '3fff:8000000000000000', 'abaaaa3eaaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fst m32 denormal result", 0xd9, 0x10, 0x037f, '3f6a:c000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3230, 0x0fff, '3f6a:c000000000000000', '3fff:8000000000000000', '02000000aaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fst m32 overflow", 0xd9, 0x10, 0x037f, '4080:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3228, 0x0fff, '4080:8000000000000000', '3fff:8000000000000000', '0000807faaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fst m32 overflow unmasked: nothing stored", 0xd9, 0x10, 0x0377, '4080:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0xb088, 0x0fff, '4080:8000000000000000', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fst m32 nan payload", 0xd9, 0x10, 0x037f, 'ffff:c123456789abcdef', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3000, 0x2fff, 'ffff:c123456789abcdef', '3fff:8000000000000000', '4523c1ffaaaaaaaaaaaaaaaaaaaaaaaa'],
  ["fstp m64 1/3 up", 0xdd, 0x18, 0x0b7f, '3ffd:aaaaaaaaaaaaaaab', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3a20, 0x3fff, '3fff:8000000000000000', 'empty', '565555555555d53faaaaaaaaaaaaaaaa'],
  ["fstp m64 denormal", 0xdd, 0x18, 0x037f, '3bcc:8000000000000001', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3a30, 0x3fff, '3fff:8000000000000000', 'empty', '0100000000000000aaaaaaaaaaaaaaaa'],
  ["fstp m80 snan unchanged", 0xdb, 0x38, 0x037f, '7fff:8000000000001234', '3fff:8000000000000000', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0x3800, 0x3fff, '3fff:8000000000000000', 'empty', '3412000000000080ff7faaaaaaaaaaaa'],
  ["fprem 10 mod 3", 0xd9, 0xf8, 0x037f, '4002:a000000000000000', '4000:c000000000000000', '', 0x7200, 0x0fff, '3fff:8000000000000000', '4000:c000000000000000', ''],
  ["fprem1 10 rem 3", 0xd9, 0xf5, 0x037f, '4002:a000000000000000', '4000:c000000000000000', '', 0x7200, 0x0fff, '3fff:8000000000000000', '4000:c000000000000000', ''],
  ["fprem1 11 rem 3", 0xd9, 0xf5, 0x037f, '4002:b000000000000000', '4000:c000000000000000', '', 0x3100, 0x0fff, 'bfff:8000000000000000', '4000:c000000000000000', ''],
  ["fprem -11 mod 3", 0xd9, 0xf8, 0x037f, 'c002:b000000000000000', '4000:c000000000000000', '', 0x7200, 0x0fff, 'c000:8000000000000000', '4000:c000000000000000', ''],
  ["fprem partial", 0xd9, 0xf8, 0x037f, '4100:c90fdaa22168c235', '4000:c000000000000000', '', 0x3400, 0x0fff, '40e0:a168c23500000000', '4000:c000000000000000', ''],
  ["fprem1 0.75 rem 1 (exp diff -1)", 0xd9, 0xf5, 0x037f, '3ffe:c000000000000000', '3fff:8000000000000000', '', 0x3200, 0x0fff, 'bffd:8000000000000000', '3fff:8000000000000000', ''],
  ["fprem by zero invalid", 0xd9, 0xf8, 0x037f, '4002:a000000000000000', '0000:0000000000000000', '', 0x3001, 0x6fff, 'ffff:c000000000000000', '0000:0000000000000000', ''],
  ["fscale 3 * 2^2.5", 0xd9, 0xfd, 0x037f, '4000:c000000000000000', '4000:a000000000000000', '', 0x3000, 0x0fff, '4002:c000000000000000', '4000:a000000000000000', ''],
  ["fscale denormalises", 0xd9, 0xfd, 0x037f, '4000:c000000000000000', 'c00c:8000000000000000', '', 0x3000, 0x0fff, '2000:c000000000000000', 'c00c:8000000000000000', ''],
  ["fxtract 10", 0xd9, 0xf4, 0x037f, '4002:a000000000000000', '3fff:8000000000000000', '', 0x2800, 0x03ff, '3fff:a000000000000000', '4000:c000000000000000', ''],
  ["fxtract -0", 0xd9, 0xf4, 0x037f, '8000:0000000000000000', '3fff:8000000000000000', '', 0x2804, 0x27ff, '8000:0000000000000000', 'ffff:8000000000000000', ''],
  ["fxtract denormal", 0xd9, 0xf4, 0x037f, '0000:0000000000000001', '3fff:8000000000000000', '', 0x2802, 0x03ff, '3fff:8000000000000000', 'c00d:807a000000000000', ''],
  ["fcom less", 0xd8, 0xd1, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x3100, 0x0fff, '3fff:8000000000000000', '4000:8000000000000000', ''],
  ["fcom greater", 0xd8, 0xd1, 0x037f, '4000:c000000000000000', '4000:8000000000000000', '', 0x3000, 0x0fff, '4000:c000000000000000', '4000:8000000000000000', ''],
  ["fcom equal zeros", 0xd8, 0xd1, 0x037f, '8000:0000000000000000', '0000:0000000000000000', '', 0x7000, 0x5fff, '8000:0000000000000000', '0000:0000000000000000', ''],
  ["fcom qnan invalid", 0xd8, 0xd1, 0x037f, '7fff:c000000000001234', '4000:8000000000000000', '', 0x7501, 0x2fff, '7fff:c000000000001234', '4000:8000000000000000', ''],
  ["fucom qnan quiet", 0xdd, 0xe1, 0x037f, '7fff:c000000000001234', '4000:8000000000000000', '', 0x7500, 0x2fff, '7fff:c000000000001234', '4000:8000000000000000', ''],
  ["fucom snan invalid", 0xdd, 0xe1, 0x037f, '7fff:8000000000001234', '4000:8000000000000000', '', 0x7501, 0x2fff, '7fff:8000000000001234', '4000:8000000000000000', ''],
  ["fcompp", 0xde, 0xd9, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x0100, 0xffff, 'empty', 'empty', ''],
  ["fucompp unordered", 0xda, 0xe9, 0x037f, '7fff:c000000000001234', '4000:8000000000000000', '', 0x4500, 0xffff, 'empty', 'empty', ''],
  ["fcom m32 -inf", 0xd8, 0x10, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '000080ff000000000000000000000000', 0x3000, 0x0fff, '3fff:8000000000000000', '4000:8000000000000000', '000080ff000000000000000000000000'],
  ["ficomp m16 equal", 0xde, 0x18, 0x037f, '4000:c000000000000000', '4000:8000000000000000', '03000000000000000000000000000000', 0x7800, 0x3fff, '4000:8000000000000000', 'empty', '03000000000000000000000000000000'],
  ["ftst negative", 0xd9, 0xe4, 0x037f, 'bfff:8000000000000000', '4000:8000000000000000', '', 0x3100, 0x0fff, 'bfff:8000000000000000', '4000:8000000000000000', ''],
  ["fxam zero", 0xd9, 0xe5, 0x037f, '0000:0000000000000000', '3fff:8000000000000000', '', 0x7000, 0x1fff, '0000:0000000000000000', '3fff:8000000000000000', ''],
  ["fxam -zero", 0xd9, 0xe5, 0x037f, '8000:0000000000000000', '3fff:8000000000000000', '', 0x7200, 0x1fff, '8000:0000000000000000', '3fff:8000000000000000', ''],
  ["fxam denormal", 0xd9, 0xe5, 0x037f, '0000:0000000000000001', '3fff:8000000000000000', '', 0x7400, 0x2fff, '0000:0000000000000001', '3fff:8000000000000000', ''],
  ["fxam normal", 0xd9, 0xe5, 0x037f, '3fff:8000000000000000', '3fff:8000000000000000', '', 0x3400, 0x0fff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fxam inf", 0xd9, 0xe5, 0x037f, '7fff:8000000000000000', '3fff:8000000000000000', '', 0x3500, 0x2fff, '7fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fxam nan", 0xd9, 0xe5, 0x037f, '7fff:c000000000001234', '3fff:8000000000000000', '', 0x3100, 0x2fff, '7fff:c000000000001234', '3fff:8000000000000000', ''],
  ["fxam unsupported", 0xd9, 0xe5, 0x037f, '3fff:4000000000000000', '3fff:8000000000000000', '', 0x3000, 0x2fff, '3fff:4000000000000000', '3fff:8000000000000000', ''],
  ["fxam negative", 0xd9, 0xe5, 0x037f, 'c000:8000000000000000', '3fff:8000000000000000', '', 0x3600, 0x0fff, 'c000:8000000000000000', '3fff:8000000000000000', ''],
  ["fld const 0 near", 0xd9, 0xe8, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fld const 0 down", 0xd9, 0xe8, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fld const 0 up", 0xd9, 0xe8, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fld const 0 zero", 0xd9, 0xe8, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:8000000000000000', '3fff:8000000000000000', ''],
  ["fld const 1 near", 0xd9, 0xe9, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:d49a784bcd1b8afe', '3fff:8000000000000000', ''],
  ["fld const 1 down", 0xd9, 0xe9, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:d49a784bcd1b8afe', '3fff:8000000000000000', ''],
  ["fld const 1 up", 0xd9, 0xe9, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:d49a784bcd1b8aff', '3fff:8000000000000000', ''],
  ["fld const 1 zero", 0xd9, 0xe9, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:d49a784bcd1b8afe', '3fff:8000000000000000', ''],
  ["fld const 2 near", 0xd9, 0xea, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:b8aa3b295c17f0bc', '3fff:8000000000000000', ''],
  ["fld const 2 down", 0xd9, 0xea, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:b8aa3b295c17f0bb', '3fff:8000000000000000', ''],
  ["fld const 2 up", 0xd9, 0xea, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:b8aa3b295c17f0bc', '3fff:8000000000000000', ''],
  ["fld const 2 zero", 0xd9, 0xea, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3fff:b8aa3b295c17f0bb', '3fff:8000000000000000', ''],
  ["fld const 3 near", 0xd9, 0xeb, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:c90fdaa22168c235', '3fff:8000000000000000', ''],
  ["fld const 3 down", 0xd9, 0xeb, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:c90fdaa22168c234', '3fff:8000000000000000', ''],
  ["fld const 3 up", 0xd9, 0xeb, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:c90fdaa22168c235', '3fff:8000000000000000', ''],
  ["fld const 3 zero", 0xd9, 0xeb, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '4000:c90fdaa22168c234', '3fff:8000000000000000', ''],
  ["fld const 4 near", 0xd9, 0xec, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffd:9a209a84fbcff799', '3fff:8000000000000000', ''],
  ["fld const 4 down", 0xd9, 0xec, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffd:9a209a84fbcff798', '3fff:8000000000000000', ''],
  ["fld const 4 up", 0xd9, 0xec, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffd:9a209a84fbcff799', '3fff:8000000000000000', ''],
  ["fld const 4 zero", 0xd9, 0xec, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffd:9a209a84fbcff798', '3fff:8000000000000000', ''],
  ["fld const 5 near", 0xd9, 0xed, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffe:b17217f7d1cf79ac', '3fff:8000000000000000', ''],
  ["fld const 5 down", 0xd9, 0xed, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffe:b17217f7d1cf79ab', '3fff:8000000000000000', ''],
  ["fld const 5 up", 0xd9, 0xed, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffe:b17217f7d1cf79ac', '3fff:8000000000000000', ''],
  ["fld const 5 zero", 0xd9, 0xed, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x03ff, '3ffe:b17217f7d1cf79ab', '3fff:8000000000000000', ''],
  ["fld const 6 near", 0xd9, 0xee, 0x037f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x07ff, '0000:0000000000000000', '3fff:8000000000000000', ''],
  ["fld const 6 down", 0xd9, 0xee, 0x077f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x07ff, '0000:0000000000000000', '3fff:8000000000000000', ''],
  ["fld const 6 up", 0xd9, 0xee, 0x0b7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x07ff, '0000:0000000000000000', '3fff:8000000000000000', ''],
  ["fld const 6 zero", 0xd9, 0xee, 0x0f7f, '3fff:8000000000000000', '4000:8000000000000000', '', 0x2800, 0x07ff, '0000:0000000000000000', '3fff:8000000000000000', ''],
  ["fiadd m32", 0xda, 0x00, 0x037f, '3ffe:8000000000000000', '3fff:8000000000000000', 'feffffff000000000000000000000000', 0x3000, 0x0fff, 'bfff:c000000000000000', '3fff:8000000000000000', 'feffffff000000000000000000000000'],
  ["fidivr m16", 0xde, 0x38, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '07000000000000000000000000000000', 0x3020, 0x0fff, '4000:9555555555555555', '3fff:8000000000000000', '07000000000000000000000000000000'],
  ["fsubr m64", 0xdc, 0x28, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '000000000000f03f0000000000000000', 0x3000, 0x0fff, 'c000:8000000000000000', '3fff:8000000000000000', '000000000000f03f0000000000000000'],
  ["fdivr st(1),st (DC F1)", 0xdc, 0xf1, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3000, 0x0fff, '4000:c000000000000000', '4000:c000000000000000', ''],
  ["fdiv st(1),st (DC F9)", 0xdc, 0xf9, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3220, 0x0fff, '4000:c000000000000000', '3ffd:aaaaaaaaaaaaaaab', ''],
  ["fsubrp (DE E1)", 0xde, 0xe1, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3800, 0x3fff, '4000:8000000000000000', 'empty', ''],
  ["fsubp (DE E9)", 0xde, 0xe9, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3800, 0x3fff, 'c000:8000000000000000', 'empty', ''],
  ["fchs", 0xd9, 0xe0, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3000, 0x0fff, 'c000:c000000000000000', '3fff:8000000000000000', ''],
  ["fabs", 0xd9, 0xe1, 0x037f, 'c000:c000000000000000', '3fff:8000000000000000', '', 0x3000, 0x0fff, '4000:c000000000000000', '3fff:8000000000000000', ''],
  ["fxch", 0xd9, 0xc9, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3000, 0x0fff, '3fff:8000000000000000', '4000:c000000000000000', ''],
  ["fld st(1)", 0xd9, 0xc1, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x2800, 0x03ff, '3fff:8000000000000000', '4000:c000000000000000', ''],
  ["fstp1 (D9 D9)", 0xd9, 0xd9, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3800, 0x3fff, '4000:c000000000000000', 'empty', ''],
  ["ffreep", 0xdf, 0xc1, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3800, 0xffff, 'empty', 'empty', ''],
  ["fdecstp", 0xd9, 0xf6, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x2800, 0x0fff, 'empty', '4000:c000000000000000', ''],
  ["fincstp", 0xd9, 0xf7, 0x037f, '4000:c000000000000000', '3fff:8000000000000000', '', 0x3800, 0x0fff, '3fff:8000000000000000', 'empty', ''],
  ["fnclex", 0xdb, 0xe2, 0x037f, '7fff:8000000000001234', '3fff:8000000000000000', '', 0x3000, 0x2fff, '7fff:8000000000001234', '3fff:8000000000000000', ''],
];

test('hardware vectors: results, status word, tag word and memory bit for bit', () => {
  for (const [name, op, modrm, cw, st0, st1, mem, sw, tw, r0, r1, rmem] of VECTORS) {
    const { f, bus } = make();
    fld(f, bus, st1);
    fld(f, bus, st0);
    fldcw(f, bus, cw);
    bus.setHex(OPND, mem || '00'.repeat(16));
    f.execute(op, modrm, OPND, true, false);
    const got = `sw=${f.sw.toString(16)} tw=${f.tw.toString(16)} st0=${st(f, 0)} st1=${st(f, 1)}` + (rmem ? ` mem=${bus.hex(OPND, 16)}` : '');
    const want = `sw=${sw.toString(16)} tw=${tw.toString(16)} st0=${r0} st1=${r1}` + (rmem ? ` mem=${rmem}` : '');
    assert.equal(got, want, name);
  }
});

test('power-up and FNINIT states', () => {
  const bus = new MockBus();
  const f = new Fpu(bus);
  assert.equal(f.cw, 0x0040);
  assert.equal(f.sw, 0);
  assert.equal(f.tw, 0x5555);
  assert.equal(st(f, 0), '0000:0000000000000000');
  f.execute(0xdb, 0xe3, 0, true, false);
  assert.equal(f.cw, 0x037f);
  assert.equal(f.sw, 0);
  assert.equal(f.tw, 0xffff);
});

test('FLD m80 / FSTP m80 reproduce every encoding bit for bit', () => {
  const values = [
    '0000:0000000000000000', '8000:0000000000000000', '0000:0000000000000001', '8000:7fffffffffffffff',
    '0000:8000000000000001', '7fff:8000000000000000', 'ffff:8000000000000000', '7fff:c000000000000000',
    'ffff:c0000000deadbeef', '7fff:8000000000000001', '7fff:0000000000000000', '7fff:4000000000000000',
    '3fff:0000000000000001', '7ffe:ffffffffffffffff', '0001:8000000000000000', 'c03e:8000000000000000',
  ];
  for (const v of values) {
    const { f, bus } = make();
    fld(f, bus, v);
    assert.equal(f.sw & 0x3f, 0, `no exception loading ${v}`);
    f.execute(0xdb, 0x38, OPND, true, false); // FSTP m80
    const [se, hi, lo] = parse(v);
    assert.equal(bus.read32(OPND) | 0, lo, v);
    assert.equal(bus.read32(OPND + 4) | 0, hi, v);
    assert.equal(bus.read16(OPND + 8), se, v);
    assert.equal(f.sw & 0x3f, 0, `no exception storing ${v}`);
    assert.ok(f.stEmpty(0));
  }
});

test('float32/float64/integer round trips of edge values', () => {
  const f32 = [0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc12345, 0x3eaaaaab];
  for (const v of f32) {
    const { f, bus } = make();
    bus.write32(OPND, v);
    f.execute(0xd9, 0x00, OPND, true, false); // FLD m32
    f.execute(0xd9, 0x18, OPND + 8, true, false); // FSTP m32
    assert.equal(bus.read32(OPND + 8), v >>> 0, v.toString(16));
  }
  const f64: [number, number][] = [[0, 0], [0x80000000, 0], [0, 1], [0x000fffff, 0xffffffff], [0x7fefffff, 0xffffffff], [0x7ff00000, 0], [0xfff80000, 0], [0x7ff80000, 0x12345678], [0x3fd55555, 0x55555555]];
  for (const [hi, lo] of f64) {
    const { f, bus } = make();
    bus.write32(OPND, lo);
    bus.write32(OPND + 4, hi);
    f.execute(0xdd, 0x00, OPND, true, false); // FLD m64
    f.execute(0xdd, 0x18, OPND + 8, true, false); // FSTP m64
    assert.equal(bus.read32(OPND + 8), lo >>> 0);
    assert.equal(bus.read32(OPND + 12), hi >>> 0);
  }
  const i64: [number, number][] = [[0, 0], [0xffffffff, 0xffffffff], [0x7fffffff, 0xffffffff], [0x80000000, 0], [0x12345678, 0x9abcdef0]];
  for (const [hi, lo] of i64) {
    const { f, bus } = make();
    bus.write32(OPND, lo);
    bus.write32(OPND + 4, hi);
    f.execute(0xdf, 0x28, OPND, true, false); // FILD m64
    f.execute(0xdf, 0x38, OPND + 8, true, false); // FISTP m64
    assert.equal(bus.read32(OPND + 8), lo >>> 0);
    assert.equal(bus.read32(OPND + 12), hi >>> 0);
    assert.equal(f.sw & 0x3f, 0);
  }
  for (const v of [0, 1, -1, 32767, -32768, 12345]) {
    const { f, bus } = make();
    bus.write16(OPND, v & 0xffff);
    f.execute(0xdf, 0x00, OPND, true, false); // FILD m16
    f.execute(0xdf, 0x18, OPND + 2, true, false); // FISTP m16
    assert.equal(bus.read16(OPND + 2), v & 0xffff);
  }
});

test('stack overflow and underflow', () => {
  const { f, bus } = make();
  for (let i = 0; i < 8; i++) f.execute(0xd9, 0xe8, 0, true, false); // FLD1 x8
  assert.equal(f.tw, 0);
  f.execute(0xd9, 0xee, 0, true, false); // FLDZ onto a full stack
  assert.equal(f.sw & 0x3ff, 0x241, 'IE+SF, C1=1');
  assert.equal(st(f, 0), 'ffff:c000000000000000', 'masked response pushes the indefinite');
  // Underflow: FADD with an empty ST(1) after FNINIT.
  const u = make();
  fld(u.f, u.bus, ONE);
  u.f.execute(0xd8, 0xc1, 0, true, false);
  assert.equal(u.f.sw & 0x3ff, 0x041, 'IE+SF, C1=0');
  assert.equal(st(u.f, 0), 'ffff:c000000000000000');
  // Unmasked: nothing changes but ES/B.
  const v = make();
  fldcw(v.f, v.bus, 0x37e);
  for (let i = 0; i < 8; i++) v.f.execute(0xd9, 0xe8, 0, true, false);
  const top = v.f.sw & 0x3800;
  v.f.execute(0xd9, 0xee, 0, true, false);
  assert.equal(v.f.sw & 0x3800, top);
  assert.equal(v.f.sw & 0x80c1, 0x80c1, 'B, ES, SF, IE');
  assert.equal(st(v.f, 0), '3fff:8000000000000000');
  void bus;
});

test('waiting instructions report a pending exception; non-waiting ones do not', () => {
  const { f, bus } = make();
  fldcw(f, bus, 0x37b); // ZE unmasked
  fld(f, bus, ZERO_);
  fld(f, bus, ONE);
  f.execute(0xd8, 0xf1, 0, true, false); // 1/0 -> ZE unmasked, ST0 unchanged
  assert.equal(f.sw & 0x8084, 0x8084);
  assert.equal(st(f, 0), ONE);
  assert.equal(bus.errors, 0);
  f.instrIp = 0x1234;
  f.execute(0xd9, 0x38, OPND, true, false); // FNSTCW: no wait
  f.execute(0xdd, 0x38, OPND, true, false); // FNSTSW m16: no wait
  f.execute(0xdf, 0xe0, 0, true, false); // FNSTSW AX
  assert.equal(bus.errors, 0);
  assert.equal(bus.ax, f.sw);
  bus.throwOnError = true;
  assert.throws(() => f.execute(0xd9, 0xe8, 0, true, false), (e) => e === MF); // FLD1 waits: #MF, not executed
  assert.equal(st(f, 0), ONE);
  assert.notEqual(f.fip, 0x1234, 'pointers of the faulting instruction are preserved for the handler');
  assert.throws(() => f.fwait(), (e) => e === MF);
  bus.throwOnError = false;
  f.fwait(); // IRQ 13 path: returns
  assert.equal(bus.errors, 3);
  f.execute(0xdb, 0xe2, 0, true, false); // FNCLEX
  assert.equal(f.sw & 0x80ff, 0);
  f.fwait();
  assert.equal(bus.errors, 3);
  // FLDCW that unmasks an already-set flag makes it pending.
  const g = make();
  fld(g.f, g.bus, ZERO_);
  fld(g.f, g.bus, ONE);
  g.f.execute(0xd8, 0xf1, 0, true, false); // masked ZE
  assert.equal(g.f.sw & 0x80, 0);
  fldcw(g.f, g.bus, 0x37b);
  assert.equal(g.f.sw & 0x8080, 0x8080);
});
const ZERO_ = '0000:0000000000000000';

test('FCOMI/FUCOMI set ZF PF CF; FCMOVcc reads EFLAGS', () => {
  const { f, bus } = make();
  fld(f, bus, TWO);
  fld(f, bus, ONE);
  f.execute(0xdb, 0xf1, 0, true, false); // FCOMI ST0, ST1: 1 < 2
  assert.deepEqual(bus.zpc, [false, false, true]);
  f.execute(0xdb, 0xe9, 0, true, false); // FUCOMI
  assert.deepEqual(bus.zpc, [false, false, true]);
  f.execute(0xdb, 0xf0, 0, true, false); // FCOMI ST0, ST0
  assert.deepEqual(bus.zpc, [true, false, false]);
  f.execute(0xdf, 0xf1, 0, true, false); // FCOMIP
  assert.deepEqual(bus.zpc, [false, false, true]);
  assert.equal(st(f, 0), TWO);
  const g = make();
  fld(g.f, g.bus, '7fff:c000000000000000');
  fld(g.f, g.bus, ONE);
  g.f.execute(0xdb, 0xe9, 0, true, false); // FUCOMI with QNaN: unordered, no IE
  assert.deepEqual(g.bus.zpc, [true, true, true]);
  assert.equal(g.f.sw & 1, 0);
  g.f.execute(0xdb, 0xf1, 0, true, false); // FCOMI with QNaN: IE
  assert.equal(g.f.sw & 1, 1);
  // FCMOVB (CF) / FCMOVNE (!ZF) / FCMOVU (PF)
  const h = make();
  fld(h.f, h.bus, THREE);
  fld(h.f, h.bus, ONE);
  h.bus.eflags = 0x2;
  h.f.execute(0xda, 0xc1, 0, true, false); // FCMOVB: CF=0, no move
  assert.equal(st(h.f, 0), ONE);
  h.bus.eflags = 0x3;
  h.f.execute(0xda, 0xc1, 0, true, false); // CF=1, move
  assert.equal(st(h.f, 0), THREE);
  h.f.execute(0xd9, 0xe8, 0, true, false);
  h.bus.eflags = 0x6;
  h.f.execute(0xda, 0xd9, 0, true, false); // FCMOVU: PF=1
  assert.equal(st(h.f, 0), THREE);
  h.f.execute(0xd9, 0xe8, 0, true, false);
  h.bus.eflags = 0x42;
  h.f.execute(0xdb, 0xc9, 0, true, false); // FCMOVNE: ZF=1, no move
  assert.equal(st(h.f, 0), ONE);
});

test('tag word encoding and FFREE', () => {
  const { f, bus } = make();
  fld(f, bus, '7fff:8000000000000000'); // special
  fld(f, bus, ZERO_); // zero
  fld(f, bus, ONE); // valid
  fld(f, bus, '0000:0000000000000001'); // denormal: special
  // physical 7..4 hold inf, zero, one, denormal
  assert.equal(f.tw, 0x92ff, 'R7 special, R6 zero, R5 valid, R4 special, R0-R3 empty');
  f.execute(0xdd, 0xc1, 0, true, false); // FFREE ST(1)
  assert.equal(f.tw >> 8, 0b10_01_11_10);
  assert.equal(f.sw & 0x3800, 4 << 11, 'FFREE does not move TOP');
});

function envFixture(): { f: Fpu; bus: MockBus } {
  const { f, bus } = make();
  f.instrCs = 0x1234;
  f.instrIp = 0x5678;
  f.dataSeg = 0x9abc;
  f.dataOff = 0x0def;
  bus.write32(OPND, 0x3f800000);
  f.execute(0xd9, 0x00, OPND, true, false); // FLD m32 1.0: FOP = 0x100 | 0x00
  f.execute(0xdb, 0xe2, 0, true, false);
  return { f, bus };
}

test('FSTENV layouts: 32-bit protected, 16-bit protected, 32-bit real, 16-bit real', () => {
  let { f, bus } = envFixture();
  f.execute(0xd9, 0x30, 0x400, true, false);
  assert.equal(bus.hex(0x400, 28), '7f030000' + '00380000' + 'ff3f0000' + '78560000' + '34120001' + 'ef0d0000' + 'bc9a0000');
  assert.equal(f.cw, 0x37f, 'FNSTENV masks all exceptions (already masked here)');
  ({ f, bus } = envFixture());
  f.execute(0xd9, 0x30, 0x400, false, false);
  assert.equal(bus.hex(0x400, 14), '7f03' + '0038' + 'ff3f' + '7856' + '3412' + 'ef0d' + 'bc9a');
  ({ f, bus } = envFixture());
  f.execute(0xd9, 0x30, 0x400, true, true);
  // linear IP = 0x12340 + 0x5678 = 0x179b8; linear DP = 0x9abc0 + 0xdef = 0x9b9af
  assert.equal(bus.hex(0x400, 28), '7f030000' + '00380000' + 'ff3f0000' + 'b8790000' + '00110000' + 'afb90000' + '00900000');
  ({ f, bus } = envFixture());
  f.execute(0xd9, 0x30, 0x400, false, true);
  assert.equal(bus.hex(0x400, 14), '7f03' + '0038' + 'ff3f' + 'b879' + '0011' + 'afb9' + '0090');
  // FLDENV reads them back in each layout.
  for (const [o32, real, n] of [[true, false, 28], [false, false, 14], [true, true, 28], [false, true, 14]] as const) {
    ({ f, bus } = envFixture());
    fldcw(f, bus, 0x0c7b);
    f.execute(0xd9, 0x30, 0x400, o32, real);
    const img = bus.hex(0x400, n);
    const g = envFixture(); // same register contents, so the recomputed tags agree
    g.bus.setHex(0x400, img);
    g.f.execute(0xd9, 0x20, 0x400, o32, real); // FLDENV
    g.f.execute(0xd9, 0x30, 0x500, o32, real);
    assert.equal(g.bus.hex(0x500, n), img, `layout o32=${o32} real=${real}`);
    assert.equal(g.f.tw, f.tw);
  }
});

test('FNSAVE / FRSTOR round trip (both sizes) and FNSAVE reinitialises', () => {
  for (const o32 of [true, false]) {
    const { f, bus } = make();
    fldcw(f, bus, 0x0a7e);
    fld(f, bus, '7fff:c0000000deadbeef');
    fld(f, bus, '0000:0000000000000001');
    fld(f, bus, ONE);
    f.execute(0xd9, 0xf6, 0, true, false); // FDECSTP: ST0 empty
    const before = f.saveState();
    f.execute(0xdd, 0x30, 0x400, o32, false); // FNSAVE
    assert.equal(f.cw, 0x37f);
    assert.equal(f.tw, 0xffff);
    const n = o32 ? 108 : 94;
    const img = bus.hex(0x400, n);
    f.execute(0xdd, 0x20, 0x400, o32, false); // FRSTOR
    const after = f.saveState();
    assert.equal(after.cw, before.cw);
    assert.equal(after.sw, before.sw);
    assert.equal(after.empty, before.empty);
    for (let p = 0; p < 8; p++) {
      if ((before.empty >> p) & 1) continue;
      assert.equal(after.regSe[p], before.regSe[p]);
      assert.equal(after.regHi[p], before.regHi[p]);
      assert.equal(after.regLo[p], before.regLo[p]);
    }
    f.execute(0xdd, 0x30, 0x600, o32, false);
    assert.equal(bus.hex(0x600, n), img);
  }
});

test('a faulting store leaves the FPU unchanged (restartable)', () => {
  const { f, bus } = make();
  fld(f, bus, THREE);
  const s = f.saveState();
  bus.faultAt = 0x300;
  assert.throws(() => f.execute(0xdd, 0x18, 0x2fc, true, false), (e) => e === FAULT); // FSTP m64 straddling
  assert.deepEqual(f.saveState(), { ...s, fip: f.fip, fop: f.fop, fdp: f.fdp, fds: f.fds, fcs: f.fcs });
  assert.equal(st(f, 0), THREE);
  assert.throws(() => f.execute(0xdd, 0x30, 0x2c0, true, false), (e) => e === FAULT); // FNSAVE
  assert.equal(st(f, 0), THREE, 'FNSAVE did not reinitialise');
});

test('FXSAVE / FXRSTOR', () => {
  const { f, bus } = make();
  fld(f, bus, THREE);
  fld(f, bus, ONE);
  bus.mem.fill(0xee, 0x1000, 0x1200);
  f.fxsave(0x1000);
  assert.equal(bus.read16(0x1000), 0x37f);
  assert.equal(bus.read16(0x1002), 0x3000);
  assert.equal(bus.read8(0x1004), 0xc0, 'abridged tag: physical 6 and 7 in use');
  assert.equal(bus.read32(0x1018), 0, 'MXCSR');
  assert.equal(bus.hex(0x1020, 10), '0000000000000080ff3f');
  assert.equal(bus.hex(0x1030, 10), '000000000000000c0040'.replace('000c', '00c0'));
  assert.equal(bus.read8(0x1120), 0xee, 'bytes past the XMM area untouched');
  const g = make();
  g.bus.mem.set(bus.mem.subarray(0x1000, 0x1200), 0x1000);
  g.f.fxrstor(0x1000);
  assert.equal(st(g.f, 0), ONE);
  assert.equal(st(g.f, 1), THREE);
  assert.equal(g.f.tw, f.tw);
  assert.equal(g.f.sw, f.sw);
});

test('isValid: reserved encodings and aliases', () => {
  const { f } = make();
  for (const [op, m, v] of [
    [0xd9, 0xd0, true], [0xd9, 0xd1, false], [0xd9, 0xd8, true], [0xd9, 0xe2, false], [0xd9, 0xef, false],
    [0xda, 0xe9, true], [0xda, 0xe8, false], [0xdb, 0xe4, true], [0xdb, 0xe5, false], [0xdb, 0xf8, false],
    [0xdd, 0xc8, true], [0xdd, 0xf0, false], [0xde, 0xd9, true], [0xde, 0xd8, false], [0xde, 0xd0, true],
    [0xdf, 0xe0, true], [0xdf, 0xe1, false], [0xdf, 0xc0, true], [0xdf, 0xf8, false], [0xd9, 0x08, false],
    [0xdb, 0x08, false], [0xdb, 0x20, false], [0xdd, 0x28, false], [0xdc, 0xd0, true], [0xdc, 0xd8, true],
  ] as const) assert.equal(f.isValid(op, m), v, `${op.toString(16)} ${m.toString(16)}`);
  f.sse3 = true;
  assert.equal(f.isValid(0xdb, 0x08), true);
});

test('FISTTP truncates (SSE3 models)', () => {
  const { f, bus } = make();
  f.sse3 = true;
  fld(f, bus, 'c000:e000000000000000'); // -3.5
  f.execute(0xdb, 0x08, OPND, true, false);
  assert.equal(bus.read32(OPND) | 0, -3);
  assert.ok(f.stEmpty(0));
});

test('transcendentals: special values exact, finite values close to the true result', () => {
  const close = (op: number, args: string[], want: number, tol = 1e-15): void => {
    const { f, bus } = make();
    for (const a of args) fld(f, bus, a);
    f.execute(0xd9, op, 0, true, false);
    const got = f.st(0);
    assert.ok(Math.abs(got - want) <= Math.abs(want) * tol, `${op.toString(16)}: ${got} vs ${want}`);
  };
  const PI = '4000:c90fdaa22168c235';
  close(0xfe, ['3fff:8000000000000000'], Math.sin(1)); // FSIN
  close(0xff, ['3fff:8000000000000000'], Math.cos(1)); // FCOS
  close(0xf0, ['3ffe:8000000000000000'], Math.SQRT2 - 1); // F2XM1(0.5)
  close(0xf1, ['4000:c000000000000000', '4002:a000000000000000'], 3 * Math.log2(10)); // FYL2X: ST1=3, ST0=10
  close(0xf3, ['3fff:8000000000000000', '3fff:8000000000000000'], Math.PI / 4); // FPATAN(1,1)
  close(0xf9, ['3fff:8000000000000000', '3ffe:8000000000000000'], Math.log2(1.5)); // FYL2XP1: ST1=1, ST0=0.5
  const { f, bus } = make();
  fld(f, bus, PI);
  f.execute(0xd9, 0xf2, 0, true, false); // FPTAN
  assert.equal(st(f, 0), ONE);
  assert.ok(Math.abs(f.st(1)) < 1e-15);
  f.execute(0xdd, 0xd8, 0, true, false);
  fld(f, bus, '403e:8000000000000000'); // 2^63: out of range
  f.execute(0xd9, 0xfe, 0, true, false);
  assert.equal(f.sw & 0x400, 0x400, 'C2 set');
  assert.equal(st(f, 0), '403e:8000000000000000');
  const g = make();
  fld(g.f, g.bus, '7fff:8000000000000000');
  g.f.execute(0xd9, 0xfe, 0, true, false); // FSIN(inf): invalid
  assert.equal(st(g.f, 0), 'ffff:c000000000000000');
  assert.equal(g.f.sw & 1, 1);
  const h = make();
  fld(h.f, h.bus, ONE);
  fld(h.f, h.bus, ZERO_);
  h.f.execute(0xd9, 0xf1, 0, true, false); // FYL2X(x=0, y=1): ZE, -inf
  assert.equal(st(h.f, 0), 'ffff:8000000000000000');
  assert.equal(h.f.sw & 4, 4);
  const k = make();
  fld(k.f, k.bus, ZERO_);
  k.f.execute(0xd9, 0xfb, 0, true, false); // FSINCOS(0)
  assert.equal(st(k.f, 0), ONE);
  assert.equal(st(k.f, 1), ZERO_);
});

test('saveState -> new Fpu -> loadState continues identically', () => {
  const run = (f: Fpu, bus: MockBus): string => {
    fld(f, bus, '3ffd:aaaaaaaaaaaaaaab');
    f.execute(0xd8, 0xc9, 0, true, false);
    f.execute(0xd9, 0xfa, 0, true, false);
    f.execute(0xdd, 0x30, 0x800, true, false);
    return bus.hex(0x800, 108);
  };
  const a = make();
  fldcw(a.f, a.bus, 0x0b7f);
  fld(a.f, a.bus, THREE);
  fld(a.f, a.bus, '0000:0000000000000003');
  const s = a.f.saveState();
  const b = new MockBus();
  const fb = new Fpu(b);
  fb.loadState(s);
  assert.equal(run(fb, b), run(a.f, a.bus));
});
