import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../../bus/ports.js';
import { TestIrqLine } from '../../bus/irq.js';
import { Clock } from '../../time/clock.js';
import { PciHost, pirqForPin } from './host.js';
import { PciDevice, PCI_BAR_UNMAPPED, PCI_ROM_BAR } from './device.js';
import { I440fx } from './i440fx.js';
import { Piix3, Piix3Ide } from './piix3.js';
import { Piix4Pm } from './piix4pm.js';

const CONFADD = 0xcf8;
const CONFDATA = 0xcfc;

function cfgAddr(bdf: number, reg: number): number {
  return (0x80000000 | (bdf << 8) | (reg & 0xfc)) >>> 0;
}

/** SeaBIOS src/hw/pci.c accessors, over an IoPorts. */
class Cfg {
  constructor(readonly io: IoPorts) {}
  readl(bdf: number, reg: number): number {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    return this.io.read32[CONFDATA](CONFDATA) >>> 0;
  }
  readw(bdf: number, reg: number): number {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    const p = CONFDATA + (reg & 2);
    return this.io.read16[p](p);
  }
  readb(bdf: number, reg: number): number {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    const p = CONFDATA + (reg & 3);
    return this.io.read8[p](p);
  }
  writel(bdf: number, reg: number, v: number): void {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    this.io.write32[CONFDATA](CONFDATA, v >>> 0);
  }
  writew(bdf: number, reg: number, v: number): void {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    const p = CONFDATA + (reg & 2);
    this.io.write16[p](p, v);
  }
  writeb(bdf: number, reg: number, v: number): void {
    this.io.write32[CONFADD](CONFADD, cfgAddr(bdf, reg));
    const p = CONFDATA + (reg & 3);
    this.io.write8[p](p, v);
  }
}

function bdf(dev: number, fn: number): number {
  return (dev << 3) | fn;
}

function pcBoard() {
  const io = new IoPorts();
  const clock = new Clock();
  const isa = Array.from({ length: 16 }, () => new TestIrqLine());
  const sci = new TestIrqLine();
  const host = new PciHost('pci', io);
  const nb = new I440fx('i440fx', { ramSizeBytes: 128 << 20 });
  const piix3 = new Piix3('piix3', io, isa);
  const ide = new Piix3Ide('piix3-ide');
  const pm = new Piix4Pm('piix4-pm', io, clock, sci);
  host.attach(0, 0, nb);
  host.attach(1, 0, piix3);
  host.attach(1, 1, ide);
  host.attach(1, 3, pm);
  host.setPirqRouter(piix3);
  return { io, clock, isa, sci, host, nb, piix3, ide, pm, cfg: new Cfg(io) };
}

test('CONFADD is a dword register that reads back what SeaBIOS pci_probe_host writes', () => {
  const { io } = pcBoard();
  io.write32[CONFADD](CONFADD, 0x80000000);
  assert.equal(io.read32[CONFADD](CONFADD) >>> 0, 0x80000000);
  // Reserved bits 30:24 and 1:0 read as zero.
  io.write32[CONFADD](CONFADD, 0xffffffff);
  assert.equal(io.read32[CONFADD](CONFADD) >>> 0, 0x80fffffc);
  // Byte accesses are not CONFADD: the latch keeps its value.
  io.write8[0xcf8](0xcf8, 0);
  assert.equal(io.read32[CONFADD](CONFADD) >>> 0, 0x80fffffc);
});

test('SeaBIOS qemu_detect: 00:00.0 is 8086:1237 with subsystem 1AF4:1100', () => {
  const { cfg } = pcBoard();
  assert.equal(cfg.readw(0, 0x00), 0x8086);
  assert.equal(cfg.readw(0, 0x02), 0x1237);
  assert.equal(cfg.readw(0, 0x2c), 0x1af4);
  assert.equal(cfg.readw(0, 0x2e), 0x1100);
  assert.equal(cfg.readl(0, 0x08) >>> 8, 0x060000, 'class host bridge');
  assert.equal(cfg.readb(0, 0x08), 0x02, 'revision');
});

test('bus scan as SeaBIOS pci_next does finds the four pc functions', () => {
  const { cfg } = pcBoard();
  const found: string[] = [];
  let b = 0;
  for (;;) {
    const v = cfg.readw(b, 0);
    if (v !== 0xffff && v !== 0) found.push(`${(b >> 3).toString(16)}.${b & 7}=${cfg.readl(b, 0).toString(16)}`);
    if ((b & 7) === 0 && (cfg.readb(b, 0x0e) & 0x80) === 0) b += 8;
    else b += 1;
    if (b >= 256) break;
  }
  assert.deepEqual(found, ['0.0=12378086', '1.0=70008086', '1.1=70108086', '1.3=71138086']);
});

test('empty slots, other buses and a clear enable bit read all-ones', () => {
  const { io, cfg } = pcBoard();
  assert.equal(cfg.readl(bdf(5, 0), 0), 0xffffffff);
  assert.equal(cfg.readw(bdf(5, 0), 2), 0xffff);
  assert.equal(cfg.readl(0x100, 0), 0xffffffff, 'bus 1');
  io.write32[CONFADD](CONFADD, 0x00000000);
  assert.equal(io.read32[CONFDATA](CONFDATA) >>> 0, 0xffffffff);
  // Writes there go nowhere and do not throw.
  cfg.writel(bdf(5, 0), 0x10, 0xffffffff);
});

