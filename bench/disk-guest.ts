/**
 * qcow2 against raw inside the default Linux guest, on tsvm and on QEMU.
 * Every run boots the default guest's kernel (bzImage) and initramfs with
 * -kernel/-initrd, 256 MiB of RAM and a new 64 MiB disk as the primary IDE
 * disk (/dev/sda): a sparse raw file (the baseline), then a new qcow2 image
 * (made by tsvm's createQcow2, 64 KiB clusters; QEMU opens the same kind of
 * file). The same busybox workload runs on each, one emulator at a time:
 *
 *  - seq write: dd of 16 MiB of random data (made in /tmp first, untimed) to
 *    /dev/sda in 64 KiB blocks, then sync (allocating on qcow2);
 *  - seq read: the 16 MiB back to /dev/null with the page cache dropped;
 *  - rand read: 300 dd's of one 4 KiB block at a pseudo-random offset in
 *    the written 16 MiB (iflag=direct: past the guest's page cache);
 *  - rand write: 300 dd's of one 4 KiB block at a pseudo-random offset in
 *    the whole 64 MiB (oflag=direct, conv=notrunc), then sync: about three
 *    in four land in clusters a qcow2 image has not allocated yet;
 *  - exec floor: the same loop of 300 dd's from /dev/zero to /dev/null, no
 *    disk: what the shell loop and busybox's fork/exec cost by themselves.
 *
 * Times are host wall seconds from typing the command to the next prompt
 * (the emulated CPU, the disk controller's emulation and the image format
 * together); the CPU seconds the emulator process used in the same interval
 * are given too, since the host is shared. After the seq write the guest
 * checks that what it reads back from the disk has the MD5 of what it wrote,
 * and after each qcow2 run `qemu-img check` must pass on the image.
 *
 * QEMU: qemu-system-i386 -accel tcg -machine pc,acpi=off -m 256 -kernel
 * -initrd -append (the same command line), -drive
 * file=IMG,format=raw|qcow2,if=ide,index=0 (QEMU's default cache=writeback),
 * -nographic -no-reboot -nic none. Without acpi=off the guest has no
 * /dev/sda (bench/lib/qemu.ts says why) and the dd's wrote an ordinary file in
 * /dev, which the QEMU rows before 2026-12-07 measured; so before anything is
 * timed the guest must show /dev/sda as the ata_piix disk, on both emulators.
 * At the end tsvm's guest powers off; QEMU's, without ACPI, reboots (QEMU
 * exits on it, -no-reboot).
 *
 * Usage: node dist/bench/disk-guest.js [--only tsvm,qemu] [--formats raw,qcow2]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../src/host/node/file.js';
import { createQcow2 } from '../src/storage/create.js';
import { findDefaultImage } from '../src/vmm/image.js';
import { IDE_DISK_CHECK, ideDiskProblem, QEMU, QEMU_EXIT, qemuGuestArgs, qemuVersion } from './lib/qemu.js';
import { Session } from './lib/session.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const PROMPT = /tsvm:[^\n]*# (?:\x1b\[6n)?$/;
const SIZE = 64 << 20;
const MIB = 16;
const N = 300;
const MEM = 256;

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? new Set((process.argv[i + 1] ?? '').split(',')) : null;
};
const only = arg('--only');
const formats = [...(arg('--formats') ?? ['raw', 'qcow2'])] as ('raw' | 'qcow2')[];

const img = findDefaultImage();
if (!img) {
  console.error('bench/disk-guest: the default guest image is not built; run: node bin/tsvm.js image build');
  process.exit(1);
}
const qemuV = qemuVersion();
const qemuOk = qemuV !== undefined;
const qemuImgOk = spawnSync('qemu-img', ['--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-dg-'));

type Phase = 'seq write' | 'seq read' | 'rand read' | 'rand write' | 'exec floor';
const PHASES: Phase[] = ['seq write', 'seq read', 'rand read', 'rand write', 'exec floor'];
type Times = Record<Phase, { wall: number; cpu: number }>;

/** The guest's shell functions for the loops: n steps a 31-bit LCG, so every run does the same offsets. */
function loops(direct: boolean): string[] {
  const iflag = direct ? ' iflag=direct' : '';
  const oflag = direct ? ' oflag=direct' : '';
  const loop = (body: string) => `n=7;i=0;while [ $i -lt ${N} ];do n=$(((n*1103515245+12345)%2147483648));${body} 2>/dev/null;i=$((i+1));done`;
  return [
    `xr(){ ${loop(`dd if=/dev/sda of=/dev/null bs=4k count=1 skip=$((n%${(MIB << 20) / 4096}))${iflag}`)};}`,
    `xw(){ ${loop(`dd if=/tmp/r of=/dev/sda bs=4k count=1 skip=$((n%4096)) seek=$((n%${SIZE / 4096})) conv=notrunc${oflag}`)};}`,
    `xn(){ ${loop('dd if=/dev/zero of=/dev/null bs=4k count=1')};}`,
  ];
}

