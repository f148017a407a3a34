import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoPorts } from '../bus/ports.js';
import { ArrayDmaView } from '../bus/dma.js';
import { FwCfg, FwCfgKey, FwCfgDmaCtl, e820Table, E820Type, le16, le32 } from './fwcfg.js';

const SEL = 0x510;
const DATA = 0x511;
const RAM = 1 << 20;

function make() {
  const io = new IoPorts();
  const mem = new Uint8Array(RAM);
  const fw = new FwCfg('fwcfg', io, new ArrayDmaView(mem));
  return { io, mem, fw, dv: new DataView(mem.buffer) };
}

function readPio(io: IoPorts, key: number, n: number): number[] {
  io.write16[SEL](SEL, key);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(io.read8[DATA](DATA));
  return out;
}

/** SeaBIOS qemu_cfg_dma_transfer: a FWCfgDmaAccess at `desc`, address written as one be32 to 0x518. */
function dma(io: IoPorts, dv: DataView, desc: number, control: number, length: number, addr: number): number {
  dv.setUint32(desc, control, false);
  dv.setUint32(desc + 4, length, false);
  dv.setUint32(desc + 8, 0, false);
  dv.setUint32(desc + 12, addr, false);
  const be = ((desc & 0xff) << 24) | ((desc & 0xff00) << 8) | ((desc >>> 8) & 0xff00) | (desc >>> 24);
  io.write32[0x518](0x518, be >>> 0);
  return dv.getUint32(desc, false);
}

test('signature "QEMU" through the selector and data ports', () => {
  const { io } = make();
  assert.deepEqual(readPio(io, FwCfgKey.SIGNATURE, 4), [0x51, 0x45, 0x4d, 0x55]);
  assert.deepEqual(readPio(io, FwCfgKey.SIGNATURE, 6).slice(4), [0, 0], 'past the end reads 0');
  assert.deepEqual(readPio(io, FwCfgKey.ID, 4), [3, 0, 0, 0], 'traditional + DMA');
  assert.deepEqual(readPio(io, 0x1234, 2), [0, 0], 'missing item reads 0');
  assert.deepEqual(readPio(io, 0x7fff, 2), [0, 0], 'invalid key reads 0');
});

test('DMA register reads "QEMU CFG"', () => {
  const { io } = make();
  const sig = [];
  for (let p = 0x514; p < 0x51c; p++) sig.push(io.read8[p](p));
  assert.equal(String.fromCharCode(...sig), 'QEMU CFG');
  assert.equal(io.read32[0x514](0x514) >>> 0, 0x554d4551, 'inl gives the bytes in memory order');
});

