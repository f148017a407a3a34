/**
 * qtest-style harness for the standard VGA: port and memory accessors, the
 * register sequences SeaVGABIOS uses for a few standard modes, and font
 * loading through plane 2 (as stdvga_load_font does).
 */
import { IoPorts } from '../../src/bus/ports.js';
import { Clock } from '../../src/time/clock.js';
import { StdVga } from '../../src/devices/vga/stdvga.js';
import type { StdVgaOptions } from '../../src/devices/vga/stdvga.js';

export interface VgaModeTable {
  misc: number;
  seq: number[]; // SR1-SR4
  crtc: number[]; // CR0-CR18
  attr: number[]; // AR0-AR13
  gc: number[]; // GR0-GR8
}

/** Register tables of SeaVGABIOS's vgatables for modes 3, 12h and 13h. */
export const MODE3: VgaModeTable = {
  misc: 0x67,
  seq: [0x00, 0x03, 0x00, 0x02],
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff],
};
export const MODE12: VgaModeTable = {
  misc: 0xe3,
  seq: [0x01, 0x0f, 0x00, 0x06],
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x59, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00, 0x0f, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
};
export const MODE13: VgaModeTable = {
  misc: 0x63,
  seq: [0x01, 0x0f, 0x00, 0x0e],
  crtc: [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff],
  attr: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00, 0x0f, 0x00],
  gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
};

export class VgaHarness {
  readonly ports = new IoPorts();
  readonly clock = new Clock();
  readonly vga: StdVga;

  constructor(opts: StdVgaOptions = { vramBytes: 1024 * 1024 }) {
    this.vga = new StdVga('vga', this.ports, this.clock, opts);
  }

  outb(p: number, v: number): void {
    this.ports.write8[p](p, v);
  }
  inb(p: number): number {
    return this.ports.read8[p](p);
  }
  outw(p: number, v: number): void {
    this.ports.write16[p](p, v);
  }
  inw(p: number): number {
    return this.ports.read16[p](p);
  }
  writeb(addr: number, v: number): void {
    this.vga.mmioHandlers.write8(addr, v);
  }
  readb(addr: number): number {
    return this.vga.mmioHandlers.read8(addr);
  }
  seq(i: number, v: number): void {
    this.outw(0x3c4, i | (v << 8));
  }
  gc(i: number, v: number): void {
    this.outw(0x3ce, i | (v << 8));
  }
  crtc(i: number, v: number): void {
    this.outb(0x3d4, i);
    this.outb(0x3d5, v);
  }
  /** Write an attribute register (resets the flip-flop first), leaving the display on. */
  attr(i: number, v: number): void {
    this.inb(0x3da);
    this.outb(0x3c0, i);
    this.outb(0x3c0, v);
    this.outb(0x3c0, 0x20);
  }
  dac(i: number, r: number, g: number, b: number): void {
    this.outb(0x3c8, i);
    this.outb(0x3c9, r);
    this.outb(0x3c9, g);
    this.outb(0x3c9, b);
  }
  dispi(i: number, v: number): void {
    this.outw(0x1ce, i);
    this.outw(0x1cf, v);
  }
  dispiRead(i: number): number {
    this.outw(0x1ce, i);
    return this.inw(0x1cf);
  }

  /** Program a mode the way stdvga_set_mode does (palette aside). */
  setMode(m: VgaModeTable): void {
    this.inb(0x3da);
    for (let i = 0; i < m.attr.length; i++) {
      this.outb(0x3c0, i);
      this.outb(0x3c0, m.attr[i]);
    }
    this.outb(0x3c0, 0x14);
    this.outb(0x3c0, 0x00);
    this.seq(0, 0x03);
    for (let i = 0; i < 4; i++) this.seq(i + 1, m.seq[i]);
    for (let i = 0; i < m.gc.length; i++) this.gc(i, m.gc[i]);
    this.outb(0x3c2, m.misc);
    this.crtc(0x11, 0x00); // unprotect
    for (let i = 0; i < m.crtc.length; i++) this.crtc(i, m.crtc[i]);
    this.inb(0x3da);
    this.outb(0x3c0, 0x20);
  }

  /** Load glyphs into font block 0 of plane 2 (get_font_access / release_font_access). */
  loadFont(glyphs: Map<number, number[]>): void {
    this.seq(0, 0x01);
    this.seq(2, 0x04);
    this.seq(4, 0x07);
    this.seq(0, 0x03);
    this.gc(4, 0x02);
    this.gc(5, 0x00);
    this.gc(6, 0x04);
    for (const [ch, rows] of glyphs) for (let l = 0; l < rows.length; l++) this.writeb(0xa0000 + ch * 32 + l, rows[l]);
    this.seq(0, 0x01);
    this.seq(2, 0x03);
    this.seq(4, 0x03);
    this.seq(0, 0x03);
    this.gc(6, 0x0e);
    this.gc(4, 0x00);
    this.gc(5, 0x10);
  }
}
