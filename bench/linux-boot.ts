/**
 * The default Linux guest booted in this process to its shell prompt: how many
 * guest instructions that takes and how fast tsvm runs them, in wall time and
 * in this process's CPU time (the steadier figure on a shared host), with the
 * CPU time of V8's helper threads (its optimising compiler, GC) shown apart.
 * Against named baselines: the design target (prompt within 60 s of process
 * start) and v86 (about 11 s on this guest, DESIGN.md).
 *
 * No CLI, no serial pacing: Machine.runSlice in a loop, as `tsvm run` does
 * when the guest is busy. The process start-up and image loading are
 * reported separately. Usage: node dist/bench/linux-boot.js [max M instructions] [accel]
 *   accel: the -accel option's text, e.g. tsvm,tier=wasm (default: the machine's default tier)
 */
import '../src/vmm/v8flags.js'; // first: before any WebAssembly is compiled
import '../src/vmm/cpuclock.js'; // compile times in CPU time
import { readFileSync, readdirSync } from 'node:fs';
import { Machine } from '../src/board/machine.js';
import { findDefaultImage } from '../src/vmm/image.js';
import { defaultAccel, parseAccel } from '../src/jit/accel.js';
import { WasmCache } from '../src/jit/wasm-tier.js';

const TARGET_S = 60;
const V86_S = 11;
const PROMPT = /tsvm:[^\n]*# /;

/** CPU seconds of this process's main thread and of all its other threads (Linux /proc). */
function threadCpu(): { main: number; other: number } | null {
  try {
    let main = 0;
    let other = 0;
    for (const t of readdirSync('/proc/self/task')) {
      const f = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const st = f.slice(f.lastIndexOf(')') + 2).split(' ');
      const s = (Number(st[11]) + Number(st[12])) / 100; // utime + stime, in clock ticks (USER_HZ 100)
      if (Number(t) === process.pid) main = s;
      else other += s;
    }
    return { main, other };
  } catch {
    return null;
  }
}

const startedS = process.uptime();
const img = findDefaultImage();
if (!img) {
  console.error('linux-boot: the default guest image is missing; build it with `node bin/tsvm.js image build` (or run `tsvm run` once)');
  process.exit(1);
}
const maxInstr = Number(process.argv[2] ?? 0) * 1e6;
const accel = process.argv[3] !== undefined ? parseAccel(process.argv[3]) : defaultAccel();
let out = '';
const m = new Machine({
  memoryBytes: 128 * 1024 * 1024,
  accel,
  linux: { kernel: readFileSync(img.kernel), vmlinux: readFileSync(img.vmlinux), initrd: readFileSync(img.initrd), cmdline: img.cmdline },
  serial: [
    {
      write(b: number) {
        out += String.fromCharCode(b);
        if (out.length > 4096) out = out.slice(-512);
      },
    },
  ],
});
const setupS = process.uptime() - startedS;
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
let reason = 'prompt';
for (;;) {
  const r = m.runSlice(200_000);
  if (r !== 'running') {
    reason = r;
    break;
  }
  if (PROMPT.test(out.slice(-256))) break;
  if (maxInstr > 0 && m.cpu.instructionsRun >= maxInstr) {
    reason = `stopped after ${maxInstr / 1e6} M instructions`;
    break;
  }
}
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cu = process.cpuUsage(c0);
const cpu = (cu.user + cu.system) / 1e6;
const n = m.cpu.instructionsRun;
const th = threadCpu();
const total = process.uptime();
console.log(`linux-boot: default guest (Linux ${img.kernelVersion}), ${reason}; node ${process.version}`);
console.log(`guest: ${(n / 1e6).toFixed(1)} M instructions, ${(m.clock.nowNs / 1e9).toFixed(2)} s guest time; tier=${accel.tier} threshold=${accel.threshold}, ${m.jit?.compiled ?? 0} blocks compiled`);
if (m.jit instanceof WasmCache) {
  const j = m.jit;
  console.log(
    `wasm regions: ${j.regionsCompiled} compiled (${j.instructionsCompiled} instructions, ${j.compileMs.toFixed(0)} ms of main-thread CPU, ` +
      `${((j.compileMs * 1000) / Math.max(1, j.instructionsCompiled)).toFixed(1)} us per instruction); ${((j.instructionsRun / n) * 100).toFixed(1)}% of guest instructions ran in them`,
  );
}
console.log(`tsvm: ${wall.toFixed(1)} s wall (${(n / wall / 1e6).toFixed(1)} M instr/s), ${cpu.toFixed(1)} s CPU (${(n / cpu / 1e6).toFixed(1)} M instr/s)` + (th ? `; whole process so far: main thread ${th.main.toFixed(1)} s, V8 helper threads ${th.other.toFixed(1)} s` : ''));
{
  // where the resident memory is: the state memory (guest RAM, TLB) is an ArrayBuffer; V8's code space for the regions is in neither heap
  const mu = process.memoryUsage();
  const mib = (b: number) => (b / 1048576).toFixed(0);
  const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'))?.[1];
  console.log(
    `memory: RSS ${mib(mu.rss)} MiB (peak ${peak ? mib(Number(peak) * 1024) : '?'}), JS heap used ${mib(mu.heapUsed)} of ${mib(mu.heapTotal)} MiB, ` +
      `ArrayBuffers ${mib(mu.arrayBuffers)} MiB, other external ${mib(mu.external - mu.arrayBuffers)} MiB`,
  );
}
console.log(`process start to prompt: ${total.toFixed(1)} s (start-up and image loading ${setupS.toFixed(1)} s)`);
console.log(`baseline design target: prompt within ${TARGET_S} s -> ${((total / TARGET_S) * 100).toFixed(0)}% of the allowance`);
console.log(`baseline v86 (about ${V86_S} s, DESIGN.md): tsvm/v86 time ratio ${(total / V86_S).toFixed(1)}`);
