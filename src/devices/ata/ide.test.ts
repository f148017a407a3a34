import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ataCmd, BM_BASE, MemBlock, P, PCTL, pattern, prng, readData, S, SCTL, setup, SparseBlock, writeData, type Harness,
} from '../../../test/devices/ata-harness.js';
import { ATA_COMMAND_DELAY_NS } from './channel.js';
import type { IdeDriveSpec } from './drive.js';
import { IdeController } from './ide.js';
import { undeclaredProperties } from '../../state/schema.js';

const MiB = 1 << 20;
const BSY = 0x80, DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
const ABRT = 0x04, IDNF = 0x10;

function disk(sizeBytes = MiB, readOnly = false) {
  return new MemBlock(sizeBytes, readOnly, pattern);
}

function identify(h: Harness, base = P, dev = 0): Uint16Array {
  h.outb(base + 6, 0xa0 | (dev << 4));
  h.outb(base + 7, 0xec);
  h.step();
  const b = readData(h, base, 512);
  return new Uint16Array(b.buffer);
}

function ataString(w: Uint16Array, from: number, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += String.fromCharCode(w[from + i] >> 8, w[from + i] & 0xff);
  return s;
}

test('IDENTIFY DEVICE: strings, geometry, capacities, command sets, modes, checksum', () => {
  const h = setup([{ kind: 'disk', backend: new MemBlock(64 * MiB) }]);
  const w = identify(h);
  assert.equal(h.inb(P + 7), DRDY | DSC); // the block has been read
  assert.equal(w[0], 0x0040);
  assert.equal(ataString(w, 27, 20), 'tsvm HARDDISK'.padEnd(40));
  assert.equal(ataString(w, 10, 10), 'TSVM00001'.padEnd(20));
  assert.equal(ataString(w, 23, 4).trim(), '0.1');
  const sectors = (64 * MiB) / 512;
  assert.deepEqual([w[1], w[3], w[6]], [Math.floor(sectors / (16 * 63)), 16, 63]);
  assert.deepEqual([w[54], w[55], w[56]], [w[1], w[3], w[6]]);
  assert.equal(w[57] | (w[58] << 16), w[1] * 16 * 63);
  assert.equal(w[60] | (w[61] << 16), sectors);
  assert.equal(w[100] + w[101] * 65536 + w[102] * 2 ** 32 + w[103] * 2 ** 48, sectors);
  assert.equal(w[47] & 0xff, 16);
  assert.equal(w[59], 0x100 | 16);
  assert.ok(w[49] & (1 << 9) && w[49] & (1 << 8)); // LBA, DMA
  assert.ok(w[83] & (1 << 10) && w[86] & (1 << 10)); // LBA48 supported and enabled
  assert.ok(w[83] & (1 << 12) && w[83] & (1 << 13)); // FLUSH CACHE (EXT)
  assert.equal(w[83] >> 14, 1);
  assert.equal(w[88], 0x3f | (1 << 13)); // UDMA0-5 supported, UDMA5 selected
  assert.equal(w[63] & 7, 7);
  assert.equal(w[255] & 0xff, 0xa5);
  const b = new Uint8Array(w.buffer);
  assert.equal(b.reduce((a, x) => a + x, 0) & 0xff, 0);
});

test('IDENTIFY DEVICE: cylinders cap at 16383, LBA28 count caps at 2^28-1 on a big disk', () => {
  const h = setup([{ kind: 'disk', backend: new SparseBlock(2 ** 40) }]);
  const w = identify(h);
  assert.equal(w[1], 16383);
  assert.equal(w[60] | (w[61] << 16), 0x0fffffff);
  assert.equal(w[100] + w[101] * 65536 + w[102] * 2 ** 32, 2 ** 31);
});

test('power-on: signature and status; absent slave reads 0; empty channel reads 0', () => {
  const h = setup([{ kind: 'disk', backend: disk() }]);
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.deepEqual([1, 2, 3, 4, 5].map((r) => h.inb(P + r)), [0x01, 1, 1, 0, 0]);
  h.outb(P + 6, 0xb0);
  assert.equal(h.inb(P + 7), 0);
  assert.equal(h.inb(PCTL), 0);
  h.outb(P + 2, 0x55);
  assert.equal(h.inb(P + 2), 0x55); // the taskfile still latches
  assert.equal(h.inb(S + 7), 0);
  assert.equal(h.inb(S + 2), 0);
});