test('byte and word lanes of CONFDATA address register + (port & 3)', () => {
  const { cfg } = pcBoard();
  assert.equal(cfg.readb(0, 0x00), 0x86);
  assert.equal(cfg.readb(0, 0x01), 0x80);
  assert.equal(cfg.readb(0, 0x02), 0x37);
  assert.equal(cfg.readb(0, 0x03), 0x12);
  assert.equal(cfg.readw(0, 0x02), 0x1237);
  cfg.writeb(0, 0x3c, 0x0b);
  assert.equal(cfg.readb(0, 0x3c), 0x0b);
  cfg.writew(0, 0x5a, 0x3311);
  assert.equal(cfg.readl(0, 0x58) >>> 16, 0x3311);
});

test('read-only header fields ignore writes', () => {
  const { cfg } = pcBoard();
  cfg.writel(0, 0x00, 0);
  cfg.writel(0, 0x08, 0);
  assert.equal(cfg.readl(0, 0x00), 0x12378086);
  assert.equal(cfg.readb(0, 0x08), 0x02);
});

test('BAR sizing: all-ones reads back the size mask with the I/O bit; decode needs the command enable', () => {
  const { cfg, ide } = pcBoard();
  const seen: [number, number][] = [];
  ide.onBarChange = (bar, addr) => seen.push([bar, addr]);
  const b = bdf(1, 1);
  assert.equal(cfg.readl(b, 0x20), 0x00000001);
  cfg.writel(b, 0x20, 0xffffffff);
  assert.equal(cfg.readl(b, 0x20), 0xfffffff1, '16 bytes of I/O');
  // BARs 0-3 are not implemented on the PIIX3 IDE function.
  cfg.writel(b, 0x10, 0xffffffff);
  assert.equal(cfg.readl(b, 0x10), 0);
  cfg.writel(b, 0x20, 0xc001);
  assert.deepEqual(seen, [], 'I/O decode off: nothing mapped');
  cfg.writew(b, 0x04, 0x0001);
  assert.deepEqual(seen, [[4, 0xc000]]);
  assert.equal(ide.barAddress(4), 0xc000);
  cfg.writel(b, 0x20, 0xc041);
  cfg.writew(b, 0x04, 0x0000);
  assert.deepEqual(seen, [[4, 0xc000], [4, 0xc040], [4, PCI_BAR_UNMAPPED]]);
});

test('memory BARs and the expansion ROM BAR size and map', () => {
  const io = new IoPorts();
  const host = new PciHost('pci', io);
  const dev = new PciDevice('nic', { vendorId: 0x10ec, deviceId: 0x8139, classCode: 0x020000, revision: 0x20, interruptPin: 1 }, [
    { size: 256, io: true },
    { size: 4096, prefetchable: true },
    null,
    null,
    null,
    null,
    { size: 0x10000 },
  ]);
  host.attach(3, 0, dev);
  const cfg = new Cfg(io);
  const b = bdf(3, 0);
  const seen: [number, number, number][] = [];
  dev.onBarChange = (bar, addr, size) => seen.push([bar, addr, size]);
  cfg.writel(b, 0x14, 0xffffffff);
  assert.equal(cfg.readl(b, 0x14), 0xfffff008, 'prefetchable 4 KiB memory');
  cfg.writel(b, 0x30, 0xffffffff);
  assert.equal(cfg.readl(b, 0x30), 0xffff0001, '64 KiB ROM, enable bit writable');
  cfg.writel(b, 0x30, 0xfebc0000);
  cfg.writel(b, 0x14, 0xfebf0000);
  cfg.writew(b, 0x04, 0x0002);
  assert.deepEqual(seen, [[1, 0xfebf0000, 4096]], 'ROM stays off until its enable bit');
  cfg.writel(b, 0x30, 0xfebc0001);
  assert.deepEqual(seen[1], [PCI_ROM_BAR, 0xfebc0000, 0x10000]);
  // A BAR that would wrap past 4 GiB decodes nothing.
  cfg.writel(b, 0x14, 0xfffff000);
  assert.equal(dev.barAddress(1), 0xfffff000);
  cfg.writel(b, 0x14, 0);
  assert.equal(dev.barAddress(1), PCI_BAR_UNMAPPED, 'base 0 is not decoded');
});

