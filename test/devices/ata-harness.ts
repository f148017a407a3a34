/**
 * qtest-style harness for the IDE controller: port accessors, a clock, IRQ
 * lines, a fake guest memory behind a DmaView, and memory-backed block
 * backends (a flat one and a sparse one for multi-terabyte LBA48 tests).
 */
import { ArrayDmaView } from '../../src/bus/dma.js';
import { TestIrqLine } from '../../src/bus/irq.js';
import { IoPorts } from '../../src/bus/ports.js';
import type { BlockBackend } from '../../src/devices/backends.js';
import { IdeController, type IdeDriveSpec } from '../../src/devices/ata/ide.js';
import { Clock } from '../../src/time/clock.js';

/** A disk image in memory. */
export class MemBlock implements BlockBackend {
  readonly data: Uint8Array;
  writes = 0;
  flushes = 0;
  constructor(
    readonly sizeBytes: number,
    readonly readOnly = false,
    fill?: (i: number) => number,
  ) {
    this.data = new Uint8Array(sizeBytes);
    if (fill) for (let i = 0; i < sizeBytes; i++) this.data[i] = fill(i);
  }
  read(offset: number, dst: Uint8Array): void {
    dst.set(this.data.subarray(offset, offset + dst.length));
  }
  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('read-only');
    this.writes++;
    this.data.set(src, offset);
  }
  flush(): void {
    this.flushes++;
  }
}

/** A huge, mostly empty disk: 512-byte sectors stored only once written. */
export class SparseBlock implements BlockBackend {
  readonly readOnly = false;
  private readonly _sectors = new Map<number, Uint8Array>();
  constructor(readonly sizeBytes: number) {}
  read(offset: number, dst: Uint8Array): void {
    for (let o = 0; o < dst.length; o += 512) {
      const s = this._sectors.get((offset + o) / 512);
      if (s) dst.set(s, o);
      else dst.fill(0, o, o + 512);
    }
  }
  write(offset: number, src: Uint8Array): void {
    for (let o = 0; o < src.length; o += 512) this._sectors.set((offset + o) / 512, src.slice(o, o + 512));
  }
  flush(): void {}
}

/** Byte pattern for disk fixtures: differs per sector and per byte. */
export function pattern(i: number): number {
  return (i * 7 + (i >>> 9) * 13 + 1) & 0xff;
}

export const BM_BASE = 0xc000;
export const P = 0x1f0;
export const PCTL = 0x3f6;
export const S = 0x170;
export const SCTL = 0x376;

export function setup(drives: (IdeDriveSpec | null)[], ramBytes = 1 << 20) {
  const clock = new Clock();
  const ports = new IoPorts();
  const irq14 = new TestIrqLine();
  const irq15 = new TestIrqLine();
  const ram = new Uint8Array(ramBytes);
  const dma = new ArrayDmaView(ram);
  const ide = new IdeController('ide', { ports, clock, irqs: [irq14, irq15], dma, drives });
  ide.setBusMasterBase(BM_BASE);
  const outb = (p: number, v: number) => ports.write8[p](p, v);
  const inb = (p: number) => ports.read8[p](p);
  const outw = (p: number, v: number) => ports.write16[p](p, v);
  const inw = (p: number) => ports.read16[p](p);
  const outl = (p: number, v: number) => ports.write32[p](p, v);
  const inl = (p: number) => ports.read32[p](p);
  /** Advance guest time as the board does: to each timer deadline in turn, then to the target. */
  const step = (ns = 100_000) => {
    const target = clock.nowNs + ns;
    for (let d = clock.nextDeadline(); d <= target; d = clock.nextDeadline()) clock.advanceTo(d);
    clock.advanceTo(target);
  };
  return { clock, ports, irq14, irq15, ram, dma, ide, outb, inb, outw, inw, outl, inl, step };
}

export type Harness = ReturnType<typeof setup>;

/** Read `bytes` from the data port of the channel at `base` with 16-bit accesses. */
export function readData(h: Harness, base: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 2) {
    const w = h.inw(base);
    out[i] = w & 0xff;
    if (i + 1 < bytes) out[i + 1] = w >>> 8;
  }
  return out;
}

export function writeData(h: Harness, base: number, data: Uint8Array): void {
  for (let i = 0; i < data.length; i += 2) h.outw(base, data[i] | ((data[i + 1] ?? 0) << 8));
}

/** Issue an LBA28 command on the primary channel's master. */
export function ataCmd(h: Harness, cmd: number, lba: number, count: number, base = P, dev = 0): void {
  h.outb(base + 6, 0xe0 | (dev << 4) | ((lba >>> 24) & 0x0f));
  h.outb(base + 2, count & 0xff);
  h.outb(base + 3, lba & 0xff);
  h.outb(base + 4, (lba >>> 8) & 0xff);
  h.outb(base + 5, (lba >>> 16) & 0xff);
  h.outb(base + 7, cmd);
}

/** Send an ATAPI packet to the device at `dev` on the channel at `base` (PIO or DMA), stepping time until the packet phase. */
export function sendPacket(h: Harness, base: number, dev: number, cdb: number[], byteLimit = 0xfffe, dma = false): void {
  h.outb(base + 6, 0xa0 | (dev << 4));
  h.outb(base + 1, dma ? 1 : 0);
  h.outb(base + 4, byteLimit & 0xff);
  h.outb(base + 5, byteLimit >>> 8);
  h.outb(base + 7, 0xa0);
  h.step();
  const pkt = new Uint8Array(12);
  pkt.set(cdb);
  writeData(h, base, pkt);
  h.step();
}

/** Collect the whole PIO data-in phase of an ATAPI command (following DRQ chunks), then the completion. */
export function atapiReadAll(h: Harness, base: number): { data: Uint8Array; chunks: number[]; status: number; error: number } {
  const parts: Uint8Array[] = [];
  const chunks: number[] = [];
  for (let guard = 0; guard < 10000; guard++) {
    const st = h.inb(base + 7);
    if (st & 0x80) {
      h.step();
      continue;
    }
    if (!(st & 0x08)) return { data: concat(parts), chunks, status: st, error: h.inb(base + 1) };
    const n = h.inb(base + 4) | (h.inb(base + 5) << 8);
    chunks.push(n);
    parts.push(readData(h, base, n));
    h.step();
  }
  throw new Error('ATAPI transfer did not finish');
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Small seeded PRNG (mulberry32). */
export { seededRandom as prng } from '../../src/base/rng.js';