test('PIO READ SECTORS: BSY, then DRQ + IRQ per block, data from the image', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  ataCmd(h, 0x20, 5, 2);
  assert.equal(h.inb(PCTL) & BSY, BSY);
  assert.equal(h.irq14.level, 0);
  h.step(ATA_COMMAND_DELAY_NS);
  assert.equal(h.irq14.level, 1);
  assert.equal(h.inb(PCTL), DRDY | DSC | DRQ);
  assert.equal(h.irq14.level, 1); // alternate status does not acknowledge
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
  assert.equal(h.irq14.level, 0);
  assert.deepEqual(readData(h, P, 512), d.data.subarray(5 * 512, 6 * 512));
  assert.equal(h.irq14.level, 1); // the next block at once, with its interrupt
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
  assert.deepEqual(readData(h, P, 512), d.data.subarray(6 * 512, 7 * 512));
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.equal(h.inb(P + 3), 6); // last sector transferred
});

test('PIO data port through 32-bit accesses', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  ataCmd(h, 0x20, 1, 1);
  h.step();
  const got = new Uint8Array(512);
  const dv = new DataView(got.buffer);
  for (let i = 0; i < 512; i += 4) dv.setUint32(i, h.inl(P), true);
  assert.deepEqual(got, d.data.subarray(512, 1024));
  assert.equal(h.inb(P + 7), DRDY | DSC);
});

test('PIO WRITE SECTORS: first DRQ without IRQ, IRQ after each block, data in the image', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  ataCmd(h, 0x30, 10, 2);
  h.step();
  assert.equal(h.irq14.raises, 0);
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
  const src = new Uint8Array(1024).map((_, i) => (i * 3) & 0xff);
  writeData(h, P, src.subarray(0, 512));
  assert.equal(h.inb(PCTL) & BSY, BSY);
  h.step();
  assert.equal(h.irq14.raises, 1);
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
  for (let i = 512; i < 1024; i += 4) h.outl(P, src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24));
  h.step();
  assert.equal(h.irq14.raises, 2);
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.deepEqual(d.data.subarray(10 * 512, 12 * 512), src);
});

test('READ/WRITE MULTIPLE use SET MULTIPLE MODE blocks; invalid block sizes abort', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  h.outb(P + 2, 3);
  h.outb(P + 7, 0xc6);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | ERR);
  assert.equal(h.inb(P + 1), ABRT);
  h.outb(P + 2, 4);
  h.outb(P + 7, 0xc6);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC);
  ataCmd(h, 0xc4, 0, 6);
  h.step();
  h.inb(P + 7);
  assert.deepEqual(readData(h, P, 4 * 512), d.data.subarray(0, 4 * 512)); // one DRQ block of 4 sectors
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
  assert.deepEqual(readData(h, P, 2 * 512), d.data.subarray(4 * 512, 6 * 512)); // the remainder
  assert.equal(h.inb(P + 7), DRDY | DSC);
  const w = identify(h);
  assert.equal(w[59], 0x104);
});

test('LBA48: READ/WRITE SECTORS EXT beyond 2^32 sectors, HOB read-back', () => {
  const sparse = new SparseBlock(2 ** 48);
  const h = setup([{ kind: 'disk', backend: sparse }]);
  const lba = 0x12_3456_789a; // above 2^32 sectors
  const issue = (cmd: number, count: number) => {
    h.outb(P + 6, 0x40);
    h.outb(P + 2, count >> 8);
    h.outb(P + 2, count & 0xff);
    for (const [reg, shift] of [[3, 24], [4, 32], [5, 40]] as const) h.outb(P + reg, Math.floor(lba / 2 ** shift) & 0xff);
    for (const [reg, shift] of [[3, 0], [4, 8], [5, 16]] as const) h.outb(P + reg, Math.floor(lba / 2 ** shift) & 0xff);
    h.outb(P + 7, cmd);
    h.step();
  };
  issue(0x34, 1);
  const src = new Uint8Array(512).map((_, i) => i ^ 0x5a);
  writeData(h, P, src);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC);
  const back = new Uint8Array(512);
  sparse.read(lba * 512, back);
  assert.deepEqual(back, src);
  issue(0x24, 1);
  assert.deepEqual(readData(h, P, 512), src);
  h.outb(PCTL, 0x80); // HOB
  assert.deepEqual([3, 4, 5].map((r) => h.inb(P + r)), [0x34, 0x12, 0x00]);
  h.outb(PCTL, 0x00);
  assert.deepEqual([3, 4, 5].map((r) => h.inb(P + r)), [0x9a, 0x78, 0x56]);
  // LBA28 cannot reach there: the same low bytes address another sector.
  ataCmd(h, 0x20, 0x0fff_ffff, 1);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | DRQ);
});

