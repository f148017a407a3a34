/**
 * Linked and full clones of VM folders, against issue 10's target of a
 * linked clone in under 0.2 s whatever the disk size.
 *
 * For each disk (virtual size, data allocated in it) a VM folder is made
 * with `tsvm create NAME --disk-size SIZE` (the default guest: its qcow2 data
 * disk disks/vda.qcow2, the kernel and initramfs copied into boot/), and the
 * data is written into the disk through tsvm's block backend, 1 MiB of
 * random bytes at a time spread evenly over the disk (so the L1/L2 tables
 * and refcounts are spread too). Then:
 *
 *  - `tsvm clone --linked SRC DST` as a user runs it: the CLI process,
 *    spawned and waited for, wall time including Node's start-up (RUNS
 *    clones; each takes a new snapshot clone-DST of the source, as the
 *    command does by default, so the source's chain grows by one each);
 *  - the library call alone in this process: VmFolder.open and linkedClone;
 *  - `tsvm clone SRC DST` (a full clone, copying disks and boot files), once,
 *    for contrast.
 *
 * The floors: `node -e 0` (Node's bare start-up) and `tsvm help` (Node and
 * the CLI's entry module). Beside them, the other short folder commands in
 * the first disk's directory once its clones are made (the source, its
 * clones: 12 VMs): `tsvm list` and `tsvm snapshot SRC list`. Every clone is checked: `qemu-img check` passes
 * on its disk, `qemu-img info --backing-chain` resolves its chain, and
 * `qemu-img compare` finds it equal to the source's disk. Medians of RUNS.
 *
 * Usage: node dist/bench/clone.js [--runs N]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { openBlockFile } from '../src/host/node/block.js';
import { linkedClone, VmFolder } from '../src/vmm/folder.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const MIB = 1 << 20;
const GIB = 1 << 30;
const RUNS = process.argv.includes('--runs') ? Number(process.argv[process.argv.indexOf('--runs') + 1]) : 5;
const TARGET = 0.2;
const DISKS = [
  { size: 64 * MIB, label: '64M', dataMiB: 16 },
  { size: 2 * GIB, label: '2G', dataMiB: 64 },
  { size: 32 * GIB, label: '32G', dataMiB: 256 },
];

const top = mkdtempSync(join(tmpdir(), 'tsvm-bench-clone-'));
/** This disk size's directory (the VM folders are made and cloned in it, as in a user's directory). */
let dir = top;

/** CPU seconds (user + system) of this process's children that have been waited for (cutime, cstime in /proc/self/stat). */
function childCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // fields 16 and 17, USER_HZ ticks
}

/** Cpu seconds of the last run(). */
let lastCpu = 0;

/** Wall seconds of running a command to its end (its CPU seconds in lastCpu). */
function run(cmd: string, args: string[]): number {
  const c0 = childCpu();
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const t = (performance.now() - t0) / 1000;
  lastCpu = childCpu() - c0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit status ${r.status}`}: ${r.stderr}`);
  return t;
}

