/**
 * virtio-blk against IDE inside the default guest, on tsvm and on QEMU's TCG
 * side by side (issue 12). Each target boots the default image (its kernel,
 * initramfs and command line, 256 MiB of RAM) with two 64 MiB raw disks: one
 * on the PIIX3 IDE primary master (/dev/sda, ata_piix, bus-master DMA), one on
 * virtio-blk over PCI (/dev/vda); the bench checks that the guest sees them
 * so. The guest reads each with busybox dd to /dev/null and writes zeros to
 * it with conv=fsync, the page cache dropped before each run. A run is timed
 * from typing the command to the next prompt, and its cost is the emulator's
 * CPU seconds in that interval (steadier than wall time on a shared host):
 * MiB/s (CPU) is MiB moved per CPU second. IDE is each target's baseline
 * (issue 12's goal: virtio-blk at least 3x IDE), QEMU is tsvm's.
 *
 *  - tsvm: one in-process Machine (Machine.runSlice in a loop, as `tsvm run`
 *    does when busy), so the figures are the devices' and the guest's cost and
 *    not a terminal's; CPU from process.cpuUsage(), and guest instructions and
 *    guest seconds besides.
 *  - QEMU: qemu-system-i386 -accel tcg -machine pc,acpi=off -m 256 -kernel
 *    -initrd -append (the same command line), -drive
 *    file=A,if=ide,format=raw,index=0 -drive file=B,if=virtio,format=raw
 *    (QEMU's default cache=writeback), -nic none, the serial console on
 *    stdio; CPU from /proc: the sum over QEMU's threads of their schedstat
 *    (nanoseconds; a 32 MiB dd costs QEMU about 0.1 s, where /proc/PID/stat's
 *    10 ms ticks would be a tenth of it), /proc/PID/stat (user + system)
 *    where there is no schedstat. acpi=off (bench/lib/qemu.ts says why):
 *    with QEMU's ACPI tables the guest has no /dev/sda.
 *
 * Disks: raw files in /dev/shm (tmpfs: memory behind a file; the temporary
 * folder where there is none), new for each target and filled with a
 * non-zero pattern (the default guest's rc formats a blank /dev/vda and mounts
 * it on /data), opened by tsvm as `tsvm run` opens them: both emulators pay
 * for a host system call per request. `mem` gives tsvm in-memory disks
 * instead (the setup of the figures before the QEMU side); QEMU keeps files.
 *
 * Usage: node dist/bench/virtio-blk.js [MiB per run, default 32] [bs=SIZE] [rounds=N]
 *          [direct] [virtio-first] [mem] [per-piece] [--only tsvm,qemu]
 *  - bs=SIZE: dd's block size (4k, 64k, 1M; default 1M): small blocks let
 *    the per-request cost show;
 *  - rounds=N: the whole set N times in the same boot, the last round
 *    reported (the first one's CPU seconds in brackets): rounds=2 removes the
 *    warm-up (a JIT's compiling, the guest's code paths) that whichever disk
 *    runs first pays;
 *  - direct: iflag=direct/oflag=direct, past the guest's page cache, so what
 *    remains is the block layer, the driver and the device per request
 *    (where virtio-blk and IDE differ);
 *  - virtio-first: virtio's runs before IDE's in each round;
 *  - per-piece: tsvm's virtio-blk calls the backend once per buffer (the old path);
 *  - --only: the targets to run, tsvm and/or qemu (default both; QEMU first).
 */
import '../src/vmm/v8flags.js'; // first: before any WebAssembly is compiled
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBlockFile } from '../src/host/node/block.js';
import { Machine } from '../src/board/machine.js';
import type { BlockBackend } from '../src/devices/backends.js';
import { VirtioBlk } from '../src/devices/virtio/blk.js';
import { findDefaultImage } from '../src/vmm/image.js';
import { IDE_DISK_CHECK, ideDiskProblem, QEMU, qemuGuestArgs, qemuVersion } from './lib/qemu.js';
import { Session } from './lib/session.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DISK_BYTES = 64 << 20;
const MEM_MIB = 256;
/** The guest's prompt: at the end of a Session's plain text; in tsvm's raw console text (escape sequences may follow). */
const PROMPT = /(^|\n)tsvm:[^\n]*# $/;
const RAW_PROMPT = /(^|\n)tsvm:[^\n]*# /;
const USAGE = 'usage: node dist/bench/virtio-blk.js [MiB] [bs=SIZE] [rounds=N] [direct] [virtio-first] [mem] [per-piece] [--only tsvm,qemu]';

