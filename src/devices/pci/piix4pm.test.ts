import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../../bus/ports.js';
import { TestIrqLine } from '../../bus/irq.js';
import { Clock } from '../../time/clock.js';
import { Piix4Pm, PM_TIMER_HZ, pmTicksAt, nsAtPmTicks } from './piix4pm.js';

const PMBA = 0x600;
const STS = PMBA;
const EN = PMBA + 2;
const CNT = PMBA + 4;
const TMR = PMBA + 8;

function make(opts = {}) {
  const io = new IoPorts();
  const clock = new Clock();
  const sci = new TestIrqLine();
  const pm = new Piix4Pm('pm', io, clock, sci, opts);
  const events: string[] = [];
  pm.onPowerOff = () => events.push('off');
  pm.onSuspend = () => events.push('s3');
  pm.onSmi = () => events.push('smi');
  return { io, clock, sci, pm, events };
}

/** SeaBIOS piix4_pm_config_setup. */
function enable(pm: Piix4Pm, base = PMBA): void {
  pm.writeConfig(0x3c, 9, 1);
  pm.writeConfig(0x40, base | 1, 4);
  pm.writeConfig(0x80, 0x01, 1);
}

const inw = (io: IoPorts, p: number) => io.read16[p](p);
const outw = (io: IoPorts, p: number, v: number) => io.write16[p](p, v);
const inl = (io: IoPorts, p: number) => io.read32[p](p) >>> 0;

test('identity and reset values: 8086:7113 rev 03, class 0680, INTA#, PMBA bit 0 set', () => {
  const { pm } = make();
  assert.equal(pm.readConfig(0x00, 4), 0x71138086);
  assert.equal(pm.readConfig(0x08, 4), 0x06800003);
  assert.equal(pm.readConfig(0x3d, 1), 1);
  assert.equal(pm.readConfig(0x40, 4), 1);
  assert.equal(pm.readConfig(0x58, 4) >>> 25 & 1, 1, 'APMC_EN reads set without SMM (SeaBIOS skips SMM init)');
  assert.equal(make({ smm: true }).pm.readConfig(0x58, 4), 0);
});

test('PMBA: bits 15:6 writable, the block decodes only with PMIOSE and moves with PMBA', () => {
  const { io, pm } = make();
  pm.writeConfig(0x40, 0xffffffff, 4);
  assert.equal(pm.readConfig(0x40, 4), 0xffc1);
  pm.writeConfig(0x40, PMBA | 1, 4);
  assert.equal(io.ownerOf(TMR), null, 'PMIOSE clear: not decoded');
  assert.equal(io.read8[TMR](TMR), 0xff);
  pm.writeConfig(0x80, 1, 1);
  assert.equal(io.ownerOf(TMR), 'pm.pmio');
  pm.writeConfig(0x40, 0xb001, 4); // SeaBIOS's own ACPI tables use B000h
  assert.equal(io.ownerOf(TMR), null);
  assert.equal(io.ownerOf(0xb008), 'pm.pmio');
  pm.writeConfig(0x80, 0, 1);
  assert.equal(io.ownerOf(0xb008), null);
});

test('a PMBA that overlaps another device is not decoded', () => {
  const { io, pm } = make();
  io.register('dma', 0x00, 0x10, { read8: () => 0x12 });
  enable(pm, 0);
  assert.equal(pm.conflicts, 1);
  assert.equal(io.read8[0](0), 0x12);
  // Its own APM ports (B2h/B3h) are not given up to the PM block either.
  pm.writeConfig(0x40, 0x0081, 4);
  assert.equal(pm.conflicts, 2);
  io.write8[0xb3](0xb3, 0x44);
  assert.equal(io.read8[0xb3](0xb3), 0x44);
});

