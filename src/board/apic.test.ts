// The APIC wiring of the PC: ISA IRQs reach the I/O APIC (IRQ0 on pin 2),
// the local APIC drives the CPU, IA32_APIC_BASE maps, moves and disables the
// APIC page, CPUID follows it, and the direct-boot MADT and MP table describe it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from './machine.js';
import { Seg } from '../cpu/consts.js';
import { buildAcpiTables } from './acpi.js';
import { buildMpTables } from './mptable.js';

const LAPIC = 0xfee00000;
const IOAPIC = 0xfec00000;

/** A machine whose firmware is all HLT: the tests drive it through its buses and small code snippets. */
function machine(): Machine {
  return new Machine({ memoryBytes: 4 << 20, bios: new Uint8Array(64 * 1024).fill(0xf4) });
}

/** Run real-mode code placed at 0x1000 until it halts (interrupts off). */
function runCode(m: Machine, code: number[]): void {
  m.mem.mem.set(code, 0x1000);
  const cpu = m.cpu;
  cpu.sreg[Seg.CS] = 0;
  cpu.segBase[Seg.CS] = 0;
  cpu.eip = 0x1000;
  cpu.halted = false;
  cpu.flushTlb(true);
  for (let i = 0; i < 10 && m.runSlice(1000) === 'running'; i++);
  assert.equal(m.stopReason, 'halt');
  m.stopReason = 'running';
}

const rd = (m: Machine, a: number): number => m.mem.read32(a) >>> 0;
/** Advance through timer deadlines until the CPU's INTR rises (at most a few: the PIT's output has two edges per period). */
const untilIntr = (m: Machine): void => {
  for (let i = 0; i < 4 && !m.cpu.intrLine; i++) m.clock.advanceTo(m.clock.nextDeadline());
};
const ioapicWrite = (m: Machine, reg: number, v: number): void => {
  m.mem.write32(IOAPIC, reg);
  m.mem.write32(IOAPIC + 0x10, v);
};

