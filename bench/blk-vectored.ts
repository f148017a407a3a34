/**
 * virtio-blk's data path on the host: 64 MiB sequential writes and reads
 * through the virtio-blk device model (a driver written here drives its
 * queue as Linux does: 512 KiB requests of 128 pages through an indirect
 * table) into a raw file and a qcow2 image in /tmp (the host's page cache).
 *
 * Baseline: the device as it was, one backend call per guest buffer
 * (VirtioBlk's `perPiece`), against one vectored call per request
 * (readv/writev; a qcow2 run of contiguous clusters one call). Reports the
 * host file calls (read/write/readv/writev, metadata included) and MiB/s,
 * best of 3 (a new image per qcow2 write run, so every run allocates).
 *
 * Usage: node dist/bench/blk-vectored.js [MiB, default 64] [pages per request, default 128]
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatGuestRam } from '../src/bus/dma.js';
import type { BlockBackend } from '../src/devices/backends.js';
import { BlkS, BlkT, VirtioBlk } from '../src/devices/virtio/blk.js';
import { VirtioF } from '../src/devices/virtio/device.js';
import { Common, VirtioBar, VirtioPci, VirtioStatus } from '../src/devices/virtio/pci.js';
import { openBlockFile } from '../src/host/node/block.js';
import { createQcow2File } from '../src/host/node/block.js';
import { nodeStorageHost } from '../src/host/node/file.js';
import type { StorageFile, StorageHost } from '../src/storage/file.js';
import type { IoVec } from '../src/storage/iovec.js';
import { openImage } from '../src/storage/open.js';

const MIB = Number(process.argv[2] ?? 64);
const PAGES = Number(process.argv[3] ?? 128);
const PAGE = 4096;
const REQ = PAGES * PAGE;
const TOTAL = MIB << 20;
const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-blkv-'));

/** Host file calls, counted. */
const calls = { n: 0 };

/** A raw file's backend with its calls counted (FileBlockBackend makes one syscall per call). */
class CountingBlock implements BlockBackend {
  constructor(private readonly _b: BlockBackend) {}
  get sizeBytes(): number {
    return this._b.sizeBytes;
  }
  get readOnly(): boolean {
    return this._b.readOnly;
  }
  read(o: number, d: Uint8Array): void {
    calls.n++;
    this._b.read(o, d);
  }
  write(o: number, s: Uint8Array): void {
    calls.n++;
    this._b.write(o, s);
  }
  readv(o: number, d: IoVec): void {
    calls.n++;
    this._b.readv!(o, d);
  }
  writev(o: number, s: IoVec): void {
    calls.n++;
    this._b.writev!(o, s);
  }
  flush(): void {
    this._b.flush();
  }
}

/** qcow2's files with their calls counted. */
const countingHost: StorageHost = {
  ...nodeStorageHost,
  open(name, writable) {
    const f = nodeStorageHost.open(name, writable);
    const c: StorageFile = {
      name: f.name,
      readOnly: f.readOnly,
      size: () => f.size(),
      read: (p, d) => (calls.n++, f.read(p, d)),
      write: (p, s) => (calls.n++, f.write(p, s)),
      readv: (p, d) => (calls.n++, f.readv!(p, d)),
      writev: (p, s) => (calls.n++, f.writev!(p, s)),
      sync: () => f.sync(),
      close: () => f.close(),
    };
    return c;
  },
};

/** The driver side: 1 MiB of guest RAM, one queue of 256, one indirect request in flight at a time. */
class Driver {
  readonly mem = new Uint8Array(1 << 20);
  readonly pci: VirtioPci;
  private readonly dv = new DataView(this.mem.buffer);
  private readonly ring = 0x10000;
  private readonly table = 0x20000;
  private readonly hdr = 0x21000;
  private readonly status = 0x21010;
  private readonly data = 0x40000;
  private avail = 0;