test("QEMU's hotplug registers say nothing happened: GPE0 not pending, no PCI slot up or ejected, CPU 0 alone present", () => {
  const { io } = make();
  // left unmapped they read all ones: Linux ran _E01 and took every PCI slot as ejected
  assert.equal(inl(io, 0xafe0), 0, 'GPE0_STS and GPE0_EN');
  outw(io, 0xafe2, 0xffff);
  assert.equal(inw(io, 0xafe0), 0, 'no GPE pending after enabling them all');
  assert.equal(inl(io, 0xae00), 0, 'PCIU');
  assert.equal(inl(io, 0xae04), 0, 'PCID');
  assert.equal(inl(io, 0xae0c), 0, 'PCRM');
  assert.equal(io.read8[0xaf00](0xaf00), 1, 'CPU 0 present');
  for (let p = 0xaf01; p < 0xaf20; p++) assert.equal(io.read8[p](p), 0, `CPU bitmap byte ${p - 0xaf00}`);
});

test('PM timer: 24 bits at 3.579545 MHz of guest time, wraps', () => {
  const { io, pm, clock } = make();
  enable(pm);
  assert.equal(inl(io, TMR), 0);
  clock.advanceTo(1e9);
  assert.equal(inl(io, TMR), PM_TIMER_HZ);
  clock.advanceTo(10e9);
  assert.equal(inl(io, TMR), (PM_TIMER_HZ * 10) % 0x1000000);
  assert.equal(io.read8[TMR + 1](TMR + 1), ((PM_TIMER_HZ * 10) >>> 8) & 0xff);
  // Exact at large times (no float64 overflow of ns * Hz).
  assert.equal(pmTicksAt(86400e9 * 100 + 1e9), PM_TIMER_HZ * (86400 * 100 + 1));
  assert.equal(pmTicksAt(nsAtPmTicks(123456789)), 123456789);
  assert.equal(pmTicksAt(nsAtPmTicks(123456789) - 1), 123456788);
});

test('TMR_STS sets when bit 23 toggles; with TMR_EN, SCI rises then and clears on write-1', () => {
  const { io, pm, clock, sci } = make();
  enable(pm);
  // Reset leaves the first overflow "already passed" (QEMU): clear it first.
  assert.equal(inw(io, STS) & 1, 1);
  outw(io, STS, 0x0001);
  assert.equal(inw(io, STS) & 1, 0);
  outw(io, EN, 0x0001);
  assert.equal(sci.level, 0);
  const overflowNs = nsAtPmTicks(0x800000);
  clock.advanceTo(overflowNs - 1);
  assert.equal(sci.level, 0);
  clock.advanceTo(overflowNs);
  assert.equal(sci.level, 1, 'SCI at the bit-23 toggle');
  assert.equal(inw(io, STS) & 1, 1);
  outw(io, STS, 0x0001);
  assert.equal(sci.level, 0);
  clock.advanceTo(nsAtPmTicks(0x1000000));
  assert.equal(sci.level, 1, 'next toggle, 2^23 ticks later');
  outw(io, EN, 0);
  assert.equal(sci.level, 0, 'disabling the source drops SCI');
});

test('power button sets PWRBTN_STS and raises SCI when enabled', () => {
  const { io, pm, sci } = make();
  enable(pm);
  pm.pressPowerButton();
  assert.equal(sci.level, 0);
  assert.equal(inw(io, STS) & 0x0100, 0x0100);
  outw(io, EN, 0x0100);
  assert.equal(sci.level, 1);
  outw(io, STS, 0x0100);
  assert.equal(sci.level, 0);
});

test('PM1a_CNT: SCI_EN set at reset (ACPI-only); SLP_EN with SLP_TYP 0 powers off, 1 suspends', () => {
  const { io, pm, events } = make();
  enable(pm);
  assert.equal(inw(io, CNT) & 1, 1);
  outw(io, CNT, 0x0001 | (5 << 10));
  assert.deepEqual(events, [], 'no SLP_EN, nothing happens');
  assert.equal(inw(io, CNT), 0x1401);
  outw(io, CNT, 0x0001 | (1 << 10) | 0x2000);
  assert.deepEqual(events, ['s3']);
  assert.equal(inw(io, CNT) & 0x2000, 0, 'SLP_EN reads 0');
  outw(io, CNT, 0x0001 | (0 << 10) | 0x2000); // QEMU/SeaBIOS _S5 = 0
  assert.deepEqual(events, ['s3', 'off']);
  outw(io, CNT, 0x0001 | (5 << 10) | 0x2000); // reserved on PIIX4: nothing
  assert.deepEqual(events, ['s3', 'off']);
  // Byte write of the high half (ACPICA writes PM1_CNT as 16 bits, others may not).
  io.write8[CNT + 1](CNT + 1, 0x20);
  assert.deepEqual(events, ['s3', 'off', 'off']);
});

