// The unmodified SeaVGABIOS (Debian's seabios package, vgabios-stdvga.bin)
// run on the tsvm CPU against the standard VGA: option ROM init, then INT 10h
// text output, mode 13h and a VBE linear-framebuffer mode. Skipped when the
// package is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { PhysicalMemory } from '../../src/bus/memory.js';
import { IoPorts } from '../../src/bus/ports.js';
import { Cpu } from '../../src/cpu/cpu.js';
import { Seg } from '../../src/cpu/consts.js';
import { Clock } from '../../src/time/clock.js';
import { StdVga, STDVGA_PCI_IDS } from '../../src/devices/vga/stdvga.js';

const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
const VGA_BDF = 0x10; // 00:02.0
const LFB = 0xfd000000;
const IRET_STUB = 0xfff53;
const RETURN_HLT = 0x600;
const CODE = 0x700;
const STACK_TOP = 0x7000;

class Rig {
  readonly mem = new PhysicalMemory(1024 * 1024);
  readonly io = new IoPorts();
  readonly clock = new Clock();
  readonly cpu: Cpu;
  readonly vga: StdVga;
  private _confAdd = 0;

  constructor(rom: Uint8Array) {
    this.vga = new StdVga('vga', this.io, this.clock);
    this.vga.onBarChange(0, LFB, this.vga.vram.length);
    // The option ROM sits in shadow RAM (writable during init, as SeaBIOS leaves it).
    this.mem.mem.set(rom, 0xc0000);
    this.mem.addMmio(0xa0000, 0x20000, this.vga.mmioHandlers);
    this.mem.mem[IRET_STUB] = 0xcf;
    for (let v = 0; v < 256; v++) {
      this.mem.mem[v * 4] = IRET_STUB & 0xffff & 0xff;
      this.mem.mem[v * 4 + 1] = (IRET_STUB & 0xffff) >> 8;
      this.mem.mem[v * 4 + 2] = 0x00;
      this.mem.mem[v * 4 + 3] = 0xf0;
    }
    this.mem.mem[RETURN_HLT] = 0xf4;
    // PCI configuration mechanism #1 with one function: the VGA.
    this.io.register('pci', 0xcf8, 1, { read32: () => this._confAdd >>> 0, write32: (_p, v) => (this._confAdd = v >>> 0) });
    this.io.register('pci', 0xcfc, 4, { read8: (p) => this._cfg(p, 1), read16: (p) => this._cfg(p, 2), read32: (p) => this._cfg(p, 4) });
    this.cpu = new Cpu(this.mem, this.io);
  }

  private _cfg(port: number, size: number): number {
    const bdf = (this._confAdd >>> 8) & 0xffff;
    if (!(this._confAdd & 0x80000000) || bdf !== VGA_BDF) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    const cfg = new Uint8Array(256);
    cfg[0] = STDVGA_PCI_IDS.vendorId & 0xff;
    cfg[1] = STDVGA_PCI_IDS.vendorId >> 8;
    cfg[2] = STDVGA_PCI_IDS.deviceId & 0xff;
    cfg[3] = STDVGA_PCI_IDS.deviceId >> 8;
    cfg[4] = 0x03; // I/O and memory decode on
    cfg[8] = STDVGA_PCI_IDS.revision;
    cfg[0x0b] = 0x03;
    new DataView(cfg.buffer).setUint32(0x10, LFB | 0x08, true);
    const off = (this._confAdd & 0xfc) + (port & 3);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | cfg[off + i];
    return v >>> 0;
  }

  /** Far-call seg:off with AX set, returning to a HLT; run until halted. */
  call(seg: number, off: number, ax: number): void {
    const c = this.cpu;
    c.halted = false;
    c.reg32[0] = ax;
    c.loadSegReal(Seg.SS, 0);
    c.reg32[4] = STACK_TOP - 4;
    this.mem.mem[STACK_TOP - 4] = RETURN_HLT & 0xff;
    this.mem.mem[STACK_TOP - 3] = RETURN_HLT >> 8;
    this.mem.mem[STACK_TOP - 2] = 0;
    this.mem.mem[STACK_TOP - 1] = 0;
    c.loadSegReal(Seg.CS, seg);
    c.eip = off;
    this.runToHalt();
  }

  /** Run real-mode code placed at 0:CODE (it must end with HLT). */
  exec(code: number[]): void {
    this.mem.mem.set(code, CODE);
    const c = this.cpu;
    c.halted = false;
    c.loadSegReal(Seg.SS, 0);
    c.loadSegReal(Seg.DS, 0);
    c.loadSegReal(Seg.ES, 0);
    c.reg32[4] = STACK_TOP;
    c.loadSegReal(Seg.CS, 0);
    c.eip = CODE;
    this.runToHalt();
  }

  runToHalt(): void {
    for (let slice = 0; slice < 2000 && !this.cpu.halted; slice++) {
      this.cpu.run(100_000);
      this.clock.advanceTo(this.clock.nowNs + 100_000);
    }
    assert.ok(this.cpu.halted, 'code ran to its HLT');
  }
}

// mov ax, imm16 / mov bx, imm16 / int 10h / hlt
const movAx = (v: number) => [0xb8, v & 0xff, v >> 8];
const movBx = (v: number) => [0xbb, v & 0xff, v >> 8];
const INT10 = [0xcd, 0x10];
const HLT = [0xf4];