  constructor(dev: VirtioBlk) {
    this.pci = new VirtioPci(dev, new FlatGuestRam(this.mem));
    this.pci.reset();
    const w = (off: number, v: number, size: number) => this.pci.barWrite(VirtioBar.CFG_BAR, off, v, size);
    w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER, 1);
    w(Common.GFSELECT, 0, 4);
    w(Common.GF, 1 << VirtioF.RING_INDIRECT_DESC, 4);
    w(Common.GFSELECT, 1, 4);
    w(Common.GF, 1, 4);
    w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK, 1);
    w(Common.Q_SELECT, 0, 2);
    w(Common.Q_SIZE, 256, 2);
    w(Common.Q_DESCLO, this.ring, 4);
    w(Common.Q_AVAILLO, this.ring + 16 * 256, 4);
    w(Common.Q_USEDLO, this.ring + 0x2000, 4);
    w(Common.Q_ENABLE, 1, 2);
    w(Common.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK | VirtioStatus.DRIVER_OK, 1);
  }

  private desc(at: number, addr: number, len: number, flags: number, next: number): void {
    this.dv.setUint32(at, addr, true);
    this.dv.setUint32(at + 4, 0, true);
    this.dv.setUint32(at + 8, len, true);
    this.dv.setUint16(at + 12, flags, true);
    this.dv.setUint16(at + 14, next, true);
  }

  /** One request of PAGES pages at `sector`: header, the pages (in reverse order in RAM, as a guest's free pages often are), status. */
  request(type: BlkT.IN | BlkT.OUT, sector: number): void {
    this.dv.setUint32(this.hdr, type, true);
    this.dv.setUint32(this.hdr + 8, sector >>> 0, true);
    this.dv.setUint32(this.hdr + 12, Math.floor(sector / 2 ** 32), true);
    const n = PAGES + 2;
    const wr = type === BlkT.IN ? 2 : 0;
    this.desc(this.table, this.hdr, 16, 1, 1);
    for (let i = 0; i < PAGES; i++) this.desc(this.table + 16 * (i + 1), this.data + (PAGES - 1 - i) * PAGE, PAGE, 1 | wr, i + 2);
    this.desc(this.table + 16 * (n - 1), this.status, 1, 2, 0);
    this.desc(this.ring, this.table, 16 * n, 4, 0);
    const avail = this.ring + 16 * 256;
    this.dv.setUint16(avail + 4 + 2 * (this.avail % 256), 0, true);
    this.avail = (this.avail + 1) & 0xffff;
    this.dv.setUint16(avail + 2, this.avail, true);
    this.mem[this.status] = 0xff;
    this.pci.barWrite(VirtioBar.CFG_BAR, VirtioBar.NOTIFY, 0, 2);
    if (this.mem[this.status] !== BlkS.OK) throw new Error(`request at sector ${sector} failed: status ${this.mem[this.status]}`);
  }
}

type Fmt = 'raw' | 'qcow2';

function open(fmt: Fmt, fresh: boolean): { b: BlockBackend; close: () => void } {
  const path = join(dir, `disk.${fmt}`);
  if (fmt === 'raw') {
    if (fresh) {
      writeFileSync(path, '');
      truncateSync(path, TOTAL);
    }
    const o = openBlockFile(path, 'rw', 'bench', 'raw');
    return { b: new CountingBlock(o.backend), close: o.close };
  }
  if (fresh) {
    rmSync(path, { force: true });
    createQcow2File(path, { size: TOTAL });
  }
  const img = openImage(countingHost, path, { format: 'qcow2', readOnly: false });
  return { b: img, close: () => img.close() };
}

function run(fmt: Fmt, op: 'write' | 'read', perPiece: boolean): { calls: number; mibs: number } {
  let best = Infinity;
  let n = 0;
  for (let rep = 0; rep < 3; rep++) {
    const { b, close } = open(fmt, op === 'write');
    const drv = new Driver(new VirtioBlk('vda', b, 'bench', { perPiece }));
    if (op === 'write') drv.mem.fill(0x5a, 0x40000, 0x40000 + REQ);
    calls.n = 0;
    const t0 = process.hrtime.bigint();
    for (let off = 0; off < TOTAL; off += REQ) drv.request(op === 'read' ? BlkT.IN : BlkT.OUT, off / 512);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    n = calls.n;
    close();
    best = Math.min(best, s);
  }
  return { calls: n, mibs: MIB / best };
}

try {
  console.log(`blk-vectored: ${MIB} MiB sequential through the virtio-blk device model, ${REQ >> 10} KiB requests of ${PAGES} pages (indirect), files in ${tmpdir()}; best of 3; node ${process.version}`);
  console.log('format  op      per-piece calls   MiB/s   vectored calls   MiB/s   speed-up');
  for (const fmt of ['raw', 'qcow2'] as const) {
    for (const op of ['write', 'read'] as const) {
      const base = run(fmt, op, true);
      const vec = run(fmt, op, false);
      console.log(
        `${fmt.padEnd(7)} ${op.padEnd(6)} ${String(base.calls).padStart(15)} ${base.mibs.toFixed(0).padStart(7)} ${String(vec.calls).padStart(16)} ${vec.mibs.toFixed(0).padStart(7)}   ${(vec.mibs / base.mibs).toFixed(2)}x`,
      );
    }
  }
  console.log('baseline: per-piece = one backend call per guest buffer (the device before readv/writev); qcow2 writes allocate (a new image each run); calls are host file calls, metadata included');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