test('CHS addressing through INITIALIZE DEVICE PARAMETERS geometry', () => {
  const d = disk(8 * MiB);
  const h = setup([{ kind: 'disk', backend: d }]);
  h.outb(P + 6, 0xa0 | (4 - 1)); // 4 heads
  h.outb(P + 2, 17); // 17 sectors per track
  h.outb(P + 7, 0x91);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC);
  // C=2 H=3 S=5 -> (2*4+3)*17 + 4 = 191
  h.outb(P + 6, 0xa0 | 3);
  h.outb(P + 2, 1);
  h.outb(P + 3, 5);
  h.outb(P + 4, 2);
  h.outb(P + 5, 0);
  h.outb(P + 7, 0x20);
  h.step();
  assert.deepEqual(readData(h, P, 512), d.data.subarray(191 * 512, 192 * 512));
  const w = identify(h);
  assert.deepEqual([w[54], w[55], w[56]], [Math.floor((8 * MiB) / 512 / 68), 4, 17]);
  // Sector 0 does not exist in CHS.
  h.outb(P + 6, 0xa0);
  h.outb(P + 3, 0);
  h.outb(P + 7, 0x20);
  h.step();
  assert.equal(h.inb(P + 1), IDNF);
});

test('errors: unknown command ABRT, out-of-range LBA IDNF, write to a read-only disk ABRT', () => {
  const ro = disk(MiB, true);
  const h = setup([{ kind: 'disk', backend: ro }]);
  h.outb(P + 7, 0xff);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | ERR);
  assert.equal(h.inb(P + 1), ABRT);
  assert.equal(h.irq14.raises, 1);
  ataCmd(h, 0x20, MiB / 512 - 1, 2);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | ERR);
  assert.equal(h.inb(P + 1), IDNF);
  ataCmd(h, 0x30, 0, 1);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC | ERR);
  assert.equal(h.inb(P + 1), ABRT);
  assert.equal(ro.writes, 0);
  ataCmd(h, 0x40, MiB / 512 - 1, 1); // READ VERIFY of the last sector is fine
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC);
});

test('SET FEATURES transfer mode is reflected in IDENTIFY; bad modes abort; power modes; flush', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  const setFeature = (f: number, n: number) => {
    h.outb(P + 1, f);
    h.outb(P + 2, n);
    h.outb(P + 7, 0xef);
    h.step();
    return h.inb(P + 7);
  };
  assert.equal(setFeature(0x03, 0x22), DRDY | DSC); // MWDMA2
  let w = identify(h);
  assert.equal(w[63], 0x0407);
  assert.equal(w[88], 0x003f);
  assert.equal(setFeature(0x03, 0x46), DRDY | DSC | ERR); // UDMA6 not supported
  assert.equal(setFeature(0x82, 0), DRDY | DSC);
  w = identify(h);
  assert.equal(w[85] & (1 << 5), 0);
  assert.equal(setFeature(0x77, 0), DRDY | DSC | ERR);
  h.outb(P + 7, 0xe0); // STANDBY IMMEDIATE
  h.step();
  h.outb(P + 7, 0xe5);
  h.step();
  assert.equal(h.inb(P + 2), 0x00);
  h.outb(P + 7, 0xe1);
  h.step();
  h.outb(P + 7, 0xe5);
  h.step();
  assert.equal(h.inb(P + 2), 0xff);
  h.outb(P + 7, 0xe7);
  h.step();
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.equal(d.flushes, 1);
});

