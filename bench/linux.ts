/**
 * The default Linux guest on tsvm, v86 and QEMU, timed in one run.
 *
 * Each emulator boots the same guest (Debian's i386 6.1 kernel and the busybox
 * initramfs of `tsvm image build`, 128 MiB RAM, `console=ttyS0 panic=-1`) with
 * its serial console on a child process's stdin/stdout. The benchmark measures
 * host wall time from spawning the process to the first shell prompt, then
 * types fixed shell workloads and times each from sending the line to the next
 * prompt, then powers the guest off. Emulators run one after the other.
 *
 * Rows:
 *  - tsvm (default guest): `tsvm run`, which loads vmlinux directly (no
 *    decompressor);
 *  - tsvm (bzImage): `tsvm run -kernel bzImage -initrd ... -append ...`, which
 *    decompresses the kernel like the others;
 *  - v86: the npm package, in Node (this file re-run with --v86-child), with
 *    Debian's SeaBIOS (bios.bin, vgabios-stdvga.bin) and ACPI on so that
 *    poweroff works;
 *  - QEMU: qemu-system-i386 -accel tcg.
 * Alongside wall time it reports the CPU time (user + system, all threads) the
 * emulator process used, read from /proc, since the host may be shared, and
 * the process's peak RSS (VmHWM) after each phase. For the tsvm rows it asks
 * the monitor's `info jit` (Ctrl-A C, outside the timed intervals) after the
 * prompt and after each workload, and prints per phase the guest instructions,
 * the share run in compiled code (regions and blocks), the instructions
 * compiled and the compile time (CPU time of the compiling thread), with the
 * CPU time of the process's other threads (V8's background tier-up and GC).
 *
 * The references run first, then tsvm. Each emulator gets 15 minutes to reach
 * the prompt and 30 minutes per workload (tsvm needs more than 10 for seq+gzip today); one that fails or overruns is
 * printed as FAILED with the reason and the benchmark goes on.
 *
 * Usage: node dist/bench/linux.js [--only tsvm,tsvm-bz,v86,qemu] [--skip 'seq+gzip,300 execs'] [--tsvm-args '-accel tsvm,hot=0']
 * (--skip leaves out workloads by name, for quicker A/B runs; --tsvm-args adds options to the tsvm rows.)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDefaultImage } from '../src/vmm/image.js';
import { Session } from './lib/session.js';
import { strayWarning } from './lib/strays.js';
import { LINUX_WORKLOADS } from './lib/workloads.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSVM = join(ROOT, 'bin/tsvm.js');
const SELF = fileURLToPath(import.meta.url);
/**
 * The bzImage, v86 and QEMU rows' command line. cryptomgr.notests as in the
 * default guest's (DEFAULT_CMDLINE): without it those rows ran the kernel's
 * crypto self-tests (RSA, 4 G of a bzImage boot's 7.8 G instructions) that the
 * vmlinux row skipped, so the rows did not do the same work.
 */
const CMDLINE = 'console=ttyS0 panic=-1 cryptomgr.notests';
const MEM_MIB = 128;
const SEABIOS = '/usr/share/seabios/bios.bin';
const VGABIOS = '/usr/share/seabios/vgabios-stdvga.bin';
/** busybox ash's prompt; with line editing it may follow it with a cursor-position query (ESC [ 6 n). */
const PROMPT = /tsvm:[^\n]*# (?:\x1b\[6n)?$/;
const BOOT_LIMIT_MS = 15 * 60_000;
const WORK_LIMIT_MS = 30 * 60_000;
const POWEROFF_LIMIT_MS = 2 * 60_000;

/** The word after option `name` on the command line ('' when absent). */
function argOf(name: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? '') : '';
}
/** `--tsvm-args '-accel tsvm,hot=0'`: more options for the tsvm rows (measuring a knob against the default). */
const TSVM_ARGS = argOf('--tsvm-args').split(' ').filter(Boolean);
const SKIP = new Set(argOf('--skip').split(',').filter(Boolean));
const WORKLOADS = LINUX_WORKLOADS.filter((w) => !SKIP.has(w.name));