async function measure(emu: 'tsvm' | 'qemu', format: 'raw' | 'qcow2', disk: string): Promise<{ t: Times; direct: boolean }> {
  const s =
    emu === 'tsvm'
      ? new Session(process.execPath, [TSVM, 'run', '-kernel', img!.kernel, '-initrd', img!.initrd, '-append', img!.cmdline, '-hda', disk, '-m', `${MEM}M`, '-timeout', '1800'])
      : new Session(QEMU, qemuGuestArgs(img!, MEM, ['-drive', `file=${disk},format=${format},if=ide,index=0,media=disk`, '-nic', 'none']));
  try {
    await s.waitFor(PROMPT, 0, 900_000, 'boot');
    const run = async (line: string) => {
      const c0 = s.cpuSeconds();
      const r = await s.cmd(line, PROMPT, 1_800_000);
      return { wall: r.secs, cpu: s.cpuSeconds() - c0, text: r.text };
    };
    const ide = ideDiskProblem((await run(IDE_DISK_CHECK)).text);
    if (ide) throw new Error(`${emu} ${format}: not measured: ${ide}`);
    const direct = /DIRECT-OK/.test((await run('dd if=/dev/sda of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null && echo DIRECT-OK')).text);
    for (const l of loops(direct)) await run(l);
    await run(`dd if=/dev/urandom of=/tmp/r bs=64k count=${MIB * 16} 2>/dev/null`);
    const t = {} as Times;
    t['seq write'] = await run(`dd if=/tmp/r of=/dev/sda bs=64k 2>/dev/null; sync`);
    await run('echo 3 > /proc/sys/vm/drop_caches');
    t['seq read'] = await run(`dd if=/dev/sda of=/dev/null bs=64k count=${MIB * 16} 2>/dev/null`);
    const sums = (await run(`dd if=/dev/sda bs=64k count=${MIB * 16} 2>/dev/null | md5sum; md5sum < /tmp/r`)).text.match(/\b[0-9a-f]{32}\b/g);
    if (!sums || sums.length !== 2 || sums[0] !== sums[1]) throw new Error(`${emu} ${format}: the disk did not read back what was written (${sums?.join(' ') ?? 'no sums'})`);
    await run('echo 3 > /proc/sys/vm/drop_caches');
    t['rand read'] = await run('xr');
    t['rand write'] = await run('xw; sync');
    t['exec floor'] = await run('xn');
    const exit = emu === 'tsvm' ? 'poweroff' : QEMU_EXIT;
    s.child.stdin.write(`${exit}\n`);
    const how = await Promise.race([s.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 120_000).unref())]);
    if (how === 'timeout') throw new Error(`${emu} ${format}: did not exit after ${exit}`);
    return { t, direct };
  } finally {
    if (!s.exitStatus) s.child.kill('SIGKILL');
  }
}

