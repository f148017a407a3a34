/**
 * virtio-blk against IDE, inside the default guest: one machine with the same
 * 64 MiB in-memory disk image on the PIIX3 IDE primary master (/dev/sda,
 * ata_piix, bus-master DMA) and on virtio-blk (/dev/vda). The guest reads and
 * writes each with busybox dd (page cache dropped before each run, writes
 * flushed with conv=fsync), and the bench reports, per run, host wall time,
 * guest instructions and guest time, with IDE as the baseline.
 *
 * In-process (Machine.runSlice in a loop, as `tsvm run` does when busy), so the
 * figures are the devices' and the guest drivers' cost and not the terminal's.
 * Usage: node dist/bench/virtio-blk.js [MiB per run, default 32] [virtio-first] [direct] [file] [per-piece]
 * `file` puts both disks in raw files (tsvm run's backends) instead of memory;
 * `per-piece` makes virtio-blk call the backend once per buffer (the old path).
 * `direct` adds iflag=direct/oflag=direct to dd: the page cache's copies leave
 * the guest's path, so what remains is the block layer, the driver and the
 * device per request (where virtio-blk and IDE differ).
 */
import '../src/vmm/v8flags.js'; // first: before any WebAssembly is compiled
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBlockFile } from '../src/host/node/block.js';
import { Machine } from '../src/board/machine.js';
import type { BlockBackend } from '../src/devices/backends.js';
import { VirtioBlk } from '../src/devices/virtio/blk.js';
import { findDefaultImage } from '../src/vmm/image.js';

const DISK_MIB = 64;
const PROMPT = /(^|\n)tsvm:[^\n]*# /;

class MemDisk implements BlockBackend {
  readonly readOnly = false;
  readonly data: Uint8Array;
  constructor(readonly sizeBytes: number) {
    this.data = new Uint8Array(sizeBytes).map((_, i) => (i * 13) >>> 9);
  }
  read(off: number, dst: Uint8Array): void {
    dst.set(this.data.subarray(off, off + dst.length));
  }
  write(off: number, src: Uint8Array): void {
    this.data.set(src, off);
  }
  /** Vectored, as the file backends are: virtio-blk hands a whole request over in one call. */
  readv(off: number, dsts: readonly Uint8Array[]): void {
    for (const d of dsts) {
      this.read(off, d);
      off += d.length;
    }
  }
  writev(off: number, srcs: readonly Uint8Array[]): void {
    for (const s of srcs) {
      this.write(off, s);
      off += s.length;
    }
  }
  flush(): void {}
}