test('SeaVGABIOS: init, text output, mode 13h and a VBE LFB mode', { skip: !existsSync(VGABIOS) }, () => {
  const rom = new Uint8Array(readFileSync(VGABIOS));
  assert.equal(rom[0], 0x55);
  const r = new Rig(rom);
  r.call(0xc000, 0x0003, VGA_BDF);
  // The BIOS found the DISPI interface and installed INT 10h.
  assert.equal(r.mem.mem[0x10 * 4 + 2] | (r.mem.mem[0x10 * 4 + 3] << 8), 0xc000);

  r.exec([...movAx(0x0003), ...INT10, ...movAx(0x0e48), ...movBx(0x0007), ...INT10, ...movAx(0x0e69), ...INT10, ...HLT]);
  const t = r.vga.renderText();
  assert.equal(t.cols, 80);
  assert.equal(t.rows, 25);
  assert.equal(t.chars[0].slice(0, 3), 'Hi ');
  assert.equal(t.attrs[0], 0x07);
  assert.deepEqual(t.cursor, { x: 2, y: 0, visible: true });
  const f = r.vga.renderPixels();
  assert.equal(f.width, 720);
  assert.equal(f.height, 400);
  let lit = 0;
  for (let y = 0; y < 16; y++) for (let x = 0; x < 9; x++) if (f.rgba[(y * 720 + x) * 4] > 0) lit++;
  assert.ok(lit > 10, `the BIOS font draws an H (${lit} pixels lit)`);

  // Mode 13h, then a white pixel through the window.
  r.exec([...movAx(0x0013), ...INT10, ...movAx(0xa000), 0x8e, 0xc0, 0x26, 0xc6, 0x06, 0x41, 0x01, 0x0f, ...HLT]); // mov es,ax; mov byte [es:0x141],0x0f
  let g = r.vga.renderPixels();
  assert.equal(g.width, 320);
  assert.equal(g.height, 200);
  assert.deepEqual([...g.rgba.subarray((1 * 320 + 1) * 4, (1 * 320 + 1) * 4 + 4)], [255, 255, 255, 255]);

  // VBE 4F02h: 640x480 in 32 bpp with the linear framebuffer (SeaVGABIOS mode 0x129? use 0x4112 = 640x480x24).
  r.exec([...movAx(0x4f02), ...movBx(0x4112), ...INT10, ...HLT]);
  assert.equal(r.cpu.reg32[0] & 0xffff, 0x004f, 'VBE call succeeded');
  assert.equal(r.vga.displayMode(), 'vbe');
  assert.equal(r.vga.vbe.regs[1], 640);
  assert.equal(r.vga.vbe.regs[2], 480);
  assert.equal(r.vga.vbe.regs[3], 24);
  assert.ok(r.vga.vbe.regs[4] & 0x40, 'LFB enabled');
  r.vga.lfbHandlers.write8(LFB + (10 * 640 + 5) * 3 + 2, 0xc0);
  g = r.vga.renderPixels();
  assert.deepEqual([...g.rgba.subarray((10 * 640 + 5) * 4, (10 * 640 + 5) * 4 + 4)], [0xc0, 0, 0, 255]);

  // 16-colour planar modes: BIOS pixel writes (INT 10h AH=0Ch) through the palette and DAC.
  const putPixel = [...movAx(0x0c04), 0xb9, 10, 0, 0xba, 20, 0, ...INT10]; // mov cx,10; mov dx,20
  const red = [170, 0, 0, 255];
  for (const [setMode, w, h] of [
    [[...movAx(0x0012), ...INT10], 640, 480],
    [[...movAx(0x006a), ...INT10], 800, 600],
    [[...movAx(0x4f02), ...movBx(0x0102), ...INT10], 800, 600],
  ] as [number[], number, number][]) {
    r.exec([...setMode, ...putPixel, ...HLT]);
    g = r.vga.renderPixels();
    assert.equal(g.width, w);
    assert.equal(g.height, h);
    assert.deepEqual([...g.rgba.subarray((20 * w + 10) * 4, (20 * w + 10) * 4 + 4)], red, `${w}x${h} pixel`);
    assert.deepEqual([...g.rgba.subarray((20 * w + 11) * 4, (20 * w + 11) * 4 + 4)], [0, 0, 0, 255]);
  }

  // CGA modes 4 (320x200x4) and 6 (640x200x2): odd/even banks at 0xB8000.
  for (const [mode, w] of [
    [0x04, 320],
    [0x06, 640],
  ]) {
    r.exec([...movAx(mode), ...INT10, ...movAx(0x0c03), 0xb9, 10, 0, 0xba, 21, 0, ...INT10, ...HLT]);
    g = r.vga.renderPixels();
    assert.equal(g.width, w);
    assert.equal(g.height, 200);
    const s = r.vga.saveState().regs;
    const colour = mode === 4 ? 3 : 1;
    const dacIndex = s.attr[colour];
    const rgb = [...s.dac.subarray(dacIndex * 3, dacIndex * 3 + 3)].map((v) => (v << 2) | (v >> 4));
    assert.notDeepEqual(rgb, [0, 0, 0]);
    assert.deepEqual([...g.rgba.subarray((21 * w + 10) * 4, (21 * w + 10) * 4 + 3)], rgb, `mode ${mode} pixel on an odd line`);
    assert.deepEqual([...g.rgba.subarray((20 * w + 10) * 4, (20 * w + 10) * 4 + 3)], [0, 0, 0]);
  }

  // Back to text mode: VBE off, text again.
  r.exec([...movAx(0x0003), ...INT10, ...HLT]);
  assert.equal(r.vga.displayMode(), 'text');
});