// mov ecx, 0x1b; rdmsr; <op>; wrmsr; mov eax, 1; cpuid; hlt
const MOV_ECX_1B = [0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00];
const RDMSR = [0x0f, 0x32];
const WRMSR = [0x0f, 0x30];
const CPUID_1 = [0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2];
const HLT = [0xf4];
const andEax = (v: number): number[] => [0x66, 0x25, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const movEax = (v: number): number[] => [0x66, 0xb8, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

test('the local APIC page at 0xFEE00000 and the I/O APIC at 0xFEC00000 answer; CPUID reports the APIC', () => {
  const m = machine();
  assert.equal(rd(m, LAPIC + 0x30), 0x00050014);
  m.mem.write32(IOAPIC, 1);
  assert.equal(rd(m, IOAPIC + 0x10), 0x00170011);
  runCode(m, [...CPUID_1, ...HLT]);
  assert.equal(m.cpu.reg32[2] & 0x200, 0x200, 'CPUID.1 EDX.APIC');
  assert.equal(m.cpu.reg32[3] >>> 24, 0, 'initial APIC ID 0');
  runCode(m, [...MOV_ECX_1B, ...RDMSR, ...HLT]);
  assert.equal(m.cpu.reg32[0] >>> 0, 0xfee00900, 'IA32_APIC_BASE: 0xFEE00000, BSP, enabled');
});

test('the PIT (IRQ0) reaches the CPU through I/O APIC pin 2 and the local APIC; the 8259 passes through until then', () => {
  const m = machine();
  // 8259: vectors 0x08/0x70, everything unmasked (as a BIOS leaves it)
  for (const [p, v] of [[0x20, 0x11], [0x21, 0x08], [0x21, 0x04], [0x21, 0x01], [0xa0, 0x11], [0xa1, 0x70], [0xa1, 0x02], [0xa1, 0x01], [0x21, 0], [0xa1, 0]]) {
    m.io.write8[p](p, v);
  }
  // PIT channel 0, mode 2, count 1000
  m.io.write8[0x43](0x43, 0x34);
  m.io.write8[0x40](0x40, 0xe8);
  m.io.write8[0x40](0x40, 0x03);
  untilIntr(m);
  assert.equal(m.cpu.intrLine, true, 'APIC software-disabled: the 8259 drives INTR');
  assert.equal(m.cpu.pic!.acknowledge(), 0x08);
  m.io.write8[0x20](0x20, 0x20);
  // what Linux does: enable the APIC, mask LINT0, mask the 8259, route pin 2 to vector 0x30
  m.mem.write32(LAPIC + 0xf0, 0x1ff);
  m.mem.write32(LAPIC + 0x350, 0x10700);
  m.io.write8[0x21](0x21, 0xff);
  m.io.write8[0xa1](0xa1, 0xff);
  ioapicWrite(m, 0x10 + 2 * 2, 0x30);
  ioapicWrite(m, 0x11 + 2 * 2, 0);
  untilIntr(m);
  assert.equal(m.cpu.intrLine, true);
  assert.equal(m.cpu.pic!.acknowledge(), 0x30);
  assert.equal(m.cpu.intrLine, false);
  m.mem.write32(LAPIC + 0xb0, 0);
  ioapicWrite(m, 0x10 + 0 * 2, 0x31);
  untilIntr(m);
  assert.equal(m.cpu.pic!.acknowledge(), 0x30, 'pin 0 is not the PIT');
});

test('the local APIC timer interrupts the CPU in virtual time', () => {
  const m = machine();
  m.mem.write32(LAPIC + 0xf0, 0x1ff);
  m.mem.write32(LAPIC + 0x3e0, 0xb);
  m.mem.write32(LAPIC + 0x320, 0x20040);
  const t0 = m.clock.nowNs;
  m.mem.write32(LAPIC + 0x380, 100000);
  assert.equal(m.clock.nextDeadline(), t0 + 100000);
  m.clock.advanceTo(t0 + 100000);
  assert.equal(m.cpu.intrLine, true);
  assert.equal(m.cpu.pic!.acknowledge(), 0x40);
});

test('IA32_APIC_BASE moves the APIC page and, cleared, unmaps it, hides CPUID.APIC and hands INTR to the 8259', () => {
  const m = machine();
  runCode(m, [...MOV_ECX_1B, ...movEax(0xfed00900), 0x66, 0x31, 0xd2, ...WRMSR, ...HLT]);
  assert.equal(rd(m, 0xfed00030), 0x00050014, 'moved');
  assert.equal(rd(m, LAPIC + 0x30), 0xffffffff, 'the old page decodes to nothing again');
  runCode(m, [...MOV_ECX_1B, ...RDMSR, ...andEax(0xfffff7ff), ...WRMSR, ...CPUID_1, ...HLT]);
  assert.equal(m.cpu.reg32[2] & 0x200, 0, 'CPUID.APIC cleared while disabled');
  assert.equal(rd(m, 0xfed00030), 0xffffffff, 'unmapped');
  assert.equal(m.lapic.globalEnabled, false);
  // a P6-class APIC stays disabled until RESET
  runCode(m, [...MOV_ECX_1B, ...movEax(0xfee00900), 0x66, 0x31, 0xd2, ...WRMSR, ...RDMSR, ...HLT]);
  assert.equal(m.cpu.reg32[0] >>> 0, 0xfee00100);
  m.io.write8[0x20](0x20, 0x11);
  m.io.write8[0x21](0x21, 0x20);
  m.io.write8[0x21](0x21, 0x04);
  m.io.write8[0x21](0x21, 0x01);
  m.io.write8[0x21](0x21, 0x00);
  m.io.write8[0x43](0x43, 0x34);
  m.io.write8[0x40](0x40, 0x10);
  m.io.write8[0x40](0x40, 0x00);
  untilIntr(m);
  assert.equal(m.cpu.intrLine, true, 'the 8259 drives INTR directly');
  assert.equal(m.cpu.pic!.acknowledge(), 0x20);
  m.cpu.halted = false;
  m.requestReset();
  m.runSlice(1);
  assert.equal(rd(m, LAPIC + 0x30), 0x00050014, 'RESET maps it at the default address again');
  assert.equal(m.lapic.globalEnabled, true);
});

test('IA32_APIC_BASE: reserved bits (x2APIC, bits 0-7, the high dword) raise #GP and change nothing', () => {
  const m = machine();
  // real-mode #GP handler (IVT entry 13) at 0:0x2000: HLT
  m.mem.write32(13 * 4, 0x2000);
  m.mem.mem[0x2000] = 0xf4;
  for (const [lo, hi] of [[0xfee00d00, 0], [0xfee00901, 0], [0xfee00900, 1]]) {
    runCode(m, [...MOV_ECX_1B, ...movEax(lo), 0x66, 0xba, hi & 0xff, 0, 0, 0, ...WRMSR, ...HLT]);
    assert.equal(m.cpu.eip, 0x2001, `#GP for ${lo.toString(16)}:${hi}`);
    assert.equal(m.cpu.apicBase >>> 0, 0xfee00900);
  }
});

test('direct-boot tables: the MADT lists the local APIC, the I/O APIC, IRQ0 -> GSI 2 and LINT1 NMI; the MP table agrees', () => {
  const acpi = buildAcpiTables(0x9fc00);
  const b = acpi.bytes;
  const dv = new DataView(b.buffer);
  let madt = -1;
  for (let i = 0; i + 4 <= b.length; i += 4) if (String.fromCharCode(...b.subarray(i, i + 4)) === 'APIC') madt = i;
  assert.ok(madt > 0);
  const len = dv.getUint32(madt + 4, true);
  assert.equal(b.subarray(madt, madt + len).reduce((s, x) => s + x, 0) & 0xff, 0, 'checksum');
  assert.equal(dv.getUint32(madt + 36, true), LAPIC);
  assert.equal(dv.getUint32(madt + 40, true), 1, 'PCAT_COMPAT');
  const entries: number[][] = [];
  for (let at = madt + 44; at < madt + len; at += b[at + 1]) entries.push([...b.subarray(at, at + b[at + 1])]);
  assert.deepEqual(entries[0], [0, 8, 0, 0, 1, 0, 0, 0], 'processor local APIC 0, enabled');
  assert.deepEqual(entries[1], [1, 12, 0, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0], 'I/O APIC 0 at 0xFEC00000, GSI base 0');
  assert.deepEqual(entries[2], [2, 10, 0, 0, 2, 0, 0, 0, 0, 0], 'IRQ0 -> GSI 2');
  assert.ok(entries.some((e) => e.join() === [2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0].join()), 'SCI: IRQ9 level, active high');
  assert.deepEqual(entries[entries.length - 1], [4, 6, 0xff, 0, 0, 1], 'LINT1 NMI on every processor');
  // RSDT points at it
  const rsdt = dv.getUint32(acpi.rsdp - 0x9fc00 + 16, true) - 0x9fc00;
  assert.equal(dv.getUint32(rsdt + 40, true), 0x9fc00 + madt);

  const mp = buildMpTables(0x9fdc0);
  const mv = new DataView(mp.buffer);
  assert.equal(String.fromCharCode(...mp.subarray(0, 4)), '_MP_');
  assert.equal(mp.subarray(0, 16).reduce((s, x) => s + x, 0) & 0xff, 0);
  assert.equal(mv.getUint32(4, true), 0x9fdd0);
  const clen = mv.getUint16(16 + 4, true);
  assert.equal(clen + 16, mp.length);
  assert.equal(mp.subarray(16, 16 + clen).reduce((s, x) => s + x, 0) & 0xff, 0);
  // the IRQ0 entry: I/O interrupt, INT, ISA bus 1 IRQ 0 -> I/O APIC 0 pin 2
  const at = 16 + 44 + 20 + 16 + 8;
  assert.deepEqual([...mp.subarray(at, at + 8)], [3, 0, 0, 0, 1, 0, 0, 2]);
});