test('SRST: BSY while asserted, signatures after; nIEN masks INTRQ; EXECUTE DEVICE DIAGNOSTIC', () => {
  const h = setup([{ kind: 'disk', backend: disk() }, { kind: 'cdrom', backend: null }]);
  h.outb(P + 3, 0x77);
  h.outb(PCTL, 0x04);
  assert.equal(h.inb(PCTL) & BSY, BSY);
  h.outb(PCTL, 0x00);
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.deepEqual([1, 2, 3, 4, 5].map((r) => h.inb(P + r)), [1, 1, 1, 0, 0]);
  h.outb(P + 6, 0xb0);
  assert.equal(h.inb(P + 7), 0); // packet device: DRDY clear after reset
  assert.deepEqual([1, 2, 3, 4, 5].map((r) => h.inb(P + r)), [1, 1, 1, 0x14, 0xeb]);
  h.outb(P + 6, 0xa0);
  h.outb(PCTL, 0x02); // nIEN
  h.outb(P + 7, 0xe5);
  h.step();
  assert.equal(h.irq14.level, 0);
  h.outb(PCTL, 0x00);
  assert.equal(h.irq14.level, 1); // INTRQ was pending, now driven
  h.inb(P + 7);
  h.outb(P + 7, 0x90);
  h.step();
  assert.equal(h.irq14.level, 1);
  assert.equal(h.inb(P + 1), 0x01);
});

test('CD drive: ATA commands abort with the packet signature; IDENTIFY PACKET DEVICE', () => {
  const h = setup([null, null, { kind: 'cdrom', backend: new MemBlock(2048 * 16) }]);
  h.outb(S + 6, 0xa0);
  h.outb(S + 7, 0xec);
  h.step();
  assert.equal(h.inb(S + 7) & ERR, ERR);
  assert.equal(h.inb(S + 1), ABRT);
  assert.deepEqual([h.inb(S + 4), h.inb(S + 5)], [0x14, 0xeb]);
  assert.equal(h.irq15.raises, 1);
  h.outb(S + 7, 0xa1);
  h.step();
  const w = new Uint16Array(readData(h, S, 512).buffer);
  assert.equal(w[0], 0x85c0);
  assert.equal(ataString(w, 27, 20).trim(), 'tsvm DVD-ROM');
  assert.equal(new Uint8Array(w.buffer).reduce((a, x) => a + x, 0) & 0xff, 0);
});

// ---- bus-master DMA ----

/** Write a PRD table at `at`: entries [addr, bytes, eot]. */
function prd(h: Harness, at: number, entries: [number, number, boolean][]): void {
  const dv = new DataView(h.ram.buffer);
  entries.forEach(([addr, bytes, eot], i) => {
    dv.setUint32(at + i * 8, addr, true);
    dv.setUint16(at + i * 8 + 4, bytes & 0xffff, true);
    dv.setUint16(at + i * 8 + 6, eot ? 0x8000 : 0, true);
  });
}

function bmSetup(h: Harness, table: number, toMemory: boolean, base = BM_BASE): void {
  h.outl(base + 4, table);
  h.outb(base, toMemory ? 0x08 : 0);
  h.outb(base + 2, 0x06); // clear interrupt and error
}

test('READ DMA through a two-entry PRD table: data in memory, interrupt bit, Active cleared', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  prd(h, 0x1000, [[0x20000, 1024, false], [0x30000, 512, true]]);
  bmSetup(h, 0x1000, true);
  ataCmd(h, 0xc8, 7, 3);
  h.outb(BM_BASE, 0x09); // start, to memory
  assert.equal(h.inb(BM_BASE + 2) & 1, 1); // Active
  h.step();
  assert.equal(h.irq14.level, 1);
  assert.equal(h.inb(BM_BASE + 2) & 7, 0x04); // Interrupt, not Active, no Error
  assert.equal(h.inb(P + 7), DRDY | DSC);
  assert.deepEqual(h.ram.subarray(0x20000, 0x20400), d.data.subarray(7 * 512, 9 * 512));
  assert.deepEqual(h.ram.subarray(0x30000, 0x30200), d.data.subarray(9 * 512, 10 * 512));
  h.outb(BM_BASE, 0x08);
  h.outb(BM_BASE + 2, 0x04);
  assert.equal(h.inb(BM_BASE + 2) & 4, 0);
});