function fail(msg: string): never {
  console.error(`virtio-blk bench: ${msg}`);
  process.exit(1);
}

// ---- options ----
const argv = process.argv.slice(2);
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : ['qemu', 'tsvm'];
for (const t of only) if (t !== 'tsvm' && t !== 'qemu') fail(`--only ${argv[onlyAt + 1] ?? ''}: tsvm and/or qemu, comma-separated\n${USAGE}`);
const flags = onlyAt >= 0 ? argv.filter((_, i) => i !== onlyAt && i !== onlyAt + 1) : argv;
const KNOWN = /^(\d+|bs=\d+[kKM]?|rounds=[1-9]\d*|direct|virtio-first|mem|file|per-piece)$/; // file: the default now
for (const a of flags) if (!KNOWN.test(a)) fail(`unknown option ${a}\n${USAGE}`);
const has = (f: string) => flags.includes(f);
const mib = Number(flags.find((a) => /^\d+$/.test(a)) ?? 32);
const bsArg = flags.find((a) => a.startsWith('bs='))?.slice(3) ?? '1M';
const bsBytes = Number(bsArg.replace(/[kKM]$/, '')) * (/[kK]$/.test(bsArg) ? 1024 : bsArg.endsWith('M') ? 1 << 20 : 1);
const rounds = Number(flags.find((a) => a.startsWith('rounds='))?.slice(7) ?? 1);
const count = Math.max(1, Math.floor((mib * 1048576) / bsBytes));
const runMiB = (count * bsBytes) / 1048576;
if (bsBytes < 512 || bsBytes % 512) fail(`bs=${bsArg}: a multiple of 512 bytes`);
if (count * bsBytes > DISK_BYTES) fail(`${mib} MiB at bs=${bsArg} does not fit the ${DISK_BYTES >> 20} MiB disks`);
const direct = has('direct');
const virtioFirst = has('virtio-first');
const tsvmMem = has('mem');

const img = findDefaultImage() ?? fail('the default guest image is missing; build it with `node bin/tsvm.js image build`');
const qemuV = qemuVersion();
if (only.includes('qemu') && !qemuV) fail(`${QEMU} is not installed (Debian: apt-get install qemu-system-x86), so there is no QEMU side; --only tsvm runs without it`);

