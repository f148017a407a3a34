/**
 * qcow2 against raw inside the default Linux guest: the guest's kernel and
 * initramfs booted with -kernel/-initrd and a 64 MiB disk as -hda (a sparse
 * raw file, the baseline, then a new qcow2 image), and busybox dd writing
 * 16 MiB of random data to /dev/sda and reading it back with the page cache
 * dropped. Times are host wall time from sending the command to the next
 * prompt, so they include the emulated CPU, the IDE emulation and the image
 * format. One Linux boot per format, one at a time.
 * Usage: node dist/bench/disk-guest.js
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFile } from '../src/host/node/file.js';
import { createQcow2 } from '../src/storage/create.js';
import { findDefaultImage } from '../src/vmm/image.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const PROMPT = /tsvm:[^\n]*# (?:\x1b\[6n)?$/;
const SIZE = 64 << 20;
const MIB = 16;

const img = findDefaultImage();
if (!img) {
  console.error('bench/disk-guest: the default guest image is not built; run: node bin/tsvm.js image build');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'tsvm-bench-dg-'));

async function measure(disk: string): Promise<{ write: number; read: number }> {
  const child = spawn(process.execPath, [TSVM, 'run', '-kernel', img!.kernel, '-initrd', img!.initrd, '-append', img!.cmdline, '-hda', disk, '-m', '256M', '-timeout', '900'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let exited: string | null = null;
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.on('exit', (code, sig) => (exited = sig ?? `exit status ${code}`));
  const waitPrompt = async (from: number, what: string) => {
    for (;;) {
      if (PROMPT.test(out.slice(from))) return performance.now();
      if (exited) throw new Error(`${what}: tsvm ended (${exited}); last output: ${out.slice(-400)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const run = async (cmd: string) => {
    const from = out.length;
    const t0 = performance.now();
    child.stdin.write(cmd + '\n');
    await new Promise((r) => setTimeout(r, 200));
    const t1 = await waitPrompt(from + cmd.length, cmd);
    return (t1 - t0) / 1000;
  };
  await waitPrompt(0, 'boot');
  await run(`dd if=/dev/urandom of=/tmp/r bs=64k count=${MIB * 16} 2>/dev/null`);
  const write = await run(`dd if=/tmp/r of=/dev/sda bs=64k 2>/dev/null; sync`);
  await run('echo 3 > /proc/sys/vm/drop_caches');
  const read = await run(`dd if=/dev/sda of=/dev/null bs=64k count=${MIB * 16} 2>/dev/null`);
  child.stdin.write('poweroff\n');
  await new Promise((r) => (exited ? r(null) : child.on('exit', r)));
  return { write, read };
}

try {
  const raw = join(dir, 'disk.raw');
  writeFileSync(raw, '');
  truncateSync(raw, SIZE);
  const q = join(dir, 'disk.qcow2');
  closeSync(openSync(q, 'w'));
  const f = NodeFile.open(q, true);
  createQcow2(f, { size: SIZE });
  f.close();
  const r = await measure(raw);
  const c = await measure(q);
  console.log(`inside the default guest: dd of ${MIB} MiB to and from /dev/sda (host wall seconds, lower is better)`);
  console.log(`format   write s   read s`);
  console.log(`raw     ${r.write.toFixed(2).padStart(7)}  ${r.read.toFixed(2).padStart(7)}   (baseline)`);
  console.log(`qcow2   ${c.write.toFixed(2).padStart(7)}  ${c.read.toFixed(2).padStart(7)}   (${(c.write / r.write).toFixed(2)}x, ${(c.read / r.read).toFixed(2)}x the raw time)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
