// The StdVga device as a whole: PCI identity, the MMIO register BAR, state
// round trip, hostile state, and a seeded fuzz of every port and the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VgaHarness, MODE3, MODE13 } from '../../../test/devices/vga-harness.js';
import { StateError } from '../../state/state.js';
import { STDVGA_PCI_IDS, stdVgaPciBars, StdVga, StdVgaConfigError } from './stdvga.js';
import { StdVgaPci } from './pci.js';
import { IoPorts } from '../../bus/ports.js';
import { Clock } from '../../time/clock.js';

/** xorshift32: a small seeded PRNG for the fuzz. */
class Xorshift32 {
  private _s: number;
  constructor(seed: number) {
    this._s = seed | 0 || 1;
  }
  next(): number {
    let x = this._s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this._s = x;
    return x >>> 0;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

test('PCI identity and BARs are those of QEMU -vga std', () => {
  assert.equal(STDVGA_PCI_IDS.vendorId, 0x1234);
  assert.equal(STDVGA_PCI_IDS.deviceId, 0x1111);
  assert.equal(STDVGA_PCI_IDS.classCode, 0x030000);
  const bars = stdVgaPciBars();
  assert.deepEqual(bars[0], { size: 16 * 1024 * 1024, prefetchable: true });
  assert.equal(bars[1], null);
  assert.deepEqual(bars[2], { size: 4096 });
  assert.throws(() => new StdVga('v', new IoPorts(), new Clock(), { vramBytes: 3 * 1024 * 1024 }), StdVgaConfigError);
});

test('PCI function: configuration header, BAR sizing, BAR moves reach the device and the board', () => {
  const h = new VgaHarness({ vramBytes: 16 * 1024 * 1024 });
  const fn = new StdVgaPci('vga.pci', h.vga);
  const moves: [number, number, number][] = [];
  fn.onBarChange = (bar, addr, size) => moves.push([bar, addr, size]);
  assert.equal(fn.readConfig(0x00, 4), 0x11111234);
  assert.equal(fn.readConfig(0x08, 4), 0x03000002, 'class 03:00:00, revision 2');
  fn.writeConfig(0x10, 0xffffffff, 4);
  assert.equal(fn.readConfig(0x10, 4), 0xff000008, '16 MiB prefetchable memory');
  fn.writeConfig(0x18, 0xffffffff, 4);
  assert.equal(fn.readConfig(0x18, 4), 0xfffff000, '4 KiB memory');
  assert.equal(fn.readConfig(0x30, 4), 0, 'no expansion ROM');
  fn.writeConfig(0x10, 0xfd000000, 4);
  fn.writeConfig(0x18, 0xfebf0000, 4);
  assert.equal(h.vga.lfbBase, -1, 'no decode until memory space is enabled');
  fn.writeConfig(0x04, 0x0002, 2);
  assert.equal(h.vga.lfbBase, 0xfd000000);
  assert.deepEqual(moves, [
    [0, 0xfd000000, 16 * 1024 * 1024],
    [2, 0xfebf0000, 4096],
  ]);
  assert.equal(h.vga.mmioBarHandlers.read16!(0xfebf0500), 0xb0c5);
  fn.writeConfig(0x04, 0x0000, 2);
  assert.equal(h.vga.lfbBase, -1);
  assert.equal(h.vga.mmioBarHandlers.read8(0xfebf0400), 0xff);
});

test('MMIO BAR: VGA ports at 0x400, DISPI registers at 0x500, extended registers at 0x600', () => {
  const h = new VgaHarness({ vramBytes: 16 * 1024 * 1024 });
  const base = 0xfebf0000;
  const m = h.vga.mmioBarHandlers;
  assert.equal(m.read8(base + 0x400), 0xff, 'not decoded before the BAR is mapped');
  h.vga.onBarChange(2, base, 4096);
  m.write16!(base + 0x400 + 4, 0x0f02); // 0x3C4/0x3C5 pair: map mask = 0x0F
  h.outb(0x3c4, 2);
  assert.equal(h.inb(0x3c5), 0x0f);
  assert.equal(m.read16!(base + 0x500), 0xb0c5, 'ID');
  assert.equal(m.read16!(base + 0x500 + 0xa * 2), 256, 'video memory in 64K units');
  m.write16!(base + 0x500 + 2, 800);
  assert.equal(h.dispiRead(1), 800);
  assert.equal(h.inw(0x1ce), 1, 'MMIO access leaves the index port alone');
  assert.equal(m.read32 ? m.read32(base + 0x600) : m.read16!(base + 0x600) | (m.read16!(base + 0x602) << 16), 8);
  assert.equal(m.read8(base + 0x604), 0x1e);
  assert.equal(m.read8(base + 0x000), 0, 'no EDID');
  h.vga.onBarChange(2, -1, 4096);
  assert.equal(m.read8(base + 0x400), 0xff);
});

/** Drive a device through a mix of everything: modes, memory, DAC, VBE, mid-sequence states. */
function drive(h: VgaHarness, seed: number): void {
  const r = new Xorshift32(seed);
  h.setMode(MODE3);
  for (let i = 0; i < 200; i++) h.writeb(0xb8000 + r.below(4000), r.below(256));
  h.crtc(0x0e, r.below(8));
  h.dac(r.below(256), r.below(64), r.below(64), r.below(64));
  h.outb(0x3c9, 7); // a DAC triple left half-written
  h.inb(0x3da);
  h.outb(0x3c0, 0x31); // flip-flop left at "data next"
  h.clock.advanceTo(h.clock.nowNs + 1_000_000 + r.below(1000));
  h.inb(0x3da);
  h.inb(0x3da);
}

function driveMore(h: VgaHarness): void {
  h.outb(0x3c0, 0x0f); // completes the attribute write left pending
  h.outb(0x3c9, 8);
  h.outb(0x3c9, 9);
  h.setMode(MODE13);
  for (let i = 0; i < 64; i++) h.writeb(0xa0000 + i * 17, i);
  h.readb(0xa0000 + 17);
  h.dispi(1, 320);
  h.dispi(3, 8);
  h.outw(0x1ce, 5);
}

test('state round trip: save, load into a fresh device, continue identically', () => {
  const a = new VgaHarness();
  drive(a, 1234);
  const saved = a.vga.saveState();
  const b = new VgaHarness();
  b.clock.advanceTo(a.clock.nowNs);
  b.vga.loadState(saved);
  assert.deepEqual(b.vga.saveState(), saved);
  // The save is a copy: driving the source does not change it.
  const before = saved.vram.slice();
  driveMore(a);
  assert.deepEqual(saved.vram, before);
  driveMore(b);
  assert.deepEqual(b.vga.saveState(), a.vga.saveState());
  assert.equal(b.inb(0x3da), a.inb(0x3da));
  assert.deepEqual(b.vga.renderPixels(), a.vga.renderPixels());
  assert.deepEqual(b.vga.renderText(), a.vga.renderText());
});

test('loadState refuses malformed state and wraps indices', () => {
  const h = new VgaHarness();
  const good = h.vga.saveState();
  assert.throws(() => h.vga.loadState({ ...good, vram: new Uint8Array(10) }), StateError);
  assert.throws(() => h.vga.loadState({ ...good, regs: { ...good.regs, dac: new Uint8Array(3) } }), StateError);
  assert.throws(() => h.vga.loadState({ ...good, vbeRegs: new Uint16Array(2) }), StateError);
  assert.throws(() => h.vga.loadState({ ...good, regs: { ...good.regs, dacSub: 77 } }), /vga\.regs\.dacSub must be between 0 and 2, not 77/);
  assert.throws(() => h.vga.loadState({ ...good, regs: { ...good.regs, st1StaleReads: -5 } }), /vga\.regs\.st1StaleReads must be a u32/);
  assert.throws(() => h.vga.loadState({ ...good, vbeIndex: -3 }), /vga\.vbeIndex must be a u16/);
  assert.deepEqual(h.vga.saveState(), good, 'a refused state changes nothing');
  // an index the hardware decodes in fewer bits wraps as the hardware would
  h.vga.loadState({ ...good, regs: { ...good.regs, seqIndex: 99 } });
  assert.equal(h.vga.saveState().regs.seqIndex, 99 & 7);
  // A VBE mode bigger than memory is cut down to fit.
  const big = new Uint16Array(good.vbeRegs);
  big[1] = 16000;
  big[2] = 12000;
  big[3] = 32;
  big[4] = 1;
  h.vga.loadState({ ...good, vbeRegs: big });
  const f = h.vga.renderPixels();
  assert.ok(f.width * f.height * 4 <= 1024 * 1024);
});

const FUZZ_PORTS = [0x1ce, 0x1cf, 0x1d0];
for (let p = 0x3b0; p <= 0x3df; p++) FUZZ_PORTS.push(p);

test('fuzz: random port and memory accesses never throw', () => {
  const h = new VgaHarness({ vramBytes: 1024 * 1024 });
  h.vga.onBarChange(0, 0xe0000000, 1024 * 1024);
  h.vga.onBarChange(2, 0xe1000000, 4096);
  const r = new Xorshift32(0x5eed);
  for (let i = 0; i < 40_000; i++) {
    const op = r.below(100);
    const port = FUZZ_PORTS[r.below(FUZZ_PORTS.length)];
    if (op < 30) h.outb(port, r.below(256));
    else if (op < 45) h.inb(port);
    else if (op < 55) h.outw(port, r.below(0x10000));
    else if (op < 60) h.inw(port);
    else if (op < 62) h.dispi(r.below(16), r.below(0x10000));
    else if (op < 80) h.writeb(0xa0000 + r.below(0x20000), r.below(256));
    else if (op < 90) h.readb(0xa0000 + r.below(0x20000));
    else if (op < 93) h.vga.mmioBarHandlers.write16!(0xe1000000 + r.below(0x800), r.below(0x10000));
    else if (op < 95) h.vga.mmioBarHandlers.read8(0xe1000000 + r.below(0x1000));
    else if (op < 97) h.vga.lfbHandlers.write8(0xe0000000 + r.below(0x110000), r.below(256));
    else h.clock.advanceTo(h.clock.nowNs + r.below(20_000_000));
    if (i % 4000 === 0) {
      const f = h.vga.renderPixels();
      assert.equal(f.rgba.length, f.width * f.height * 4);
      const t = h.vga.renderText();
      assert.equal(t.chars.length, t.rows);
    }
  }
  const s = h.vga.saveState();
  const b = new VgaHarness({ vramBytes: 1024 * 1024 });
  b.vga.loadState(s);
  assert.deepEqual(b.vga.saveState(), s);
});
