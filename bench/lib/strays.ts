/**
 * Emulator processes already running on this host when a benchmark starts
 * (`tsvm run`/`tsvm start`, QEMU, a v86 child of bench/linux): each takes
 * timer ticks and CPU now and then even at an idle prompt, and tsvm now
 * uses the second core for its optimiser, so one left over from an earlier
 * run makes the figures 10-40% worse (docs/benchmarks.md, session 21).
 * Linux only (/proc); elsewhere it finds none.
 */
import { readdirSync, readFileSync } from 'node:fs';

const EMULATOR = /bin\/tsvm\.js\s+(run|start|serve)\b|qemu-system-|--v86-child/;

/** "PID command" of every other process whose command line looks like an emulator's. */
export function strayEmulators(): string[] {
  const out: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
    } catch {
      continue; // ended meanwhile
    }
    if (EMULATOR.test(cmd)) out.push(`${pid} ${cmd.slice(0, 120)}`);
  }
  return out;
}

/** A warning line for a benchmark's report, or undefined when the host has no other emulator running. */
export function strayWarning(): string | undefined {
  const s = strayEmulators();
  if (s.length === 0) return undefined;
  return `WARNING: ${s.length} other emulator process(es) were running at the start and skew these figures: ${s.join('; ')}`;
}