// ---------------------------------------------------------------- v86 child

/**
 * Runs v86 in this process with COM1 on stdin/stdout; exits 0 once the guest
 * reports power-down (v86 keeps running a powered-off machine otherwise).
 */
async function v86Child(kernel: string, initrd: string): Promise<void> {
  const { V86 } = await import('v86');
  const wasm = fileURLToPath(new URL('../../node_modules/v86/build/v86.wasm', import.meta.url));
  const image = (path: string) => {
    const b = readFileSync(path);
    return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer };
  };
  const emulator = new V86({
    wasm_path: wasm,
    memory_size: MEM_MIB * 1024 * 1024,
    bios: image(SEABIOS),
    vga_bios: image(VGABIOS),
    bzimage: image(kernel),
    initrd: image(initrd),
    cmdline: CMDLINE,
    acpi: true,
    autostart: true,
    disable_speaker: true,
  });
  let tail = '';
  let pending: number[] = [];
  let stopping = false;
  const flush = () => {
    if (pending.length) process.stdout.write(Buffer.from(pending));
    pending = [];
  };
  emulator.add_listener('serial0-output-byte', (byte: number) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(byte);
    tail = (tail + String.fromCharCode(byte)).slice(-64);
    if (!stopping && /reboot: (Power down|System halted)/.test(tail)) {
      stopping = true;
      setImmediate(async () => {
        flush();
        await emulator.destroy();
        process.exit(0);
      });
    }
  });
  process.stdin.on('data', (d: Buffer) => emulator.serial0_send(d.toString('latin1')));
  process.stdin.on('end', () => process.exit(1));
}

// ---------------------------------------------------------------- parent

interface Target {
  key: string;
  label: string;
  cmd: string;
  args: string[];
  /** Why it cannot run at all, if so. */
  missing?: string;
}

/** The counters of tsvm's `info jit` that the benchmark reports (src/jit/info.ts prints them). */
interface JitCounters {
  instructions: number;
  /** Run in wasm regions and in JS blocks. */
  regions: number;
  blocks: number;
  compiledInstructions: number;
  /** Regions' and blocks' compile time, ms, and whether that is CPU time (else wall). */
  compileMs: number;
  blocksCompileMs: number;
  /** Calls from JS into regions, and calls the chain dispatcher made after those (wasm/chain.ts). */
  regionCalls: number;
  chainedCalls: number;
  /** Entries not at a label, and those at an instruction a region exits at. */
  labelMisses: number;
  exitEntries: number;
  /** How the calls from JS ended, by `info jit`'s reason (slice end, off the page, instruction not compiled, slow path). */
  exits: Record<string, number>;
  cpuClock: boolean;
  /** CPU seconds of the process's threads other than the main one (V8's helpers). */
  helperCpu: number;
}

/** What one phase (the boot, a workload) cost beyond the time. */
interface PhaseStats {
  /** Peak RSS of the emulator process so far, bytes. */
  rss?: number;
  /** tsvm only: the difference of `info jit` across the phase. */
  jit?: JitCounters;
}