function newDisk(format: 'raw' | 'qcow2', name: string): string {
  const p = join(dir, `${name}.${format}`);
  if (format === 'raw') {
    writeFileSync(p, '');
    truncateSync(p, SIZE);
  } else {
    closeSync(openSync(p, 'w'));
    const f = NodeFile.open(p, true);
    createQcow2(f, { size: SIZE });
    f.close();
  }
  return p;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

try {
  const emus = (['tsvm', 'qemu'] as const).filter((e) => !only || only.has(e)).filter((e) => e === 'tsvm' || qemuOk);
  if (only?.has('qemu') && !qemuOk) console.error('bench/disk-guest: qemu-system-i386 is not installed; QEMU rows skipped');
  const res = new Map<string, Times>();
  const notes: string[] = [];
  for (const emu of emus)
    for (const format of formats) {
      const disk = newDisk(format, `${emu}-${format}`);
      process.stderr.write(`bench/disk-guest: ${emu} ${format} ... `);
      const { t, direct } = await measure(emu, format, disk);
      if (!direct) notes.push(`${emu} ${format}: busybox dd refused iflag=direct; the random loops ran through the page cache`);
      if (format === 'qcow2' && qemuImgOk) {
        const c = spawnSync('qemu-img', ['check', '-f', 'qcow2', disk]);
        if (c.status !== 0) throw new Error(`${emu} qcow2: qemu-img check failed: ${c.stdout}${c.stderr}`);
      }
      process.stderr.write(`done (seq write ${f2(t['seq write'].wall)} s)\n`);
      res.set(`${emu} ${format}`, t);
      rmSync(disk, { force: true });
    }
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).stdout?.toString().trim();
  const qv = qemuV ?? 'no QEMU';
  console.log(`${new Date().toISOString()}, ${git ?? '?'}; node ${process.version}; ${qv}; ${cpus().length} CPUs; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`inside the default guest, ${MIB} MiB dd to and from /dev/sda and ${N} 4 KiB dd's at random offsets: host wall seconds (CPU seconds), lower is better`);
  console.log(`| emulator, format | ${PHASES.join(' | ')} |`);
  console.log(`| --- |${PHASES.map(() => ' --- |').join('')}`);
  for (const [k, t] of res) console.log(`| ${k} | ${PHASES.map((p) => `${f2(t[p].wall)} (${f2(t[p].cpu)})`).join(' | ')} |`);
  const ratio = (a: string, b: string, label: string) => {
    const x = res.get(a);
    const y = res.get(b);
    if (x && y) console.log(`| ${label} | ${PHASES.map((p) => `${(x[p].wall / y[p].wall).toFixed(2)}x (${(x[p].cpu / y[p].cpu).toFixed(2)}x)`).join(' | ')} |`);
  };
  console.log(`\nratios of wall time (of CPU time), above 1: the first is slower`);
  console.log(`| ratio | ${PHASES.join(' | ')} |`);
  console.log(`| --- |${PHASES.map(() => ' --- |').join('')}`);
  ratio('tsvm qcow2', 'tsvm raw', 'tsvm qcow2 / tsvm raw (baseline)');
  ratio('qemu qcow2', 'qemu raw', 'QEMU qcow2 / QEMU raw');
  ratio('tsvm raw', 'qemu raw', 'tsvm raw / QEMU raw');
  ratio('tsvm qcow2', 'qemu qcow2', 'tsvm qcow2 / QEMU qcow2');
  const net = (k: string, p: Phase, w: 'wall' | 'cpu') => {
    const t = res.get(k);
    return t ? ((t[p][w] - t['exec floor'][w]) / N) * 1000 : NaN;
  };
  console.log(`\nrandom 4 KiB dd's less the exec floor, host ms per request: wall (CPU)`);
  console.log(`| emulator, format | rand read | rand write |`);
  console.log(`| --- | --- | --- |`);
  for (const k of res.keys()) console.log(`| ${k} | ${f2(net(k, 'rand read', 'wall'))} (${f2(net(k, 'rand read', 'cpu'))}) | ${f2(net(k, 'rand write', 'wall'))} (${f2(net(k, 'rand write', 'cpu'))}) |`);
  for (const n of notes) console.log(`note: ${n}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
