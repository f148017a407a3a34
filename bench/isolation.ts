/**
 * What process isolation costs against thread isolation (tsvm serve
 * --isolation): for each, a bare SeaBIOS VM (no disk, --memory MiB of guest
 * RAM) started --runs times, one at a time, through the daemon's own handle
 * (src/vmm/worker-handle.ts). Per run: the start-up time (the handle made
 * to the runner's first 'running' state: a thread's or a process's start,
 * module loading, the machine built) and, after --settle seconds running,
 * the memory the VM adds: a process's own resident set, or how much the
 * daemon's resident set grew for a thread. Medians of the runs.
 *
 * Usage: node dist/bench/isolation.js [--runs N] [--memory MiB] [--settle SECONDS]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { VmWorker, type Isolation } from '../src/vmm/worker-handle.js';
import type { MachineSpec } from '../src/vmm/spec.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : def;
  if (!Number.isFinite(v) || v < 0) throw new Error(`isolation bench: --${name} needs a number`);
  return v;
};
const runs = opt('runs', 5);
const memoryMiB = opt('memory', 64);
const settleS = opt('settle', 2);

const spec = { version: 1, memoryBytes: memoryMiB * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null } as unknown as MachineSpec;
const baseDir = mkdtempSync(join(tmpdir(), 'tsvm-isolation-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(isolation: Isolation): Promise<{ startMs: number; rssMiB: number }> {
  globalThis.gc?.();
  const before = process.memoryUsage.rss();
  const t0 = performance.now();
  const w = new VmWorker({ spec, baseDir, folder: null, isolation });
  const ended = new Promise<void>((r) => w.once('exit', () => r()));
  await new Promise<void>((res, rej) => {
    w.on('state', (s) => s === 'running' && res());
    w.once('exit', (e) => rej(new Error(`the VM ended before it ran: ${e.reason}`)));
  });
  const startMs = performance.now() - t0;
  await sleep(settleS * 1000);
  const stats = await w.stats();
  const rss = isolation === 'process' ? stats.rssBytes : process.memoryUsage.rss() - before;
  w.send({ t: 'stop' });
  await ended;
  return { startMs, rssMiB: rss / 1048576 };
}

console.log(`isolation bench: bare SeaBIOS, ${memoryMiB} MiB guest RAM, ${runs} runs each, medians`);
console.log('| isolation | start-up (ms) | memory per VM (MiB) |');
console.log('| --- | --- | --- |');
for (const isolation of ['thread', 'process'] as Isolation[]) {
  await once(isolation); // warm the file cache and this process's modules
  const r: { startMs: number; rssMiB: number }[] = [];
  for (let i = 0; i < runs; i++) r.push(await once(isolation));
  console.log(`| ${isolation} | ${median(r.map((x) => x.startMs)).toFixed(0)} | ${median(r.map((x) => x.rssMiB)).toFixed(0)} |`);
}
