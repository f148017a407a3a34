/**
 * savevm and loadvm on the default guest booted to its shell, through the VM
 * runner as `tsvm start` drives it: the time to encode the whole machine
 * and write the snapshot file, the file's size, the time to read, check and
 * load it, and the time until the restored shell answers a command.
 * Baselines: the targets (savevm under 1 s, file under 40 MiB,
 * loadvm to an answering shell under 0.3 s, goal 0.1 s).
 *
 * Usage: node dist/bench/snapshot.js [RAM MiB, default 256]
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDefaultImage } from '../src/vmm/image.js';
import { createRunner } from '../src/vmm/resources.js';
import { defaultSpec } from '../src/vmm/spec.js';
import { decodeRam, parseSnapshot, writeFileAtomic } from '../src/vmm/snapshot.js';

const PROMPT = /(^|\n)tsvm:[^\n]*# /;
const img = findDefaultImage();
if (!img) {
  console.error('snapshot bench: the default guest image is missing; build it with `node bin/tsvm.js image build`');
  process.exit(1);
}
const ramMiB = Number(process.argv[2] ?? 256);
let out = '';
const waiters: (() => void)[] = [];
const console_ = {
  write(b: number) {
    out += String.fromCharCode(b);
    if (out.length > 65536) out = out.slice(-4096);
  },
  flush() {
    for (const w of waiters.splice(0)) w();
  },
  close() {},
};
const runner = createRunner(
  defaultSpec({ memoryBytes: ramMiB << 20, bios: null, vgaBios: null, serial: 'chan:console', linux: { kernel: img.kernel, vmlinux: img.vmlinux, initrd: img.initrd, cmdline: img.cmdline } }),
  { channels: { console: console_ }, timeoutMs: 1800_000 },
);
const done = runner.run();

async function waitFor(re: RegExp, limitMs: number): Promise<void> {
  const end = Date.now() + limitMs;
  while (!re.test(out)) {
    if (runner.state !== 'running') throw new Error(`the VM stopped (${runner.stopCause}) before ${re}`);
    if (Date.now() > end) throw new Error(`no ${re} after ${limitMs / 1000} s; output: ${out.slice(-500)}`);
    await new Promise<void>((r) => {
      waiters.push(r);
      setTimeout(r, 200);
    });
  }
}

function type(s: string): void {
  out = '';
  runner.input({ kind: 'serial', port: 0, bytes: Buffer.from(s) });
}

const t0 = Date.now();
await waitFor(PROMPT, 1_200_000);
console.log(`snapshot bench: default guest (Linux ${img.kernelVersion}), ${ramMiB} MiB RAM, at its prompt after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
type('seq 1 2000 > /tmp/numbers; echo written\n');
await waitFor(/written\r?\n[^\n]*# /, 300_000);
// the floor: the same command on the running guest, its code warm
let t = process.hrtime.bigint();
type('wc -l < /tmp/numbers\n');
await waitFor(/^2000\r?\n[^\n]*# /m, 300_000);
const warmS = Number(process.hrtime.bigint() - t) / 1e9;

const dir = mkdtempSync(join(tmpdir(), 'tsvm-snapbench-'));
const file = join(dir, 'vm.snap');
t = process.hrtime.bigint();
const bytes = await runner.snapshot({ name: 'bench' });
const encodeS = Number(process.hrtime.bigint() - t) / 1e9;
writeFileAtomic(file, bytes);
const saveS = Number(process.hrtime.bigint() - t) / 1e9;
const size = statSync(file).size;

type('rm /tmp/numbers; echo removed\n');
await waitFor(/removed\r?\n[^\n]*# /, 300_000);

t = process.hrtime.bigint();
const parsed = parseSnapshot(new Uint8Array(readFileSync(file)));
const parseS = Number(process.hrtime.bigint() - t) / 1e9;
const restored = await runner.restore(parsed);
const loadS = Number(process.hrtime.bigint() - t) / 1e9;
type('wc -l < /tmp/numbers\n');
await waitFor(/^2000\r?\n[^\n]*# /m, 300_000);
const answerS = Number(process.hrtime.bigint() - t) / 1e9;
runner.stop('quit');
await done;
runner.dispose();

console.log(`savevm: ${saveS.toFixed(3)} s (encode ${encodeS.toFixed(3)} s, write+fsync ${(saveS - encodeS).toFixed(3)} s); file ${(size / 1048576).toFixed(1)} MiB`);
console.log(`loadvm: ${loadS.toFixed(3)} s to read, check and load (read and parse ${parseS.toFixed(3)} s; ${restored.ramPagesWritten} RAM pages written back); ${answerS.toFixed(3)} s until the restored shell answered 'wc -l' (the file removed after the save is back); the same command on the running guest before the save: ${warmS.toFixed(3)} s`);
const ramStream = decodeRam(parsed.sections.get('ram') as Uint8Array);
const sectionMiB = (n: string) => ((parsed.sections.get(n)?.length ?? 0) / 1048576).toFixed(1);
console.log(`in the file: ${(ramStream.presentBytes / 1048576).toFixed(1)} MiB of RAM pages present (not zero) in ${ramStream.chunks.length} batches, RAM section ${sectionMiB('ram')} MiB; sections: ${[...parsed.sections.keys()].join(', ')}`);
console.log(`baseline (issue 10 targets): savevm < 1 s -> ${(saveS / 1).toFixed(2)}x; file < 40 MiB -> ${(size / 1048576 / 40).toFixed(2)}x; loadvm to an answering shell < 0.3 s -> ${(answerS / 0.3).toFixed(2)}x (goal 0.1 s)`);