function qemuImg(...args: string[]): string {
  const r = spawnSync('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`qemu-img ${args.join(' ')}: exit status ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

/** The clone's disk passes qemu-img check, its chain opens, and it reads as the source's disk does. */
function check(clone: string, src: string): number {
  const disk = join(dir, `${clone}.tsvm/disks/vda.qcow2`);
  qemuImg('check', '-f', 'qcow2', disk);
  const chain = JSON.parse(qemuImg('info', '--backing-chain', '--output=json', disk)) as unknown[];
  qemuImg('compare', disk, join(dir, `${src}.tsvm/disks/vda.qcow2`));
  return chain.length;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const f3 = (x: number) => x.toFixed(3);
const spread = (xs: number[]) => `${f3(median(xs))} (${f3(Math.min(...xs))}-${f3(Math.max(...xs))})`;

try {
  const qemuImgOk = spawnSync('qemu-img', ['--version']).status === 0;
  if (!qemuImgOk) throw new Error('bench/clone needs qemu-img (Debian package qemu-utils) to check the clones');
  const bare: number[] = [];
  const bareCpu: number[] = [];
  const help: number[] = [];
  const helpCpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(run(process.execPath, ['-e', '0']));
    bareCpu.push(lastCpu);
    help.push(run(process.execPath, [TSVM, 'help']));
    helpCpu.push(lastCpu);
  }
  const rows: string[] = [];
  const others: string[] = [];
  for (const d of DISKS) {
    const src = `src${d.label}`;
    dir = join(top, d.label);
    mkdirSync(dir);
    run(process.execPath, [TSVM, 'create', src, '--disk-size', d.label]);
    const disk = join(dir, `${src}.tsvm/disks/vda.qcow2`);
    const blk = openBlockFile(disk, 'rw', 'bench', 'qcow2');
    const chunk = new Uint8Array(MIB);
    const stride = Math.floor(d.size / d.dataMiB / MIB) * MIB;
    for (let i = 0; i < d.dataMiB; i++) {
      randomFillSync(chunk);
      blk.backend.write(i * stride, chunk);
    }
    blk.backend.flush();
    blk.close();
    // on disk before the clones, as a disk written in an earlier session would be (else the first clone's fsyncs wait for it)
    spawnSync('sync');
    const fileMiB = Number(qemuImg('info', '--output=json', disk).match(/"actual-size": (\d+)/)?.[1] ?? NaN) / MIB;

    const cli: number[] = [];
    const cliCpu: number[] = [];
    let depth = 0;
    for (let i = 0; i < RUNS; i++) {
      cli.push(run(process.execPath, [TSVM, 'clone', '--linked', src, `${src}-l${i}`]));
      cliCpu.push(lastCpu);
      depth = check(`${src}-l${i}`, src);
    }
    const lib: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const vm = VmFolder.open(join(dir, `${src}.tsvm`));
      linkedClone(vm, null, join(dir, `${src}-p${i}.tsvm`), `${src}-p${i}`);
      lib.push((performance.now() - t0) / 1000);
      check(`${src}-p${i}`, src);
    }
    const full = run(process.execPath, [TSVM, 'clone', src, `${src}-full`]);
    const fullDepth = check(`${src}-full`, src);
    rows.push(
      `| ${d.label} | ${d.dataMiB} MiB (file ${fileMiB.toFixed(1)} MiB) | ${spread(cli)} | ${f3(median(cliCpu))} | ${spread(lib)} | ${f3(full)} | ${median(cli) < TARGET ? 'yes' : 'no'} | ${depth} / ${fullDepth} |`,
    );
    if (d === DISKS[0]) {
      for (const [label, args] of [['tsvm list', ['list']], [`tsvm snapshot ${src} list`, ['snapshot', src, 'list']]] as const) {
        const wall: number[] = [];
        const cpu: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          wall.push(run(process.execPath, [TSVM, ...args]));
          cpu.push(lastCpu);
        }
        others.push(`${label} ${spread(wall)}, CPU ${f3(median(cpu))}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).stdout?.toString().trim();
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bench']).stdout?.toString().trim();
  console.log(`${new Date().toISOString()}, ${git ?? '?'}${dirty ? ' (with uncommitted changes)' : ''}; node ${process.version}; ${cpus().length} CPUs; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${tmpdir()}`);
  console.log(`floors, wall s median of ${RUNS} (min-max) and CPU s median: node -e 0 ${spread(bare)}, CPU ${f3(median(bareCpu))}; tsvm help ${spread(help)}, CPU ${f3(median(helpCpu))}`);
  console.log(`other commands, among ${DISKS[0].label}'s VMs, the same: ${others.join('; ')}`);
  console.log(`baseline: issue 10's linked clone in under ${TARGET} s whatever the disk size; seconds, median of ${RUNS} (min-max)`);
  console.log(`| virtual size | data written | tsvm clone --linked (CLI, wall) | its CPU | linkedClone() in-process | tsvm clone (full, CLI) | CLI under ${TARGET} s | chain length linked / full |`);
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const r of rows) console.log(r);
} finally {
  rmSync(top, { recursive: true, force: true });
}