test('WRITE DMA EXT; start before the command; a larger PRD table leaves Active set', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  h.ram.fill(0xab, 0x40000, 0x40000 + 1024);
  prd(h, 0x2000, [[0x40000, 4096, true]]);
  bmSetup(h, 0x2000, false);
  h.outb(BM_BASE, 0x01);
  h.outb(P + 6, 0x40);
  h.outb(P + 2, 0);
  h.outb(P + 2, 2);
  h.outb(P + 3, 0);
  h.outb(P + 4, 0);
  h.outb(P + 5, 0);
  h.outb(P + 3, 20);
  h.outb(P + 4, 0);
  h.outb(P + 5, 0);
  h.outb(P + 7, 0x35);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 7, 0x05); // Interrupt and still Active
  assert.ok(d.data.subarray(20 * 512, 22 * 512).every((b) => b === 0xab));
  h.outb(BM_BASE, 0x00);
  assert.equal(h.inb(BM_BASE + 2) & 1, 0);
});

test('bad PRD tables: outside memory sets Error; too short stops without IRQ; no end bit stops after 512 entries', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }], 64 * 1024);
  // Buffer beyond RAM.
  prd(h, 0x1000, [[0x800000, 512, true]]);
  bmSetup(h, 0x1000, true);
  ataCmd(h, 0xc8, 0, 1);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 7, 0x06); // Error + Interrupt, not Active
  assert.equal(h.inb(P + 7) & ERR, ERR);
  // Table itself beyond RAM.
  h.outb(BM_BASE, 0x08);
  bmSetup(h, 0xfff000, true);
  ataCmd(h, 0xc8, 0, 1);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 2, 2);
  // Table shorter than the transfer.
  h.outb(BM_BASE, 0x08);
  prd(h, 0x1000, [[0x4000, 512, true]]);
  bmSetup(h, 0x1000, true);
  const raises = h.irq14.raises;
  ataCmd(h, 0xc8, 0, 2);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 7, 0);
  assert.equal(h.irq14.raises, raises);
  assert.equal(h.inb(PCTL) & (BSY | DRQ), 0);
  // A table without an end bit: 2-byte entries, never EOT.
  h.outb(BM_BASE, 0x08);
  h.ram.fill(0, 0x2000, 0x2000 + 600 * 8);
  for (let i = 0; i < 600; i++) prd(h, 0x2000 + i * 8, [[0x8000, 2, false]]);
  bmSetup(h, 0x2000, true);
  ataCmd(h, 0xc8, 0, 4);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 2, 2);
  // The controller still works afterwards.
  h.outb(BM_BASE, 0x08);
  prd(h, 0x1000, [[0x4000, 512, true]]);
  bmSetup(h, 0x1000, true);
  ataCmd(h, 0xc8, 3, 1);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 7, 0x04);
  assert.deepEqual(h.ram.subarray(0x4000, 0x4200), d.data.subarray(3 * 512, 4 * 512));
});

test('an all-zero PRD table is 64 KiB entries at address 0 without an end bit: the data lands at 0, Active stays set', () => {
  const d = disk();
  const h = setup([{ kind: 'disk', backend: d }]);
  h.ram.fill(0, 0, 0x3000);
  bmSetup(h, 0x2000, true);
  ataCmd(h, 0xc8, 1, 2);
  h.outb(BM_BASE, 0x09);
  h.step();
  assert.equal(h.inb(BM_BASE + 2) & 7, 0x05);
  assert.deepEqual(h.ram.subarray(0, 1024), d.data.subarray(512, 1536));
  assert.equal(h.inb(P + 7), DRDY | DSC);
});

test('bus-master block moves with setBusMasterBase and unmaps', () => {
  const h = setup([{ kind: 'disk', backend: disk() }]);
  h.outl(BM_BASE + 4, 0x12345677);
  assert.equal(h.inl(BM_BASE + 4), 0x12345674);
  h.ide.setBusMasterBase(0xd000);
  assert.equal(h.inb(BM_BASE + 4), 0xff);
  assert.equal(h.inl(0xd000 + 4), 0x12345674);
  h.outb(0xd000 + 8 + 2, 0x60); // secondary drive-capable bits
  assert.equal(h.inb(0xd000 + 8 + 2), 0x60);
  h.ide.setBusMasterBase(0x1f0); // overlaps the ATA ports: stays unmapped
  assert.equal(h.ide.busMasterBase, -1);
  assert.equal(h.inb(0xd000), 0xff);
});