const img = findDefaultImage();
if (!img) {
  console.error('virtio-blk bench: the default guest image is missing; build it with `node bin/tsvm.js image build`');
  process.exit(1);
}
const mib = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 32);
const bsArg = process.argv.slice(2).find((a) => /^bs=\d+[kKmM]?$/.test(a))?.slice(3) ?? '1M';
const bsBytes = Number(bsArg.replace(/[kKmM]$/, '')) * (/[kK]$/.test(bsArg) ? 1024 : /[mM]$/.test(bsArg) ? 1 << 20 : 1);
const rounds = Number(process.argv.slice(2).find((a) => /^rounds=\d+$/.test(a))?.slice(7) ?? 1);
// `file`: both disks are raw files in the temporary folder, opened as tsvm run opens them (the page cache behind them)
function disk(name: string): BlockBackend {
  if (!process.argv.includes('file')) return new MemDisk(DISK_MIB << 20);
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-vblk-'));
  const path = join(dir, `${name}.img`);
  writeFileSync(path, '');
  truncateSync(path, DISK_MIB << 20);
  const o = openBlockFile(path, 'rw', name, 'raw');
  process.on('exit', () => {
    o.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return o.backend;
}
let out = '';
const m = new Machine({
  memoryBytes: 256 * 1024 * 1024,
  linux: { kernel: readFileSync(img.kernel), vmlinux: readFileSync(img.vmlinux), initrd: readFileSync(img.initrd), cmdline: img.cmdline },
  hda: disk('hda'),
  virtio: [new VirtioBlk('virtio-blk0', disk('vda'), 'virtio-blk0', { perPiece: process.argv.includes('per-piece') })],
  serial: [{ write: (b: number) => (out += String.fromCharCode(b)) }],
});

/** Run until the prompt; returns wall seconds, guest instructions and guest seconds spent. */
function untilPrompt(limitInstr = 200e9): { wall: number; cpu: number; instr: number; guest: number } {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const i0 = m.cpu.instructionsRun;
  const g0 = m.clock.nowNs;
  for (;;) {
    const r = m.runSlice(200_000);
    if (r !== 'running') throw new Error(`the guest stopped (${r}); output:\n${out.slice(-2000)}`);
    if (PROMPT.test(out.slice(-256))) break;
    if (m.cpu.instructionsRun - i0 > limitInstr) throw new Error(`no prompt; output:\n${out.slice(-2000)}`);
  }
  const cu = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (cu.user + cu.system) / 1e6, instr: m.cpu.instructionsRun - i0, guest: (m.clock.nowNs - g0) / 1e9 };
}

function type(cmd: string): { wall: number; cpu: number; instr: number; guest: number; text: string } {
  out = '';
  m.serial[0].receive(new Uint8Array(Buffer.from(cmd + '\n')));
  const r = untilPrompt();
  return { ...r, text: out };
}

untilPrompt();
const check = type('ls /dev/sda /dev/vda');
if (!/\/dev\/sda/.test(check.text) || !/\/dev\/vda/.test(check.text)) throw new Error(`the guest lacks a disk:\n${check.text}`);

const runs: [string, string][] = [];
const direct = process.argv.includes('direct');
const iflag = direct ? ' iflag=direct' : '';
const oflag = direct ? ' oflag=direct' : '';
// argv[3] 'virtio-first' swaps the order, to see what warming up (JIT, page cache code paths) gives the second
const virtioFirst = process.argv.includes('virtio-first');
const count = Math.max(1, Math.floor((mib << 20) / bsBytes));
for (let round = 0; round < rounds; round++)
  for (const dev of virtioFirst ? ['vda', 'sda'] : ['sda', 'vda']) {
    runs.push([`read ${dev}`, `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/${dev} of=/dev/null bs=${bsArg} count=${count}${iflag}`]);
    runs.push([`write ${dev}`, `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/zero of=/dev/${dev} bs=${bsArg} count=${count} conv=fsync${oflag}`]);
  }
const results = new Map<string, { wall: number; cpu: number; instr: number; guest: number }>();
for (const [name, cmd] of runs) {
  const r = type(cmd);
  if (!/records out/.test(r.text)) throw new Error(`${name}: dd failed:\n${r.text}`);
  results.set(name, r);
}
console.log(`virtio-blk bench: default guest (Linux ${img.kernelVersion}), busybox dd of ${mib} MiB, bs=${bsArg}${rounds > 1 ? `, last of ${rounds} rounds` : ''}${direct ? ', O_DIRECT' : ''}, page cache dropped, ${virtioFirst ? 'virtio' : 'IDE'} runs first, disks ${process.argv.includes('file') ? 'raw files' : 'in memory'}${process.argv.includes('per-piece') ? ', virtio-blk one backend call per buffer' : ''}; node ${process.version}`);
console.log('run           wall s   CPU s   MiB/s (CPU)   guest s   M guest instr   IDE/this (CPU)');
for (const op of ['read', 'write']) {
  const base = results.get(`${op} sda`)!;
  for (const dev of ['sda', 'vda']) {
    const r = results.get(`${op} ${dev}`)!;
    const label = `${op} ${dev === 'sda' ? 'IDE' : 'virtio'}`.padEnd(12);
    console.log(`${label} ${r.wall.toFixed(2).padStart(7)} ${r.cpu.toFixed(2).padStart(7)}   ${(mib / r.cpu).toFixed(1).padStart(11)}   ${r.guest.toFixed(2).padStart(7)}   ${(r.instr / 1e6).toFixed(0).padStart(13)}   ${(base.cpu / r.cpu).toFixed(2)}x`);
  }
}
console.log('baseline: IDE (PIIX3, ata_piix with bus-master DMA) on the same machine and image; goal (issue 12): virtio-blk at least 3x IDE');
console.log('CPU s is this process\'s CPU time for the run (steadier than wall time on a shared host); MiB/s and the ratio use it');