interface Result {
  label: string;
  boot?: number;
  bootCpu?: number;
  work: (number | undefined)[];
  workCpu: (number | undefined)[];
  /** Index 0: the boot; then one per workload. */
  phases: PhaseStats[];
  outputs: string[];
  error?: string;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** User + system CPU seconds of a live process (all its threads), or NaN. */
function cpuSeconds(pid: number | undefined, task?: string): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(task ? `/proc/${pid}/task/${task}/stat` : `/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 (utime, stime)
  } catch {
    return NaN;
  }
}

/** Peak resident set of a live process (VmHWM), bytes, or undefined. */
function peakRss(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a live process's threads other than its main thread. */
function helperCpuSeconds(pid: number): number {
  let sum = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) if (Number(t) !== pid) sum += cpuSeconds(pid, t);
  return sum;
}

/** Parses the text of `info jit` (src/jit/info.ts). */
function parseInfoJit(text: string, helperCpu: number): JitCounters {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const time = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : 0;
  };
  return {
    instructions: num(/instructions run: (\d+)/),
    regions: num(/^\s+wasm regions\s+(\d+)/m),
    blocks: num(/^\s+js blocks\s+(\d+)/m),
    compiledInstructions: num(/wasm regions: \d+ compiled \((\d+) instructions/),
    compileMs: time(/wasm regions: [^\n]*?([\d.]+) (ms|s) (?:CPU|wall) compiling/),
    regionCalls: num(/calls (?:from JS )?(\d+), /),
    chainedCalls: num(/calls by the chain dispatcher (\d+)/),
    labelMisses: num(/entries not at a label (\d+)/),
    exitEntries: num(/at an exit (\d+)/),
    exits: parseExits(text),
    blocksCompileMs: time(/js blocks: [^\n]*?([\d.]+) (ms|s) (?:CPU|wall) compiling/),
    cpuClock: / CPU compiling/.test(text),
    helperCpu,
  };
}

/** The "exits to JS by reason:" rows of `info jit`: reason -> count. */
function parseExits(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const at = text.indexOf('exits to JS by reason:');
  if (at < 0) return out;
  for (const line of text.slice(at).split('\n').slice(1)) {
    const m = /^\s{4,}(\S.*?)\s+(\d+)\s+(?:[\d.]+%|-)\s*$/.exec(line);
    if (!m) break;
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function diffJit(a: JitCounters, b: JitCounters): JitCounters {
  return {
    instructions: b.instructions - a.instructions,
    regions: b.regions - a.regions,
    blocks: b.blocks - a.blocks,
    compiledInstructions: b.compiledInstructions - a.compiledInstructions,
    compileMs: b.compileMs - a.compileMs,
    blocksCompileMs: b.blocksCompileMs - a.blocksCompileMs,
    regionCalls: b.regionCalls - a.regionCalls,
    chainedCalls: b.chainedCalls - a.chainedCalls,
    labelMisses: b.labelMisses - a.labelMisses,
    exitEntries: b.exitEntries - a.exitEntries,
    exits: Object.fromEntries(Object.entries(b.exits).map(([k, n]) => [k, n - (a.exits[k] ?? 0)])),
    cpuClock: b.cpuClock,
    helperCpu: b.helperCpu - a.helperCpu,
  };
}

/** tsvm's `info jit`, asked at the monitor as a user does (Ctrl-A C, the line, Ctrl-A C back). */
async function infoJit(s: Session): Promise<JitCounters> {
  const text = await s.monitor('info jit', /js blocks:[^\n]*\n|interpreter[^\n]*\n(?![\s\S]*js blocks)|unknown command[^\n]*\n/);
  return parseInfoJit(text, helperCpuSeconds(s.child.pid!));
}

function progress(msg: string): void {
  process.stderr.write(`[bench:linux ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function runTarget(t: Target): Promise<Result> {
  const r: Result = { label: t.label, work: [], workCpu: [], phases: [], outputs: [] };
  if (t.missing) {
    r.error = t.missing;
    return r;
  }
  progress(`${t.label}: starting ${[t.cmd, ...t.args].map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const t0 = performance.now();
  const s = new Session(t.cmd, t.args);
  const pid = s.child.pid;
  try {
    const tp = await s.waitFor(PROMPT, 0, BOOT_LIMIT_MS, 'boot');
    r.boot = (tp - t0) / 1000;
    r.bootCpu = cpuSeconds(pid);
    let jit = t.key.startsWith('tsvm') ? await infoJit(s) : undefined;
    r.phases.push({ rss: peakRss(pid), jit });
    progress(`${t.label}: prompt after ${r.boot.toFixed(2)} s (${r.bootCpu.toFixed(2)} s CPU)${phaseNote(r.phases[0]!)}`);
    for (const w of WORKLOADS) {
      const from = s.out.length;
      const c0 = cpuSeconds(pid);
      const w0 = performance.now();
      s.child.stdin.write(w.cmd + '\n');
      const w1 = await s.waitFor(PROMPT, from, WORK_LIMIT_MS, w.name);
      const secs = (w1 - w0) / 1000;
      const cpu = cpuSeconds(pid) - c0;
      // what the command printed: drop the echoed line and the prompt
      // (the line's echo may follow other output, such as the terminal's newline on leaving the monitor)
      const lines = s.out.slice(from).replace(/\r/g, '').replace(PROMPT, '').split('\n');
      const echo = lines.findIndex((l) => l.includes(w.cmd));
      const printed = lines.slice(echo + 1).join('\n').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trim();
      r.outputs.push(printed);
      if (!w.check.test(printed)) throw new Error(`${w.name}: unexpected output ${JSON.stringify(printed.slice(0, 200))}`);
      r.work.push(secs);
      r.workCpu.push(cpu);
      const ph: PhaseStats = { rss: peakRss(pid) };
      if (jit) {
        const now = await infoJit(s);
        ph.jit = diffJit(jit, now);
        jit = now;
      }
      r.phases.push(ph);
      progress(`${t.label}: ${w.name}: ${secs.toFixed(2)} s (${cpu.toFixed(2)} s CPU)${printed ? ` -> ${printed.split('\n')[0]}` : ''}${phaseNote(ph)}`);
    }
    s.child.stdin.write('poweroff\n');
    const status = await Promise.race([s.exited, new Promise<string>((res) => setTimeout(() => res('still running'), POWEROFF_LIMIT_MS))]);
    progress(`${t.label}: after poweroff: ${status}`);
    if (!/reboot: Power down/.test(s.out)) r.error = `guest did not report power-down (${status})`;
    else if (status !== 'exit status 0') r.error = `after poweroff: ${status}`;
  } catch (e) {
    r.error = (e as Error).message;
    progress(`${t.label}: FAILED: ${r.error}`);
    const tail = s.out.replace(/\r/g, '').split('\n').slice(-15).join('\n');
    process.stderr.write(`---- last output of ${t.label}\n${tail}\n----\n`);
  } finally {
    if (s.exitStatus === undefined) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  }
  return r;
}

function phaseNote(p: PhaseStats): string {
  const j = p.jit;
  const rss = p.rss === undefined ? '' : `; peak RSS ${mib(p.rss)} MiB`;
  if (!j) return rss;
  return `; ${(j.instructions / 1e6).toFixed(1)} M instructions, ${pctOf(j.regions + j.blocks, j.instructions)} compiled, ${j.compiledInstructions} compiled in ${j.compileMs.toFixed(0)} ms${rss}`;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : (bytes / 1048576).toFixed(0);
}

function pctOf(n: number, of: number): string {
  return of > 0 ? `${((n / of) * 100).toFixed(1)}%` : '-';
}

function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const lines = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const only = process.argv.includes('--only') ? new Set(argOf('--only').split(',')) : null;

  let img = findDefaultImage();
  if (!img) {
    progress('default image not built yet: running `tsvm image build`');
    execFileSync(process.execPath, [TSVM, 'image', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] });
    img = findDefaultImage();
    if (!img) throw new Error('tsvm image build did not produce the default image');
  }

  const qemuOk = spawnSync('qemu-system-i386', ['--version']).status === 0;
  const v86Version = (() => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules/v86/package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return undefined;
    }
  })();
  const firmwareMissing = [SEABIOS, VGABIOS].filter((f) => !existsSync(f));

  const targets: Target[] = [
    { key: 'tsvm', label: 'tsvm (default guest: vmlinux)', cmd: process.execPath, args: [TSVM, 'run', '-timeout', '1800', ...TSVM_ARGS] },
    {
      key: 'tsvm-bz',
      label: 'tsvm (bzImage)',
      cmd: process.execPath,
      args: [TSVM, 'run', '-m', `${MEM_MIB}M`, '-kernel', img.kernel, '-initrd', img.initrd, '-append', CMDLINE, '-timeout', '1800', ...TSVM_ARGS],
    },
    {
      key: 'v86',
      label: `v86 ${v86Version ?? ''}`.trim(),
      cmd: process.execPath,
      args: [SELF, '--v86-child', img.kernel, img.initrd],
      missing: v86Version === undefined ? 'npm package v86 not installed (npm install)' : firmwareMissing.length ? `missing firmware ${firmwareMissing.join(', ')}` : undefined,
    },
    {
      key: 'qemu',
      label: 'QEMU (TCG)',
      cmd: 'qemu-system-i386',
      args: ['-accel', 'tcg', '-m', String(MEM_MIB), '-kernel', img.kernel, '-initrd', img.initrd, '-append', CMDLINE, '-nographic', '-no-reboot'],
      missing: qemuOk ? undefined : 'qemu-system-i386 not installed',
    },
  ].filter((t) => !only || only.has(t.key));

  const git = (...args: string[]) => {
    const g = spawnSync('git', ['-C', ROOT, ...args]);
    return g.status === 0 ? g.stdout.toString().trim() : undefined;
  };
  const head = git('rev-parse', 'HEAD') ?? '(not a git checkout)';
  const dirty = git('status', '--porcelain', '--', 'src');
  const qemuVersion = qemuOk ? spawnSync('qemu-system-i386', ['--version']).stdout.toString().split('\n')[0] : 'none';
  const loadBefore = loadavg();
  const strays = strayWarning();
  if (strays) progress(strays);

  // the references first, so that their rows exist even if tsvm is very slow
  const order = [...targets.filter((t) => !t.key.startsWith('tsvm')), ...targets.filter((t) => t.key.startsWith('tsvm'))];
  const byKey = new Map<string, Result>();
  for (const t of order) byKey.set(t.key, await runTarget(t));
  const results = targets.map((t) => byKey.get(t.key)!);
  const loadAfter = loadavg();

  const out: string[] = [];
  out.push(`bench:linux ${new Date().toISOString()}  tsvm ${head}${dirty ? ' + uncommitted changes in src/' : ''}`);
  out.push(`host: ${cpus().length} CPUs, ${cpus()[0]?.model ?? '?'}; node ${process.version}; ${qemuVersion}; v86 ${v86Version ?? 'none'}`);
  out.push(`load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
  if (strays) out.push(strays);
  out.push(`guest: ${img.kernelVersion}, ${MEM_MIB} MiB, "${CMDLINE}"; wall seconds, CPU seconds of the emulator process in parentheses`);
  out.push('');
  out.push(
    table(
      ['emulator', 'to prompt', ...WORKLOADS.map((w) => w.name)],
      results.map((r) => [
        r.label + (r.error ? ` — FAILED: ${r.error.split('\n')[0]}` : ''),
        r.boot === undefined ? '-' : `${fmt(r.boot)} (${fmt(r.bootCpu)})`,
        ...WORKLOADS.map((_, i) => (r.work[i] === undefined ? '-' : `${fmt(r.work[i])} (${fmt(r.workCpu[i])})`)),
      ]),
    ),
  );
  const phaseNames = ['to prompt', ...WORKLOADS.map((w) => w.name)];
  out.push('');
  out.push('peak RSS of the emulator process at the end of each phase (MiB, VmHWM; guest RAM ' + MEM_MIB + ' MiB)');
  out.push('');
  out.push(table(['emulator', ...phaseNames], results.map((r) => [r.label, ...phaseNames.map((_, i) => mib(r.phases[i]?.rss))])));
  for (const r of results.filter((x) => x.phases.some((p) => p.jit))) {
    const clock = r.phases.find((p) => p.jit)?.jit?.cpuClock ? 'CPU ms' : 'wall ms';
    out.push('');
    out.push(`${r.label}: info jit over each phase (compile time: ${clock} of the compiling thread; helper threads: CPU s of V8's other threads, background tier-up and GC)`);
    out.push('');
    out.push(
      table(
        ['phase', 'guest instructions', 'in regions', 'in blocks', 'compiled code', 'instructions compiled to regions', `region compile (${clock})`, 'us per compiled instruction', `block compile (${clock})`, 'region calls from JS', 'from JS per M instructions', 'chained calls', 'helper threads (CPU s)'],
        r.phases.map((p, i) => {
          const j = p.jit;
          if (!j) return [phaseNames[i]!, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-'];
          return [
            phaseNames[i]!,
            `${(j.instructions / 1e6).toFixed(1)} M`,
            pctOf(j.regions, j.instructions),
            pctOf(j.blocks, j.instructions),
            pctOf(j.regions + j.blocks, j.instructions),
            String(j.compiledInstructions),
            j.compileMs.toFixed(0),
            j.compiledInstructions > 0 ? ((j.compileMs * 1000) / j.compiledInstructions).toFixed(1) : '-',
            j.blocksCompileMs.toFixed(0),
            `${(j.regionCalls / 1e6).toFixed(2)} M`,
            j.instructions > 0 ? ((j.regionCalls * 1e6) / j.instructions).toFixed(0) : '-',
            `${(j.chainedCalls / 1e6).toFixed(2)} M`,
            j.helperCpu.toFixed(2),
          ];
        }),
      ),
    );
    const reasons = [...new Set(r.phases.flatMap((p) => Object.keys(p.jit?.exits ?? {})))];
    out.push('');
    out.push(`${r.label}: calls from JS by how they ended (info jit's exits to JS by reason, % of the phase's calls from JS), and entries not at a label`);
    out.push('');
    out.push(
      table(
        ['phase', ...reasons, 'entries not at a label', 'of them at an exit'],
        r.phases.map((p, i) => {
          const j = p.jit;
          if (!j) return [phaseNames[i]!, ...reasons.map(() => '-'), '-', '-'];
          return [
            phaseNames[i]!,
            ...reasons.map((k) => `${((j.exits[k] ?? 0) / 1e6).toFixed(2)} M (${pctOf(j.exits[k] ?? 0, j.regionCalls)})`),
            `${(j.labelMisses / 1e6).toFixed(2)} M`,
            `${(j.exitEntries / 1e6).toFixed(2)} M`,
          ];
        }),
      ),
    );
  }
  const gzi = WORKLOADS.findIndex((w) => w.name === 'seq+gzip');
  const gz = gzi < 0 ? [] : results.map((r) => r.outputs[gzi]).filter((x) => x !== undefined);
  if (new Set(gz).size > 1) out.push(`\nnote: the gzip sizes differ between emulators: ${gz.join(', ')}`);

  const tsvmRows = results.filter((r) => r.label.startsWith('tsvm'));
  const refs = results.filter((r) => !r.label.startsWith('tsvm'));
  const ratioRows: string[][] = [];
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !(b > 0) ? '-' : (a / b).toFixed(2));
  for (const t of tsvmRows) {
    for (const ref of refs) {
      ratioRows.push([`${t.label} / ${ref.label}`, ratio(t.boot, ref.boot), ...WORKLOADS.map((_, i) => ratio(t.work[i], ref.work[i]))]);
    }
  }
  if (ratioRows.length) {
    out.push('');
    out.push('wall-time ratios (above 1: tsvm is slower)');
    out.push('');
    out.push(table(['ratio', 'to prompt', ...WORKLOADS.map((w) => w.name)], ratioRows));
  }
  console.log(out.join('\n'));
}

if (process.argv[2] === '--v86-child') {
  await v86Child(process.argv[3]!, process.argv[4]!);
} else {
  await main();
}
