// Dirty-page tracking from the running machine: after a mark, exactly the RAM
// pages written since show up, whoever wrote them: the CPU on each tier
// (interpreter, basic blocks, wasm regions), page-table A/D updates, IDE
// bus-master DMA and a virtio device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from './machine.js';
import { BlockCache } from '../jit/blocks.js';
import { WasmCache } from '../jit/wasm-tier.js';
import type { AccelConfig } from '../jit/accel.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { MemBlock } from '../../test/devices/ata-harness.js';
import { SeededEntropy } from '../../test/devices/virtio-harness.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
/** Where the firmware polls for the next phase (tools/demo/dirty.asm). */
const PHASE = 0x600;
const PT_PAGE = 2;

function firmware(): Uint8Array {
  const out = join(mkdtempSync(join(tmpdir(), 'tsvm-dirty-')), 'dirty.bin');
  execFileSync('nasm', ['-f', 'bin', join(ROOT, 'tools/demo/dirty.asm'), '-o', out]);
  return new Uint8Array(readFileSync(out));
}

function dirtyPages(m: Machine): number[] {
  const b = m.mem.dirtyRamBitmap();
  const out: number[] = [];
  for (let p = 0; p < b.length * 8; p++) if (b[p >> 3] & (1 << (p & 7))) out.push(p);
  return out;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** Run until the firmware reports `n` done on the debug console. */
function runPhase(m: Machine, out: number[], n: number): void {
  const reports = out.length;
  m.mem.mem[PHASE] = n; // the host's own write: not the guest's, not tracked
  for (let i = 0; i < 200 && out.length === reports; i++) m.runSlice(5000);
  assert.deepEqual(out.slice(reports), [n], `phase ${n} did not finish (${m.stopReason})`);
}

const TIERS: AccelConfig[] = [
  { tier: 'interp', threshold: 1 },
  { tier: 'blocks', threshold: 1 },
  { tier: 'wasm', threshold: 1 },
];

for (const accel of TIERS) {
  test(`the CPU's writes since a mark are exactly the dirty pages: tier=${accel.tier}`, () => {
    const out: number[] = [];
    const m = new Machine({ memoryBytes: 8 << 20, bios: firmware(), accel, debugcon: { write: (b) => out.push(b) } });
    assert.equal(dirtyPages(m).length, (8 << 20) >>> 12, 'before any mark every page counts as written');
    for (let i = 0; i < 20; i++) m.runSlice(5000); // paging on, polling phase 0
    m.mem.markClean();
    m.runSlice(20000);
    assert.deepEqual(dirtyPages(m), [], 'a guest that only reads dirties nothing');

    runPhase(m, out, 1);
    // 16 pages written, and the page table whose accessed/dirty bits the CPU set on the way
    assert.deepEqual(dirtyPages(m), [PT_PAGE, ...range(0x10, 16)]);
    m.mem.markClean();
    runPhase(m, out, 2);
    runPhase(m, out, 3);
    assert.deepEqual(dirtyPages(m), [PT_PAGE, ...range(0x20, 32)], 'two phases in one epoch');
    m.mem.markClean();
    runPhase(m, out, 1);
    assert.deepEqual(dirtyPages(m), range(0x10, 16), 'pages dirty in an earlier epoch count again; A/D bits already set');
    // and the data is there: the tracking did not lose a store
    for (const p of range(0x10, 16)) assert.equal(m.mem.mem[p * 4096 + 0x123], 1);
    for (const p of range(0x20, 16)) assert.equal(m.mem.mem[p * 4096 + 0x123], 2);
    if (m.jit instanceof WasmCache) assert.ok(m.jit.instructionsRun > 0, 'compiled regions ran');
    if (m.jit instanceof BlockCache) assert.ok(m.jit.compiled > 0, 'blocks were compiled');
  });
}

test('IDE bus-master DMA into RAM marks the pages it wrote', () => {
  const disk = new MemBlock(1 << 20, false, (i) => (i * 7) & 0xff);
  const m = new Machine({ memoryBytes: 8 << 20, bios: firmware(), hda: disk });
  for (let i = 0; i < 20; i++) m.runSlice(5000);
  const BM = 0xc000;
  const out = (port: number, v: number) => m.io.write8[port](port, v);
  const inb = (port: number) => m.io.read8[port](port);
  m.ide.setBusMasterBase(BM);
  // PRD table at 0x50000: 4 KiB to 0x70000, 1 KiB to 0x91000 (end of table); written by the host
  const dv = new DataView(m.mem.mem.buffer, m.mem.mem.byteOffset);
  dv.setUint32(0x50000, 0x70000, true);
  dv.setUint16(0x50004, 4096, true);
  dv.setUint32(0x50008, 0x91000, true);
  dv.setUint16(0x5000c, 1024, true);
  dv.setUint16(0x5000e, 0x8000, true);
  m.mem.markClean();
  for (let i = 0; i < 4; i++) out(BM + 4 + i, (0x50000 >>> (8 * i)) & 0xff);
  out(BM + 2, 0x06);
  out(BM, 0x08); // to memory
  // READ DMA, LBA 2, 10 sectors
  out(0x1f6, 0xe0);
  out(0x1f2, 10);
  out(0x1f3, 2);
  out(0x1f4, 0);
  out(0x1f5, 0);
  out(0x1f7, 0xc8);
  out(BM, 0x09); // start
  for (let i = 0; i < 50 && (inb(BM + 2) & 4) === 0; i++) m.runSlice(5000);
  assert.equal(inb(BM + 2) & 7, 4, 'the transfer finished with an interrupt and no error');
  assert.deepEqual(m.mem.mem.subarray(0x70000, 0x71000), disk.data.subarray(1024, 1024 + 4096));
  assert.deepEqual(dirtyPages(m), [0x70, 0x91]);
});

test('a virtio device writing a buffer in guest RAM marks its pages', () => {
  const rom = new Uint8Array(0x10000);
  rom.set([0xfa, 0xf4], 0xfff0); // cli; hlt
  const m = new Machine({ memoryBytes: 16 << 20, bios: rom, virtio: [new VirtioRng('virtio-rng0', new SeededEntropy(3))] });
  const BAR4 = 0xfebf0000;
  const RING = 0x10000;
  const BUF = 0x35000;
  const t = m.virtio[0];
  t.writeConfig(0x20, BAR4, 4);
  t.writeConfig(0x04, 0x6, 2);
  const mem = m.mem;
  mem.write8(BAR4 + 0x14, 3);
  mem.write32(BAR4 + 0x08, 1);
  mem.write32(BAR4 + 0x0c, 1); // VERSION_1
  mem.write8(BAR4 + 0x14, 0xb);
  mem.write16(BAR4 + 0x16, 0);
  mem.write16(BAR4 + 0x18, 16);
  mem.write32(BAR4 + 0x20, RING);
  mem.write32(BAR4 + 0x28, RING + 0x100);
  mem.write32(BAR4 + 0x30, RING + 0x200);
  mem.write16(BAR4 + 0x1c, 1);
  mem.write8(BAR4 + 0x14, 0xf);
  // one 16-byte writable buffer, posted by the "driver" (the host, through the memory bus: tracked too)
  mem.write32(RING, BUF);
  mem.write32(RING + 4, 0);
  mem.write32(RING + 8, 16);
  mem.write16(RING + 12, 2);
  mem.write16(RING + 0x100 + 4, 0);
  mem.write16(RING + 0x100 + 2, 1);
  mem.markClean();
  mem.write16(BAR4 + 0x3000, 0); // kick: the device fills the buffer and the used ring
  assert.equal(mem.read16(RING + 0x200 + 2), 1, 'used idx');
  assert.notDeepEqual(mem.mem.subarray(BUF, BUF + 16), new Uint8Array(16));
  assert.deepEqual(dirtyPages(m), [RING >>> 12, BUF >>> 12]);
});

test('loading a machine state counts all of RAM as written', () => {
  const out: number[] = [];
  const m = new Machine({ memoryBytes: 8 << 20, bios: firmware(), debugcon: { write: (b) => out.push(b) } });
  for (let i = 0; i < 20; i++) m.runSlice(5000);
  const s = m.saveState();
  m.mem.markClean();
  m.loadState(s);
  assert.equal(dirtyPages(m).length, (8 << 20) >>> 12);
});

for (const accel of TIERS) {
  test(`while SeaBIOS boots, every page that changed since a mark is marked: tier=${accel.tier}`, () => {
    const m = new Machine({ memoryBytes: 32 << 20, bios: new Uint8Array(readFileSync('/usr/share/seabios/bios-256k.bin')), accel });
    let changedSeen = 0;
    for (let round = 0; round < 8; round++) {
      m.mem.markClean();
      const before = m.mem.mem.slice(0, m.mem.ramSize);
      for (let i = 0; i < 40 && m.runSlice(20_000) === 'running'; i++);
      const dirty = new Set(dirtyPages(m));
      for (let p = 0; p < m.mem.ramSize >>> 12; p++) {
        const a = before.subarray(p * 4096, p * 4096 + 4096);
        const b = m.mem.mem.subarray(p * 4096, p * 4096 + 4096);
        if (Buffer.compare(a, b) !== 0) {
          changedSeen++;
          assert.ok(dirty.has(p), `round ${round}: page ${p.toString(16)} changed but is not marked dirty`);
        }
      }
    }
    assert.ok(changedSeen > 50, `the firmware changed only ${changedSeen} pages`);
  });
}