test('APM: B3h is scratch; F1h/F0h at B2h toggle SCI_EN only with SMM; other values raise SMI with APMC_EN', () => {
  const a = make();
  enable(a.pm);
  a.io.write8[0xb3](0xb3, 0x5a);
  assert.equal(a.io.read8[0xb3](0xb3), 0x5a);
  a.io.write8[0xb2](0xb2, 0xf0);
  assert.equal(inw(a.io, CNT) & 1, 1, 'ACPI-only: SCI_EN stays');
  a.io.write8[0xb2](0xb2, 0x00);
  assert.deepEqual(a.events, [], 'no SMM, no SMI');
  const b = make({ smm: true });
  enable(b.pm);
  assert.equal(inw(b.io, CNT) & 1, 0);
  b.io.write8[0xb2](0xb2, 0xf1);
  assert.equal(inw(b.io, CNT) & 1, 1);
  b.io.write8[0xb2](0xb2, 0xf0);
  assert.equal(inw(b.io, CNT) & 1, 0);
  b.io.write8[0xb2](0xb2, 0x00);
  assert.deepEqual(b.events, []);
  b.pm.writeConfig(0x58, 1 << 25, 4);
  b.io.write8[0xb2](0xb2, 0x00);
  assert.deepEqual(b.events, ['smi']);
  assert.equal(b.io.read8[0xb2](0xb2), 0);
});

test('round trip: registers, mapping and the armed overflow timer carry over', () => {
  const a = make();
  enable(a.pm);
  outw(a.io, STS, 1);
  outw(a.io, EN, 0x0101);
  a.io.write8[0xb3](0xb3, 7);
  a.clock.advanceTo(1e9);
  const s = a.pm.saveState();
  const b = make();
  b.clock.loadState(a.clock.saveState());
  b.pm.loadState(s);
  assert.deepEqual(b.pm.saveState(), s);
  assert.equal(b.io.ownerOf(TMR), 'pm.pmio');
  assert.equal(inl(b.io, TMR), inl(a.io, TMR));
  b.sci.set(a.sci.level);
  for (const m of [a, b]) m.clock.advanceTo(nsAtPmTicks(0x800000) + 5);
  assert.equal(b.sci.level, 1);
  assert.equal(a.sci.level, 1);
  assert.deepEqual(b.pm.saveState(), a.pm.saveState());
  assert.throws(() => b.pm.loadState({ ...s, pm1Cnt: undefined } as never));
});

test('fuzz: random config, PM block, APM traffic and clock steps never throw', () => {
  const { io, pm, clock } = make();
  enable(pm);
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  let now = 0;
  for (let i = 0; i < 20000; i++) {
    const r = rnd() % 8;
    const size = [1, 2, 4][rnd() % 3];
    if (r === 0) pm.writeConfig((rnd() & 0xff) & ~(size - 1), rnd() * 3, size);
    else if (r === 1) pm.readConfig((rnd() & 0xff) & ~(size - 1), size);
    else if (r === 2) {
      now += rnd() * 100;
      clock.advanceTo(now);
    } else {
      const base = pm.pmBase() < 0 ? PMBA : pm.pmBase();
      const p = rnd() & 1 ? base + (rnd() % 64) : 0xb2 + (rnd() & 1);
      // Never write SLP_EN with a power-off type in a loop: callbacks only count.
      if (rnd() & 1) [io.read8, io.read16, io.read32][rnd() % 3][p](p);
      else [io.write8, io.write16, io.write32][rnd() % 3][p](p, rnd());
    }
  }
  assert.equal(pm.readConfig(0, 4), 0x71138086);
});