test('status error bits are write-one-to-clear; INTx disable masks the pin and status shows it', () => {
  const io = new IoPorts();
  const host = new PciHost('pci', io);
  const dev = new PciDevice('d', { vendorId: 0x1234, deviceId: 0x1111, classCode: 0x030000, revision: 0, interruptPin: 1, status: 0x8000 });
  const pirqs: number[][] = [];
  host.setPirqRouter({ setPirq: (p, l) => pirqs.push([p, l]) });
  host.attach(2, 0, dev);
  const cfg = new Cfg(io);
  const b = bdf(2, 0);
  cfg.writew(b, 0x06, 0x8000);
  assert.equal(cfg.readw(b, 0x06), 0);
  dev.setIntx(1);
  assert.equal(cfg.readw(b, 0x06) & 0x08, 0x08, 'interrupt status');
  // Slot 2, INTA# -> PIRQB (QEMU/SeaBIOS swizzle).
  assert.equal(pirqForPin(2, 1), 1);
  assert.deepEqual(pirqs, [[1, 1]]);
  cfg.writew(b, 0x04, 0x0400);
  assert.deepEqual(pirqs, [[1, 1], [1, 0]]);
  cfg.writew(b, 0x04, 0x0000);
  assert.deepEqual(pirqs, [[1, 1], [1, 0], [1, 1]]);
});

test('functions sharing a PIRQ are wired-OR', () => {
  const io = new IoPorts();
  const host = new PciHost('pci', io);
  const mk = (n: string) => new PciDevice(n, { vendorId: 0x1234, deviceId: 0x1, classCode: 0, revision: 0, interruptPin: 1 });
  const a = mk('a');
  const c = mk('c');
  const levels: number[] = [];
  host.setPirqRouter({ setPirq: (_p, l) => levels.push(l) });
  host.attach(3, 0, a); // INTA slot 3 -> PIRQC
  host.attach(7, 0, c); // INTA slot 7 -> PIRQC ((0 + 6) & 3 = 2)
  a.setIntx(1);
  c.setIntx(1);
  a.setIntx(0);
  assert.deepEqual(levels, [1]);
  c.setIntx(0);
  assert.deepEqual(levels, [1, 0]);
});

test('a SeaBIOS-like POST programs the pc chipset', () => {
  const { io, cfg, nb, piix3, pm, clock, isa } = pcBoard();
  const pam: string[] = [];
  nb.onPamChange = (r, re, we) => pam.push(`${r}:${re ? 'R' : '-'}${we ? 'W' : '-'}`);
  // make_bios_writable: dword writes of 0x58 and 0x5C.
  const lo = cfg.readl(0, 0x58);
  const hi = cfg.readl(0, 0x5c);
  assert.equal(lo & 0x10000000, 0, 'PAM0: BIOS not yet in RAM');
  cfg.writel(0, 0x58, (lo & 0xff) | (0x30 << 8) | (0x33 << 16) | (0x33 << 24));
  assert.equal(hi, 0);
  cfg.writel(0, 0x5c, 0x33333333);
  assert.equal(pam.length, 13);
  assert.ok(pam.every((p) => p.endsWith(':RW')));
  // piix_isa_bridge_setup: PIRQA-D -> 10, 10, 11, 11.
  [10, 10, 11, 11].forEach((irq, i) => cfg.writeb(bdf(1, 0), 0x60 + i, irq));
  assert.equal(piix3.pirqRoute(0), 10);
  assert.equal(piix3.pirqRoute(3), 11);
  // piix4_pm_setup.
  const pmb = bdf(1, 3);
  cfg.writeb(pmb, 0x3c, 9);
  cfg.writel(pmb, 0x40, 0x0600 | 1);
  cfg.writeb(pmb, 0x80, 0x01);
  cfg.writel(pmb, 0x90, 0x0700 | 1);
  cfg.writeb(pmb, 0xd2, 0x09);
  assert.equal(pm.pmBase(), 0x600);
  // smm_setup: APMC_EN already set, so SeaBIOS does not try SMM.
  assert.ok(cfg.readl(pmb, 0x58) & (1 << 25));
  // pmtimer_setup then reads the timer at PMBA+8.
  clock.advanceTo(1e9);
  assert.equal(io.read32[0x608](0x608), 3579545);
  // The interrupt line SeaBIOS computes for 00:01.3 INTA# matches the swizzle.
  assert.equal(cfg.readb(pmb, 0x3d), 1);
  assert.equal(isa[9].level, 0);
});

test('host round trip: CONFADD and INTx levels survive save/load', () => {
  const a = pcBoard();
  a.cfg.readl(0, 0x08);
  const s = a.host.saveState();
  const b = pcBoard();
  b.host.loadState(s);
  assert.deepEqual(b.host.saveState(), s);
  assert.equal(b.io.read32[CONFDATA](CONFDATA), a.io.read32[CONFDATA](CONFDATA));
  assert.throws(() => b.host.loadState({ confAdd: 0 } as never));
});

test('fuzz: random CONFADD/CONFDATA traffic never throws', () => {
  const { io } = pcBoard();
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const ports = [0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd, 0xcfe, 0xcff];
  for (let i = 0; i < 20000; i++) {
    const p = ports[rnd() % ports.length];
    const w = rnd() % 3;
    // Mostly valid bus-0 addresses so config writes land on real functions.
    if (p === 0xcf8 && w === 2) io.write32[p](p, (0x80000000 | (rnd() & 0x0ffc)) >>> 0);
    else if (rnd() & 1) [io.read8, io.read16, io.read32][w][p](p);
    else [io.write8, io.write16, io.write32][w][p](p, rnd());
  }
});