test('DMA select + read of ID, then the file directory as SeaBIOS reads it', () => {
  const { io, mem, fw, dv } = make();
  fw.addFile('etc/boot-fail-wait', le32(0xffffffff));
  fw.addFile('bootorder', new TextEncoder().encode('/pci@i0cf8/ide@1,1/drive@0/disk@0\n'));
  fw.addFile('etc/e820', e820Table([{ address: 0, length: 128 << 20, type: E820Type.RAM }]));
  const ctl = dma(io, dv, 0x1000, (FwCfgKey.ID << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ, 4, 0x2000);
  assert.equal(ctl, 0, 'control cleared on completion');
  assert.equal(dv.getUint32(0x2000, true), 3);
  // Directory count (be32), then entries read with plain reads of the same item.
  dma(io, dv, 0x1000, (FwCfgKey.FILE_DIR << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ, 4, 0x2000);
  const count = dv.getUint32(0x2000, false);
  assert.equal(count, 3);
  const files: [string, number, number][] = [];
  for (let i = 0; i < count; i++) {
    dma(io, dv, 0x1000, FwCfgDmaCtl.READ, 64, 0x3000);
    const size = dv.getUint32(0x3000, false);
    const sel = dv.getUint16(0x3004, false);
    const name = String.fromCharCode(...mem.subarray(0x3008, 0x3008 + 56)).replace(/\0.*$/, '');
    files.push([name, sel, size]);
  }
  assert.deepEqual(files, [
    ['bootorder', 0x20, 34],
    ['etc/boot-fail-wait', 0x21, 4],
    ['etc/e820', 0x22, 20],
  ]);
  // The directory as the traditional interface sees it is the same bytes.
  const pio = readPio(io, FwCfgKey.FILE_DIR, 4);
  assert.deepEqual(pio, [0, 0, 0, 3]);
  // Read the e820 file by its selector.
  dma(io, dv, 0x1000, (fw.fileKey('etc/e820') << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ, 20, 0x4000);
  assert.equal(dv.getUint32(0x4008, true), 128 << 20);
  assert.equal(dv.getUint32(0x4010, true), E820Type.RAM);
});

test('DMA skip advances; a read past the end fills zeros', () => {
  const { io, mem, fw, dv } = make();
  fw.setItem(FwCfgKey.ACPI_TABLES, Uint8Array.of(1, 2, 3, 4, 5, 6));
  io.write16[SEL](SEL, FwCfgKey.ACPI_TABLES);
  assert.equal(dma(io, dv, 0x1000, FwCfgDmaCtl.SKIP, 2, 0), 0);
  mem.fill(0xee, 0x2000, 0x2008);
  dma(io, dv, 0x1000, FwCfgDmaCtl.READ, 8, 0x2000);
  assert.deepEqual([...mem.subarray(0x2000, 0x2008)], [3, 4, 5, 6, 0, 0, 0, 0]);
  // A control with no operation transfers nothing.
  io.write16[SEL](SEL, FwCfgKey.ACPI_TABLES);
  dma(io, dv, 0x1000, 0, 4, 0x2000);
  assert.equal(io.read8[DATA](DATA), 1);
});

test('DMA errors: write to a read-only item, buffer outside RAM, descriptor outside RAM', () => {
  const { io, dv, fw } = make();
  assert.equal(dma(io, dv, 0x1000, (FwCfgKey.SIGNATURE << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.WRITE, 4, 0x2000), FwCfgDmaCtl.ERROR);
  assert.equal(dma(io, dv, 0x1000, (FwCfgKey.SIGNATURE << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ, 4, RAM - 2), FwCfgDmaCtl.ERROR);
  // A descriptor beyond RAM: nothing to write the status into, nothing thrown.
  io.write32[0x514](0x514, 0x01000000); // high half = 1: above 4 GiB
  io.write32[0x518](0x518, 0);
  assert.equal(fw.dmaErrors, 3);
  // A huge length past the end of an item stops at the end of RAM.
  assert.equal(dma(io, dv, 0x1000, (0x1234 << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ, 0xffffffff, 0x2000), FwCfgDmaCtl.ERROR);
  assert.equal(dma(io, dv, 0x1000, FwCfgDmaCtl.SKIP, 0xffffffff, 0), 0);
});

test('board helpers: integer items are little-endian; files replace in place; names are checked', () => {
  const { io, fw } = make();
  fw.setU16(FwCfgKey.NB_CPUS, 1);
  fw.setU64(FwCfgKey.RAM_SIZE, 0x1_2000_0000);
  assert.deepEqual(readPio(io, FwCfgKey.NB_CPUS, 2), [1, 0]);
  assert.deepEqual(readPio(io, FwCfgKey.RAM_SIZE, 8), [0, 0, 0, 0x20, 1, 0, 0, 0]);
  fw.addFile('etc/boot-cpus', le16(1));
  fw.addFile('etc/boot-cpus', le16(2));
  assert.deepEqual(readPio(io, fw.fileKey('etc/boot-cpus'), 2), [2, 0]);
  assert.throws(() => fw.addFile('x'.repeat(56), new Uint8Array(1)));
  assert.throws(() => fw.setItem(0x25, new Uint8Array(1)));
});

test('round trip: selector, offset and the pending DMA high half', () => {
  const a = make();
  a.fw.setItem(FwCfgKey.UUID, Uint8Array.from({ length: 16 }, (_, i) => i));
  const b = make();
  b.fw.setItem(FwCfgKey.UUID, Uint8Array.from({ length: 16 }, (_, i) => i));
  readPio(a.io, FwCfgKey.UUID, 5);
  const s = a.fw.saveState();
  b.fw.loadState(s);
  assert.deepEqual(b.fw.saveState(), s);
  assert.deepEqual([a.io.read8[DATA](DATA), a.io.read8[DATA](DATA)], [b.io.read8[DATA](DATA), b.io.read8[DATA](DATA)]);
  b.fw.loadState({ key: FwCfgKey.UUID, offset: 1e9, dmaAddrHigh: 0 });
  assert.equal(b.io.read8[DATA](DATA), 0, 'offset clamped to the item');
  assert.throws(() => b.fw.loadState({ key: 1 } as never));
  b.fw.reset();
  assert.equal(b.io.read8[DATA](DATA), 0x51, 'reset selects the signature');
});

test('fuzz: random port traffic and DMA descriptors never throw', () => {
  const { io, mem, fw } = make();
  fw.addFile('etc/e820', e820Table([{ address: 0, length: RAM, type: E820Type.RAM }]));
  let seed = 4242;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8);
  for (let i = 0; i < 5000; i++) {
    for (let j = 0; j < 16; j++) mem[0x100 + j] = rnd() & 0xff;
    const p = 0x510 + (rnd() % 12);
    const w = rnd() % 3;
    if (rnd() & 1) [io.read8, io.read16, io.read32][w][p](p);
    else if (p === 0x518 && w === 2) io.write32[p](p, rnd() & 1 ? 0x00010000 : rnd() * 509);
    else [io.write8, io.write16, io.write32][w][p](p, rnd() * 77);
  }
});