// ---- state ----

const specsFor = (d: MemBlock, cd: MemBlock): (IdeDriveSpec | null)[] => [
  { kind: 'disk', backend: d }, null, { kind: 'cdrom', backend: cd },
];

test('state round trip in the middle of a PIO read, with a timer pending', () => {
  const da = disk(), db = disk();
  const cda = new MemBlock(2048 * 8, true, pattern), cdb = new MemBlock(2048 * 8, true, pattern);
  const a = setup(specsFor(da, cda));
  ataCmd(a, 0x20, 3, 3);
  a.step();
  const first = readData(a, P, 256);
  a.outb(S + 6, 0xa0);
  a.outb(S + 7, 0xa1); // pending on the secondary
  const saved = a.ide.saveState();
  const b = setup(specsFor(db, cdb));
  b.clock.advanceTo(a.clock.nowNs);
  b.ide.loadState(saved);
  assert.deepEqual(b.ide.saveState(), saved);
  const drive = (h: Harness) => {
    const out = [readData(h, P, 256)];
    h.step();
    out.push(readData(h, P, 512));
    h.step();
    out.push(readData(h, P, 512), readData(h, S, 512));
    return out;
  };
  const ra = drive(a), rb = drive(b);
  assert.deepEqual(rb, ra);
  assert.deepEqual(concat2(first, ra[0]), da.data.subarray(3 * 512, 4 * 512));
  assert.deepEqual(b.ide.saveState(), a.ide.saveState());
  assert.equal(b.irq14.level, a.irq14.level);
});

function concat2(x: Uint8Array, y: Uint8Array): Uint8Array {
  const o = new Uint8Array(x.length + y.length);
  o.set(x);
  o.set(y, x.length);
  return o;
}

test('loadState rejects a malformed state before changing anything', () => {
  const h = setup([{ kind: 'disk', backend: disk() }]);
  const good = h.ide.saveState();
  const bad = structuredClone(good);
  (bad.secondary.drive0 as { ioBuf: Uint8Array }).ioBuf = new Uint8Array(3);
  assert.throws(() => h.ide.loadState(bad));
  const wrongKind = structuredClone(good);
  wrongKind.primary.drive0.kind = 2;
  assert.throws(() => h.ide.loadState(wrongKind));
  assert.deepEqual(h.ide.saveState(), good);
});

// ---- fuzz ----

test('seeded fuzz of all ports and the bus-master registers never throws', () => {
  for (const seed of [1, 2, 3]) {
    const rnd = prng(seed);
    const h = setup(
      [
        { kind: 'disk', backend: disk(256 * 1024) },
        { kind: 'cdrom', backend: new MemBlock(2048 * 32, true, pattern) },
        { kind: 'disk', backend: disk(64 * 1024, true) },
        { kind: 'cdrom', backend: null },
      ],
      256 * 1024,
    );
    const portList = [
      ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((i) => [P + i, S + i]), PCTL, SCTL,
      ...Array.from({ length: 16 }, (_, i) => BM_BASE + i),
    ];
    const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
    const cmds = [0x20, 0x24, 0x30, 0x34, 0xc4, 0xc5, 0xc6, 0xc8, 0xca, 0x25, 0x35, 0x40, 0x70, 0x90, 0x91, 0xa0, 0xa1, 0xec, 0xef, 0xe5, 0xe7, 0x08];
    for (let i = 0; i < 20000; i++) {
      const r = rnd();
      const port = pick(portList);
      const v = Math.floor(rnd() * 0x1_0000_0000) >>> 0;
      if (r < 0.25) h.inb(port);
      else if (r < 0.3) h.inw(port);
      else if (r < 0.33) h.inl(port);
      else if (r < 0.5) h.outb(port, v & 0xff);
      else if (r < 0.55) h.outw(pick([P, S]), v & 0xffff);
      else if (r < 0.58) h.outl(pick([P, S, BM_BASE + 4, BM_BASE + 12]), v);
      else if (r < 0.68) h.outb(pick([P + 7, S + 7]), pick(cmds));
      else if (r < 0.78) h.inw(pick([P, S]));
      else if (r < 0.8) h.ide.setBusMasterBase(rnd() < 0.9 ? BM_BASE : -1);
      else if (r < 0.801) h.ide.reset();
      else if (r < 0.802) h.ide.loadState(h.ide.saveState());
      else if (r < 0.803) h.ide.changeMedium(pick([1, 3]), rnd() < 0.5 ? null : new MemBlock(2048 * 4, true));
      else h.step(Math.floor(rnd() * 3 * ATA_COMMAND_DELAY_NS));
    }
  }
});