function progress(msg: string): void {
  process.stderr.write(`[bench:virtio-blk ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---- disks ----
/** The disks' contents: not blank (a blank /dev/vda would be formatted and mounted by the guest's rc), no file system. */
function pattern(bytes: number): Uint8Array {
  return new Uint8Array(bytes).map((_, i) => (i * 13) >>> 9);
}

class MemDisk implements BlockBackend {
  readonly readOnly = false;
  readonly data: Uint8Array;
  constructor(readonly sizeBytes: number) {
    this.data = pattern(sizeBytes);
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

const diskDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsvm-bench-vblk-'));
process.on('exit', () => rmSync(diskDir, { recursive: true, force: true }));
/** A new raw disk file holding the pattern. */
function diskFile(name: string): string {
  const path = join(diskDir, `${name}.img`);
  writeFileSync(path, pattern(DISK_BYTES));
  return path;
}

// ---- the targets ----
interface Sample {
  wall: number;
  cpu: number;
  /** QEMU only: the CPU seconds in /proc/PID/stat's 10 ms ticks (`cpu` is the threads' schedstat, in ns, where there is one). */
  ticks?: number;
  /** tsvm only: guest instructions and guest seconds. */
  instr?: number;
  guest?: number;
  text: string;
}
/** A booted guest at its prompt: type a shell command, get what it cost. */
interface Guest {
  type(cmd: string): Promise<Sample>;
  close(): Promise<void>;
}

function bootTsvm(): Guest {
  const closers: (() => void)[] = [];
  const disk = (name: string): BlockBackend => {
    if (tsvmMem) return new MemDisk(DISK_BYTES);
    const o = openBlockFile(diskFile(name), 'rw', name, 'raw');
    closers.push(() => o.close());
    return o.backend;
  };
  let out = '';
  const m = new Machine({
    memoryBytes: MEM_MIB << 20,
    linux: { kernel: readFileSync(img.kernel), vmlinux: readFileSync(img.vmlinux), initrd: readFileSync(img.initrd), cmdline: img.cmdline },
    hda: disk('tsvm-sda'),
    virtio: [new VirtioBlk('virtio-blk0', disk('tsvm-vda'), 'virtio-blk0', { perPiece: has('per-piece') })],
    serial: [{ write: (b: number) => (out += String.fromCharCode(b)) }],
  });
  /** Run until the prompt (synchronously: the machine runs in this process). */
  const untilPrompt = (limitInstr = 200e9): Omit<Sample, 'text'> => {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const i0 = m.cpu.instructionsRun;
    const g0 = m.clock.nowNs;
    for (;;) {
      const r = m.runSlice(200_000);
      if (r !== 'running') throw new Error(`tsvm: the guest stopped (${r}); output:\n${out.slice(-2000)}`);
      if (RAW_PROMPT.test(out.slice(-256))) break;
      if (m.cpu.instructionsRun - i0 > limitInstr) throw new Error(`tsvm: no prompt; output:\n${out.slice(-2000)}`);
    }
    const cu = process.cpuUsage(c0);
    return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (cu.user + cu.system) / 1e6, instr: m.cpu.instructionsRun - i0, guest: (m.clock.nowNs - g0) / 1e9 };
  };
  untilPrompt();
  return {
    async type(cmd) {
      out = '';
      m.serial[0].receive(new Uint8Array(Buffer.from(cmd + '\n')));
      const r = untilPrompt();
      return { ...r, text: out.replace(/\r/g, '') };
    },
    async close() {
      for (const c of closers) c();
    },
  };
}

async function bootQemu(): Promise<Guest> {
  const s = new Session(QEMU, qemuGuestArgs(img, MEM_MIB, ['-drive', `file=${diskFile('qemu-sda')},if=ide,format=raw,index=0`, '-drive', `file=${diskFile('qemu-vda')},if=virtio,format=raw`, '-nic', 'none']));
  const guest: Guest = {
    async type(cmd) {
      const m0 = s.threadCpu();
      const c0 = s.cpuSeconds();
      const r = await s.cmd(cmd, PROMPT, 1_800_000);
      const fine = s.cpuSince(m0);
      return { wall: r.secs, cpu: Number.isFinite(fine) ? fine : s.cpuSeconds() - c0, ticks: s.cpuSeconds() - c0, text: r.text };
    },
    async close() {
      if (!s.exitStatus) s.child.kill('SIGKILL');
      await s.exited;
    },
  };
  try {
    await s.waitFor(PROMPT, 0, 900_000, 'QEMU: the prompt after boot');
  } catch (e) {
    await guest.close();
    throw e;
  }
  return guest;
}

// ---- the workload, the same on both ----
type Op = 'read' | 'write';
type Dev = 'sda' | 'vda';
const key = (op: Op, dev: Dev) => `${op} ${dev}`;
/** Every round's sample per run. */
type Results = Map<string, Sample[]>;

/** The guest must see /dev/sda behind ata_piix and /dev/vda behind virtio, neither of them mounted. */
const CHECK = `${IDE_DISK_CHECK}; echo "vda: $(readlink -f /sys/block/vda)"; echo "mounted: $(grep -c -e /dev/sda -e /dev/vda /proc/mounts)"`;

async function workload(label: string, g: Guest): Promise<Results> {
  const c = (await g.type(CHECK)).text;
  const ide = ideDiskProblem(c);
  if (ide) throw new Error(`${label}: ${ide}`);
  if (!/vda: \/sys\/devices\/\S*\/virtio\d+\//.test(c)) throw new Error(`${label}: /dev/vda is not a virtio disk:\n${c}`);
  if (!/mounted: 0/.test(c)) throw new Error(`${label}: a test disk is mounted:\n${c}`);
  const cmds: Record<Op, (dev: Dev) => string> = {
    read: (dev) => `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/${dev} of=/dev/null bs=${bsBytes} count=${count}${direct ? ' iflag=direct' : ''}`,
    write: (dev) => `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/zero of=/dev/${dev} bs=${bsBytes} count=${count} conv=fsync${direct ? ' oflag=direct' : ''}`,
  };
  const res: Results = new Map();
  for (let round = 1; round <= rounds; round++)
    for (const dev of (virtioFirst ? ['vda', 'sda'] : ['sda', 'vda']) as Dev[])
      for (const op of ['read', 'write'] as Op[]) {
        const r = await g.type(cmds[op](dev));
        if (!/records out/.test(r.text)) throw new Error(`${label}: ${op} ${dev}: dd failed:\n${r.text}`);
        res.set(key(op, dev), [...(res.get(key(op, dev)) ?? []), r]);
        progress(`${label} round ${round}: ${op} ${dev} ${r.cpu.toFixed(3)} CPU s${r.ticks === undefined ? '' : ` (${r.ticks.toFixed(2)} in /proc/PID/stat's ticks)`}, ${r.wall.toFixed(2)} wall s`);
      }
  return res;
}

async function measure(label: string, boot: () => Guest | Promise<Guest>): Promise<Results> {
  progress(`${label}: booting`);
  const g = await boot();
  try {
    return await workload(label, g);
  } finally {
    await g.close();
  }
}

// ---- run and report ----
const load0 = loadavg();
const started = new Date();
const results = new Map<'qemu' | 'tsvm', Results>();
try {
  if (only.includes('qemu')) results.set('qemu', await measure('QEMU', bootQemu));
  if (only.includes('tsvm')) results.set('tsvm', await measure('tsvm', bootTsvm));
} catch (e) {
  fail((e as Error).message);
}

const last = (t: 'qemu' | 'tsvm', op: Op, dev: Dev) => results.get(t)?.get(key(op, dev))?.at(-1);
const x = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(v < 0.1 ? 3 : 2)}x`);
const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).stdout?.toString().trim() || '?';
console.log(
  `virtio-blk bench, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${head}; default guest (Linux ${img.kernelVersion}), ${MEM_MIB} MiB; ` +
    `busybox dd of ${runMiB} MiB per run, bs=${bsArg}${direct ? ', O_DIRECT' : ''}, page cache dropped, ${virtioFirst ? 'virtio' : 'IDE'} first` +
    `${rounds > 1 ? `, the last of ${rounds} rounds (CPU s of the first in brackets)` : ''}; disks: ${tsvmMem ? 'tsvm in memory, QEMU ' : ''}raw files in ${diskDir.replace(/\/[^/]*$/, '')}` +
    `${has('per-piece') ? '; tsvm virtio-blk one backend call per buffer' : ''}`,
);
console.log(`node ${process.version}; ${qemuV ?? 'no QEMU'}; ${cpus().length} CPUs; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end`);
console.log('');
console.log('| target | run | wall s | CPU s | MiB/s (CPU) | virtio/IDE | tsvm/QEMU | guest s | M guest instr |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const t of ['qemu', 'tsvm'] as const) {
  const rs = results.get(t);
  if (!rs) continue;
  for (const op of ['read', 'write'] as Op[])
    for (const dev of ['sda', 'vda'] as Dev[]) {
      const all = rs.get(key(op, dev))!;
      const r = all.at(-1)!;
      const cpu = `${r.cpu.toFixed(2)}${all.length > 1 ? ` (${all[0].cpu.toFixed(2)})` : ''}`;
      const vsIde = dev === 'vda' ? x(last(t, op, 'sda')!.cpu / r.cpu) : '1.00x';
      const q = last('qemu', op, dev);
      const vsQemu = t === 'tsvm' && q ? x(q.cpu / r.cpu) : '';
      const guest = r.guest === undefined ? '-' : r.guest.toFixed(2);
      const instr = r.instr === undefined ? '-' : (r.instr / 1e6).toFixed(0);
      console.log(`| ${t === 'qemu' ? 'QEMU TCG' : 'tsvm'} | ${op} ${dev === 'sda' ? 'IDE' : 'virtio'} | ${r.wall.toFixed(2)} | ${cpu} | ${(runMiB / r.cpu).toFixed(1)} | ${vsIde} | ${vsQemu} | ${guest} | ${instr} |`);
    }
}
console.log('');
console.log('virtio/IDE and tsvm/QEMU are ratios of speed per CPU second (the other\'s CPU s over this one\'s): virtio/IDE above 1, virtio-blk is the faster (issue 12 asks for 3x); tsvm/QEMU below 1, tsvm is the slower.');
console.log('IDE: PIIX3 with ata_piix and bus-master DMA on both. CPU s: tsvm this process\'s (process.cpuUsage), QEMU its threads\' from /proc/PID/task/*/schedstat (ns; /proc/PID/stat\'s 10 ms ticks where there is none).');
