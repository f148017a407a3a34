/**
 * Interpreter speed on a fixed instruction mix (bench/cpu-mix.asm): guest
 * instructions per second, against two named baselines measured or stated:
 *  - the design target for the interpreter alone (100 M instructions/s), and
 *  - QEMU's software emulator (qemu-system-i386 -accel tcg) running the same ROM,
 *    timed in the same run (wall time of the whole process, start-up included).
 * Usage: node dist/bench/cpu-mix.js [iterations] [accel]
 *   accel: the -accel option's text, e.g. tsvm,tier=interp (default: the machine's default tier)
 */
import '../src/vmm/v8flags.js'; // first: before any WebAssembly is compiled
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/board/machine.js';
import { defaultAccel, parseAccel } from '../src/jit/accel.js';

const TARGET_IPS = 100e6;
const root = fileURLToPath(new URL('../..', import.meta.url));
const iter = Number(process.argv[2] ?? 2_000_000);
const accel = process.argv[3] !== undefined ? parseAccel(process.argv[3]) : defaultAccel();
mkdirSync(`${root}/build`, { recursive: true });
const rom = `${root}/build/cpu-mix.bin`;
execFileSync('nasm', ['-f', 'bin', `-DITER=${iter}`, `${root}/bench/cpu-mix.asm`, '-o', rom]);
const bios = new Uint8Array(readFileSync(rom));

function runTsvm(): { instr: number; seconds: number } {
  const m = new Machine({ memoryBytes: 32 * 1024 * 1024, bios, accel });
  const t0 = process.hrtime.bigint();
  while (m.runSlice(1_000_000) === 'running');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (m.stopReason !== 'halt') throw new Error(`benchmark ROM did not halt cleanly: ${m.stopReason}`);
  return { instr: m.cpu.instructionsRun, seconds };
}

// one warm-up run so V8 has optimised the interpreter, then the measured runs
runTsvm();
const runs = [runTsvm(), runTsvm(), runTsvm()];
const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b));
const ips = best.instr / best.seconds;

let qemuLine = 'qemu-system-i386 not installed: no QEMU baseline';
const q0 = process.hrtime.bigint();
const q = spawnSync('qemu-system-i386', ['-accel', 'tcg', '-M', 'pc', '-m', '32', '-bios', rom, '-display', 'none', '-nodefaults', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-no-reboot'], { timeout: 120_000 });
const qs = Number(process.hrtime.bigint() - q0) / 1e9;
if (!q.error) {
  qemuLine = `QEMU TCG: ${qs.toFixed(2)} s for the same ROM (${(best.instr / qs / 1e6).toFixed(1)} M guest instr/s incl. start-up); tsvm/QEMU time ratio ${(best.seconds / qs).toFixed(2)}`;
}

console.log(`cpu-mix: ${best.instr} guest instructions (${iter} loop iterations), best of ${runs.length} runs`);
console.log(`tsvm (tier=${accel.tier}, threshold=${accel.threshold}): ${best.seconds.toFixed(3)} s, ${(ips / 1e6).toFixed(1)} M instr/s`);
console.log(`baseline design target: ${(TARGET_IPS / 1e6).toFixed(0)} M instr/s -> ${((ips / TARGET_IPS) * 100).toFixed(0)}% of target`);
console.log(qemuLine);
