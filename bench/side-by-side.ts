/**
 * Two builds of tsvm on the default guest at the same time, one per core,
 * each bench/linux command typed into both at the same moment: a change's
 * A/B on a host whose speed swings by 20-40% between one boot and the next
 * (docs/cpu-jit.md, "Measuring side by side"). The swings then hit both
 * guests alike, and the ratio of their CPU seconds repeats within about 10%
 * where one-after-the-other timings do not. The baseline is named on the
 * command line: a checkout of the commit to compare against, built
 * (`git worktree add /tmp/base COMMIT && cd /tmp/base && ln -s
 * $PWD/node_modules && npx tsc -b`).
 *
 * Usage: node dist/bench/side-by-side.js --base DIR [--rounds N] [--only 'sh loop 100k,dd+md5 32M,300 execs,seq+gzip']
 * (this checkout is B; DIR is A; each workload runs N rounds, default 2)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from './lib/session.js';
import { LINUX_WORKLOADS } from './lib/workloads.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROMPT = /tsvm:[^\n]*# (?:\x1b\[6n)?$/;
const WORKLOADS = new Map(LINUX_WORKLOADS.map((w) => [w.name, w.cmd]));

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const base = opt('--base');
if (!base) {
  console.error('side-by-side: --base DIR is required: a built checkout of the commit to compare against (see the comment at the top of bench/side-by-side.ts)');
  process.exit(2);
}
const baseBin = join(resolve(base), 'bin/tsvm.js');
try {
  readFileSync(join(resolve(base), 'dist/src/cli/main.js'));
} catch {
  console.error(`side-by-side: ${base} has no build (dist/src/cli/main.js): run npx tsc -b there first`);
  process.exit(2);
}
const rounds = Number(opt('--rounds') ?? 2);
const only = (opt('--only') ?? 'sh loop 100k,dd+md5 32M,300 execs').split(',').map((w) => w.trim());
for (const w of only) {
  if (!WORKLOADS.has(w)) {
    console.error(`side-by-side: no workload "${w}"; known: ${[...WORKLOADS.keys()].join(', ')}`);
    process.exit(2);
  }
}

/** Peak RSS of a child in MiB (VmHWM), 0 once it is gone. */
function hwm(s: Session): number {
  try {
    return Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${s.child.pid}/status`, 'latin1'))?.[1]) / 1024);
  } catch {
    return 0;
  }
}

const sessions = [baseBin, join(ROOT, 'bin/tsvm.js')].map((bin) => new Session(process.execPath, [bin, 'run', '-timeout', '3600']));
try {
  const t0 = performance.now();
  const prompt = await Promise.all(
    sessions.map(async (s) => {
      await s.waitFor(PROMPT, 0, 900_000, 'the shell prompt');
      return (performance.now() - t0) / 1000;
    }),
  );
  console.log(`A = ${resolve(base)}, B = ${ROOT}`);
  console.log(`prompt: A ${prompt[0].toFixed(2)} s, B ${prompt[1].toFixed(2)} s wall; peak RSS A ${hwm(sessions[0])}, B ${hwm(sessions[1])} MiB`);
  console.log('| workload | round | A wall (CPU) s | B wall (CPU) s | B/A CPU | peak RSS A, B MiB |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const total = [0, 0];
  for (const w of only) {
    for (let round = 1; round <= rounds; round++) {
      const r = await Promise.all(
        sessions.map(async (s) => {
          const mark = s.threadCpu();
          const x = await s.cmd(WORKLOADS.get(w)!, PROMPT, 3_600_000);
          return { wall: x.secs, cpu: s.cpuSince(mark) };
        }),
      );
      total[0] += r[0].cpu;
      total[1] += r[1].cpu;
      const f = (v: { wall: number; cpu: number }): string => `${v.wall.toFixed(2)} (${v.cpu.toFixed(2)})`;
      console.log(`| ${w} | ${round} | ${f(r[0])} | ${f(r[1])} | ${(r[1].cpu / r[0].cpu).toFixed(3)} | ${hwm(sessions[0])}, ${hwm(sessions[1])} |`);
    }
  }
  console.log(`all workloads: A ${total[0].toFixed(2)} s CPU, B ${total[1].toFixed(2)} s CPU, B/A ${(total[1] / total[0]).toFixed(3)}`);
} finally {
  for (const s of sessions) s.child.kill('SIGKILL');
}
