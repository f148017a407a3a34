/**
 * One workload on the default guest, with `info jit` after it: a quick A/B
 * for the wasm tier (bench/linux runs the whole set against v86 and QEMU).
 * Boots `tsvm run` (plus any -accel or other options given after `--`),
 * waits for the prompt, runs the command (default: the sh loop of
 * bench/linux, N iterations), and prints the workload's wall and CPU seconds
 * and `info jit` as it stood after the workload.
 *
 * Usage: node dist/bench/sh-loop.js [--iterations N] [--cmd 'shell line'] [-- tsvm run options]
 * (TSVM_V8_FLAGS=--liftoff-only turns the hot-region optimiser off, src/vmm/v8flags.ts.)
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Session } from './lib/session.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROMPT = /tsvm:[^\n]*# (?:\x1b\[6n)?$/;
const args = process.argv.slice(2);
const dash = args.indexOf('--');
const extra = dash >= 0 ? args.slice(dash + 1) : [];
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 && (dash < 0 || i < dash) ? args[i + 1] : undefined;
};
const n = Number(opt('--iterations') ?? 40000);
const cmd = opt('--cmd') ?? `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); done`;

const s = new Session(process.execPath, [join(ROOT, 'bin/tsvm.js'), 'run', ...extra]);
const t0 = performance.now();
await s.waitFor(PROMPT, 0, 900_000, 'the shell prompt');
const boot = { wall: (performance.now() - t0) / 1000, cpu: s.cpuSeconds() };
const c0 = s.cpuSeconds();
const r = await s.cmd(cmd, PROMPT, 1_800_000);
const cpu = s.cpuSeconds() - c0;
const info = await s.monitor('info jit', /js blocks:[^\n]*\n/);
console.log(`load ${loadavg().map((l) => l.toFixed(1)).join(' ')}; boot ${boot.wall.toFixed(1)} s wall, ${boot.cpu.toFixed(1)} s CPU`);
console.log(`workload: ${cmd}\n  ${r.secs.toFixed(2)} s wall, ${cpu.toFixed(2)} s CPU`);
console.log(info);
s.child.kill('SIGKILL');