test('IdeController can be constructed with no drives at all', () => {
  const h = setup([]);
  assert.equal(h.inb(P + 7), 0);
  assert.ok(h.ide instanceof IdeController);
});

test('libata-style probe: devchk, soft reset, classify by signature and status, IDENTIFY, SET XFERMODE', () => {
  const h = setup([{ kind: 'disk', backend: disk() }, null, { kind: 'cdrom', backend: null }, { kind: 'disk', backend: disk() }]);
  const devchk = (base: number, dev: number) => {
    h.outb(base + 6, 0xa0 | (dev << 4));
    h.outb(base + 2, 0x55);
    h.outb(base + 3, 0xaa);
    h.outb(base + 2, 0xaa);
    h.outb(base + 3, 0x55);
    h.outb(base + 2, 0x55);
    h.outb(base + 3, 0xaa);
    return h.inb(base + 2) === 0x55 && h.inb(base + 3) === 0xaa;
  };
  const classify = (base: number, dev: number) => {
    h.outb(base + 6, 0xa0 | (dev << 4));
    const err = h.inb(base + 1);
    const st = h.inb(base + 7);
    const sig = (h.inb(base + 5) << 8) | h.inb(base + 4);
    if (err !== 0 && err !== 1 && !(dev === 0 && err === 0x81)) return 'none';
    if (sig === 0xeb14) return 'atapi';
    return st === 0 ? 'none' : 'ata';
  };
  const kinds: string[] = [];
  for (const [base, ctl] of [[P, PCTL], [S, SCTL]]) {
    const present = [devchk(base, 0), devchk(base, 1)];
    h.outb(ctl, 0x02 | 0x04);
    h.step(10_000);
    h.outb(ctl, 0x02);
    h.step(150_000_000);
    for (const dev of [0, 1]) kinds.push(present[dev] ? classify(base, dev) : 'none');
  }
  assert.deepEqual(kinds, ['ata', 'none', 'atapi', 'ata']);
  // IDENTIFY and SET FEATURES XFER MODE on the secondary slave, interrupt driven.
  h.outb(SCTL, 0x00);
  h.outb(S + 6, 0xb0);
  h.outb(S + 7, 0xec);
  h.step();
  assert.equal(h.irq15.level, 1);
  assert.equal(h.inb(S + 7), DRDY | DSC | DRQ);
  readData(h, S, 512);
  h.outb(S + 1, 0x03);
  h.outb(S + 2, 0x22);
  h.outb(S + 7, 0xef);
  h.step();
  assert.equal(h.inb(S + 7), DRDY | DSC);
});

test('state completeness: every own field of the controller, channels, bus masters and drives is declared or transient', () => {
  const h = setup([{ kind: 'disk', backend: disk() }, null, { kind: 'cdrom', backend: null }]);
  assert.deepEqual(undeclaredProperties(IdeController.stateSchema, h.ide), []);
  const ch = h.ide.channels[1];
  for (const [obj, where] of [[h.ide, 'addedLater'], [ch, 'channels.1.addedLater'], [ch.bm, 'channels.1.bm.addedLater'], [ch.drives[0], 'channels.1.drives.0.addedLater']] as const) {
    (obj as unknown as Record<string, number>).addedLater = 1;
    assert.deepEqual(undeclaredProperties(IdeController.stateSchema, h.ide), [where]);
    delete (obj as unknown as Record<string, number>).addedLater;
  }
});
