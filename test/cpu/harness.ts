// Differential CPU test harness: assembles the nasm test ROMs in test/cpu/asm,
// runs each in QEMU (the reference) and in tsvm, parses the record streams the
// ROMs write to port 0xE9 and compares them record by record.  Bochs is the
// second reference, for the cases where QEMU departs from the SDM (runBochs,
// compareOn; test/cpu/bochs.test.ts).
//
// Command line (after `npx tsc -b`):
//   node dist/test/cpu/harness.js [--qemu-only | --show | --bochs | --bochs-qemu | --show-bochs] [name ...]
// See docs/cpu-testing.md for the record format and the flag-masking policy.

import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/cpu/harness.js -> repository root
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const ASM_DIR = join(ROOT, 'test/cpu/asm');
export const BUILD_DIR = join(ROOT, 'build/cpu');
export const TSVM_BIN = process.env['TSVM_BIN'] ?? join(ROOT, 'bin/tsvm.js');

/** QEMU model: documented in docs/cpu-testing.md (CPUID family 6 model 7). */
export const QEMU_CPU = 'pentium3';

// ---------------------------------------------------------------- records

export const GPR_NAMES = ['EAX', 'ECX', 'EDX', 'EBX', 'ESP', 'EBP', 'ESI', 'EDI'] as const;
export const SEG_NAMES = ['CS', 'DS', 'ES', 'FS', 'GS', 'SS'] as const;
const FLAG_BITS: [number, string][] = [
  [0, 'CF'], [1, '1'], [2, 'PF'], [4, 'AF'], [6, 'ZF'], [7, 'SF'], [8, 'TF'], [9, 'IF'], [10, 'DF'], [11, 'OF'],
  [12, 'IOPL0'], [13, 'IOPL1'], [14, 'NT'], [16, 'RF'], [17, 'VM'], [18, 'AC'], [19, 'VIF'], [20, 'VIP'], [21, 'ID'],
];

export interface DumpRecord {
  kind: 'D';
  label: string;
  gpr: number[]; // EAX ECX EDX EBX ESP EBP ESI EDI
  eflags: number; // already masked by the ROM
  mask: number;
  seg: number[]; // CS DS ES FS GS SS
}
export interface MemRecord {
  kind: 'M';
  label: string;
  addr: number;
  data: Uint8Array;
}
export interface ExcRecord {
  kind: 'X';
  expected: boolean;
  vector: number;
  error: number;
  eip: number;
  eflags: number;
  mask: number;
  cr2: number;
  gpr: number[];
  seg: number[]; // CS (from the frame) DS ES FS GS SS
}
export interface EndRecord {
  kind: 'E';
}
export type CpuRecord = DumpRecord | MemRecord | ExcRecord | EndRecord;

export interface ParsedStream {
  records: CpuRecord[];
  /** set when the stream is cut short or malformed */
  error?: string;
}

export function parseStream(buf: Uint8Array): ParsedStream {
  const records: CpuRecord[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  const need = (n: number): void => {
    if (p + n > buf.length) throw new Error(`truncated record at byte ${p}`);
  };
  const u8 = (): number => {
    need(1);
    return buf[p++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = dv.getUint16(p, true);
    p += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = dv.getUint32(p, true);
    p += 4;
    return v;
  };
  const str = (): string => {
    const start = p;
    while (p < buf.length && buf[p] !== 0) p++;
    need(1);
    const s = Buffer.from(buf.subarray(start, p)).toString('latin1');
    p++;
    return s;
  };
  const n32 = (n: number): number[] => Array.from({ length: n }, u32);
  const n16 = (n: number): number[] => Array.from({ length: n }, u16);
  try {
    while (p < buf.length) {
      const at = p;
      const t = String.fromCharCode(u8());
      if (t === 'D') {
        const label = str();
        const gpr = n32(8);
        const eflags = u32();
        const mask = u32();
        records.push({ kind: 'D', label, gpr, eflags, mask, seg: n16(6) });
      } else if (t === 'M') {
        const label = str();
        const addr = u32();
        const len = u16();
        need(len);
        records.push({ kind: 'M', label, addr, data: buf.slice(p, p + len) });
        p += len;
      } else if (t === 'X') {
        const expected = u8() !== 0;
        const vector = u8();
        const error = u32();
        const eip = u32();
        const eflags = u32();
        const mask = u32();
        const cr2 = u32();
        const gpr = n32(8);
        records.push({ kind: 'X', expected, vector, error, eip, eflags, mask, cr2, gpr, seg: n16(6) });
      } else if (t === 'E') {
        records.push({ kind: 'E' });
        if (p !== buf.length) return { records, error: `${buf.length - p} bytes after the end record` };
        return { records };
      } else {
        return { records, error: `unknown record type 0x${buf[at]!.toString(16)} at byte ${at}` };
      }
    }
    return { records, error: 'stream has no end record (emulator stopped early?)' };
  } catch (e) {
    return { records, error: (e as Error).message };
  }
}

// ---------------------------------------------------------------- comparing

const hex = (v: number, w = 8): string => '0x' + (v >>> 0).toString(16).padStart(w, '0');

export function flagNames(bits: number): string {
  const names = FLAG_BITS.filter(([b]) => bits & (1 << b)).map(([, n]) => n);
  const known = FLAG_BITS.reduce((m, [b]) => m | (1 << b), 0);
  if (bits & ~known) names.push(hex(bits & ~known));
  return names.join(',');
}

const EXC_NAMES: Record<number, string> = {
  0: '#DE', 1: '#DB', 2: 'NMI', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF', 10: '#TS', 11: '#NP',
  12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', 18: '#MC', 19: '#XM',
};
export const vectorName = (v: number): string => EXC_NAMES[v] ?? `int ${hex(v, 2)}`;

export function describe(r: CpuRecord | undefined): string {
  if (!r) return '(end of stream)';
  switch (r.kind) {
    case 'D':
      return `dump '${r.label}'`;
    case 'M':
      return `memory '${r.label}' @${hex(r.addr)}`;
    case 'X':
      return `${r.expected ? '' : 'UNEXPECTED '}exception ${vectorName(r.vector)} at ${hex(r.seg[0]!, 4)}:${hex(r.eip)}`;
    case 'E':
      return 'end';
  }
}

export function formatState(r: CpuRecord): string {
  if (r.kind === 'D' || r.kind === 'X') {
    const regs = GPR_NAMES.map((n, i) => `${n}=${hex(r.gpr[i]!)}`).join(' ');
    const segs = SEG_NAMES.map((n, i) => `${n}=${hex(r.seg[i]!, 4)}`).join(' ');
    let s = `${regs}\n      EFLAGS=${hex(r.eflags)} [${flagNames(r.eflags)}] mask=${hex(r.mask)} ${segs}`;
    if (r.kind === 'X') s += `\n      vector=${vectorName(r.vector)} error=${hex(r.error)} eip=${hex(r.eip)} cr2=${hex(r.cr2)}`;
    return s;
  }
  if (r.kind === 'M') return `${hex(r.addr)}: ${Buffer.from(r.data).toString('hex')}`;
  return 'end';
}

export interface Mismatch {
  /** index of the record in the streams */
  index: number;
  /** what the record is, e.g. dump 'p32:adc32 r,r' */
  what: string;
  /** label of the last dump before this record (context for exceptions) */
  after: string;
  /** one line per differing field: "EAX: tsvm 0x.. qemu 0x.." */
  fields: string[];
  /** true when the streams have diverged structurally (comparison stops) */
  fatal: boolean;
  expected?: CpuRecord;
  got?: CpuRecord;
}

/** The names a report gives the two sides: [got, expected]. */
export type SideNames = readonly [string, string];
export const TSVM_VS_QEMU: SideNames = ['tsvm', 'qemu'];

function diffNum(fields: string[], name: string, got: number, exp: number, w: number, [gn, en]: SideNames): void {
  if (got >>> 0 !== exp >>> 0) fields.push(`${name}: ${gn} ${hex(got, w)} ${en} ${hex(exp, w)}`);
}

/**
 * Compares tsvm's stream (got) with QEMU's (expected).  When the streams
 * diverge structurally (a record of another kind or label, e.g. an exception
 * only one side took) the mismatch is marked fatal and the comparison resyncs
 * on the next dump label that both streams share, so one run reports every
 * independent problem.
 */
export function compareStreams(
  expected: CpuRecord[],
  got: CpuRecord[],
  maxResync = 50,
  names: SideNames = TSVM_VS_QEMU,
  /** also applied to the pushed EFLAGS of exception records (see RF_FRAME_MASK) */
  frameMask = 0xffffffff,
): Mismatch[] {
  const [gn, en] = names;
  const out: Mismatch[] = [];
  let after = '(start)';
  let i = 0;
  let j = 0;
  while (i < expected.length || j < got.length) {
    const e = expected[i];
    const g = got[j];
    const fields: string[] = [];
    let fatal = false;
    if (!e || !g || e.kind !== g.kind || ((e.kind === 'D' || e.kind === 'M') && e.label !== (g as DumpRecord).label)) {
      fatal = true;
      fields.push(`record: ${gn} ${describe(g)} ${en} ${describe(e)}`);
    } else if (e.kind === 'D' && g.kind === 'D') {
      GPR_NAMES.forEach((nm, k) => diffNum(fields, nm, g.gpr[k]!, e.gpr[k]!, 8, names));
      const m = e.mask & g.mask;
      const fe = e.eflags & m;
      const fg = g.eflags & m;
      if (fe !== fg) fields.push(`EFLAGS: ${gn} ${hex(fg)} ${en} ${hex(fe)} (differ in ${flagNames(fe ^ fg)}; ${gn} has [${flagNames(fg & (fe ^ fg))}] set, ${en} has [${flagNames(fe & (fe ^ fg))}] set)`);
      SEG_NAMES.forEach((nm, k) => diffNum(fields, nm, g.seg[k]!, e.seg[k]!, 4, names));
    } else if (e.kind === 'M' && g.kind === 'M') {
      diffNum(fields, 'address', g.addr, e.addr, 8, names);
      const len = Math.max(e.data.length, g.data.length);
      for (let k = 0; k < len; k++) {
        if (e.data[k] !== g.data[k]) {
          fields.push(`byte ${hex(e.addr + k)}: ${gn} ${g.data[k] === undefined ? '--' : hex(g.data[k]!, 2)} ${en} ${e.data[k] === undefined ? '--' : hex(e.data[k]!, 2)}`);
          if (fields.length > 16) {
            fields.push('...');
            break;
          }
        }
      }
    } else if (e.kind === 'X' && g.kind === 'X') {
      diffNum(fields, 'vector', g.vector, e.vector, 2, names);
      diffNum(fields, 'error code', g.error, e.error, 8, names);
      diffNum(fields, 'EIP', g.eip, e.eip, 8, names);
      diffNum(fields, 'CR2', g.cr2, e.cr2, 8, names);
      const m = e.mask & g.mask & frameMask;
      if ((e.eflags & m) !== (g.eflags & m)) fields.push(`EFLAGS (pushed): ${gn} ${hex(g.eflags & m)} ${en} ${hex(e.eflags & m)} (differ in ${flagNames((e.eflags ^ g.eflags) & m)})`);
      GPR_NAMES.forEach((nm, k) => diffNum(fields, nm, g.gpr[k]!, e.gpr[k]!, 8, names));
      SEG_NAMES.forEach((nm, k) => diffNum(fields, nm, g.seg[k]!, e.seg[k]!, 4, names));
      if (e.expected !== g.expected) fatal = true;
    }
    if (fields.length) out.push({ index: i, what: describe(e ?? g), after, fields, fatal, expected: e, got: g });
    if (e && e.kind === 'D') after = e.label;
    if (!fatal) {
      i++;
      j++;
      continue;
    }
    // resync: the nearest pair of dumps with the same label after this point
    let found = false;
    for (let d = 1; d <= 2 * maxResync && !found; d++) {
      for (let di = 0; di <= d && !found; di++) {
        const dj = d - di;
        const e2 = expected[i + di];
        const g2 = got[j + dj];
        if (e2 && g2 && e2.kind === 'D' && g2.kind === 'D' && e2.label === g2.label && (di > 0 || dj > 0)) {
          i += di;
          j += dj;
          found = true;
        }
      }
    }
    if (!found) break;
  }
  return out;
}

export function formatMismatches(test: string, ms: Mismatch[], max = 20, [gn, en]: SideNames = TSVM_VS_QEMU): string {
  const lines: string[] = [];
  for (const m of ms.slice(0, max)) {
    lines.push(`test '${test}' record #${m.index} ${m.what} (after '${m.after}')${m.fatal ? ' -- streams diverge here (resynced on the next common dump)' : ''}:`);
    for (const f of m.fields) lines.push(`    ${f}`);
    if (m.expected && m.expected.kind !== 'E' && !m.fatal) lines.push(`    ${en}: ${formatState(m.expected)}`);
    if (m.got && m.got.kind !== 'E' && !m.fatal) lines.push(`    ${gn}: ${formatState(m.got)}`);
  }
  if (ms.length > max) lines.push(`... and ${ms.length - max} more mismatching records in '${test}'`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- building and running

export function listTests(): string[] {
  return readdirSync(ASM_DIR)
    .filter((f) => f.endsWith('.asm'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** nasm -f bin; returns the ROM path. Throws with nasm's messages on error. */
export function assemble(src: string, outDir = BUILD_DIR): string {
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, basename(src).replace(/\.asm$/, '') + '.bin');
  // test files running side by side assemble the same ROMs: each writes its own file and renames
  // it into place, so no reader ever sees a ROM another process has just truncated
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync('nasm', ['-f', 'bin', '-I', ASM_DIR + '/', '-o', tmp, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`nasm failed for ${src}:\n${err.stderr?.toString() ?? err.message}`);
  }
  const size = readFileSync(tmp).length;
  if (size !== 0x10000) {
    rmSync(tmp, { force: true });
    throw new Error(`${out}: ROM is ${size} bytes, expected 65536`);
  }
  renameSync(tmp, out);
  return out;
}

export interface RunResult {
  /** exit code (null when killed) */
  code: number | null;
  timedOut: boolean;
  stderr: string;
  stdout: string;
  /** raw debugcon bytes */
  output: Uint8Array;
  ms: number;
}

function run(cmd: string, args: string[], outFile: string, timeoutMs: number): Promise<RunResult> {
  rmSync(outFile, { force: true });
  const t0 = Date.now();
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 65536) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const done = (code: number | null): void => {
      clearTimeout(timer);
      const output = existsSync(outFile) ? new Uint8Array(readFileSync(outFile)) : new Uint8Array(0);
      res({ code, timedOut, stderr, stdout, output, ms: Date.now() - t0 });
    };
    child.on('error', (e) => {
      stderr += String(e);
      done(null);
    });
    child.on('close', (code) => done(code));
  });
}

export function qemuArgs(rom: string, outFile: string): string[] {
  return [
    '-accel', 'tcg', '-M', 'pc', '-cpu', QEMU_CPU, '-m', '16', '-bios', rom, '-display', 'none', '-nodefaults',
    '-debugcon', `file:${outFile}`, '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-no-reboot',
  ];
}

/** Runs the ROM in QEMU; results are cached by the ROM's hash under build/cpu/cache. */
export async function runQemu(rom: string, timeoutMs = 30000): Promise<RunResult> {
  const hash = createHash('sha256').update(readFileSync(rom)).update(QEMU_CPU).digest('hex').slice(0, 24);
  const cacheDir = join(BUILD_DIR, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  const cached = join(cacheDir, hash + '.qemu');
  if (existsSync(cached) && !process.env['TSVM_NO_CACHE']) {
    return { code: 1, timedOut: false, stderr: '', stdout: '', output: new Uint8Array(readFileSync(cached)), ms: 0 };
  }
  const outFile = rom.replace(/\.bin$/, '') + '.qemu.out';
  const r = await run('qemu-system-i386', qemuArgs(rom, outFile), outFile, timeoutMs);
  // isa-debug-exit: exit status (0 << 1) | 1 = 1 is the normal end
  if (r.code === 1 && parseStream(r.output).error === undefined) copyFileSync(outFile, cached);
  return r;
}

export function tsvmAvailable(): boolean {
  return existsSync(TSVM_BIN);
}

/**
 * The execution tiers every CPU program runs on (tsvm's -accel option): the
 * interpreter alone (the reference), compilation forced on first sight (every
 * instruction a compiler takes goes through it), for the JS blocks and the
 * WebAssembly tier, and the default thresholds (what a user runs).
 */
export interface TsvmMode {
  label: string;
  accel: string;
}
export const TSVM_MODES: readonly TsvmMode[] = [
  { label: 'interp', accel: 'tsvm,tier=interp' },
  { label: 'blocks-eager', accel: 'tsvm,tier=blocks,threshold=1' },
  { label: 'wasm-eager', accel: 'tsvm,tier=wasm,threshold=1' },
  { label: 'default', accel: 'tsvm' },
];

export async function runTsvm(rom: string, timeoutSec = 20, accel = 'tsvm'): Promise<RunResult> {
  // one output file per mode: two test files run at once and may run one ROM in two modes
  const outFile = rom.replace(/\.bin$/, '') + `.${accel.replace(/[^a-z0-9]+/g, '-')}.tsvm.out`;
  return run(
    process.execPath,
    [TSVM_BIN, 'run', '-bios', rom, '-m', '16M', '-debugcon', `file:${outFile}`, '-timeout', String(timeoutSec), '-accel', accel],
    outFile,
    (timeoutSec + 15) * 1000,
  );
}

/**
 * Runs a ROM in tsvm in this process, as the CLI would (16 MiB, the debug
 * console on port 0xE9), but in slices of random lengths drawn from
 * `sliceSeed` (mostly short ones: 1-16, up to 300, up to 5000 instructions),
 * so compiled code is left and re-entered at scattered points, as
 * test/jit/wasm-tier.test.ts does.  Ends at the final `cli; hlt`.
 */
export async function runTsvmSliced(
  rom: string,
  accel: string,
  sliceSeed: number,
  maxInstructions = 200_000_000,
): Promise<{ output: Uint8Array; error?: string; instructions: number; slices: number; inRegions?: number; regionErrors?: string }> {
  const { Machine } = await import('../../src/board/machine.js');
  const { parseAccel } = await import('../../src/jit/accel.js');
  const out: number[] = [];
  const m = new Machine({
    memoryBytes: 16 << 20,
    bios: new Uint8Array(readFileSync(rom)),
    accel: parseAccel(accel),
    debugcon: { write: (b: number) => void out.push(b) },
  });
  let s = sliceSeed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  let slices = 0;
  let error: string | undefined;
  try {
    while (m.stopReason === 'running' && m.cpu.instructionsRun < maxInstructions) {
      const r = next();
      const kind = r & 3;
      const n = kind === 0 ? 1 + ((r >>> 2) % 16) : kind === 1 ? 1 + ((r >>> 2) % 300) : 1 + ((r >>> 2) % 5000);
      m.runSlice(n);
      slices++;
    }
  } catch (e) {
    error = `tsvm threw: ${(e as Error).stack ?? String(e)}`;
  }
  if (!error && m.stopReason !== 'halt') error = `tsvm stopped with '${m.stopReason}' after ${m.cpu.instructionsRun} instructions`;
  // the wasm tier reports what ran in its regions, and any region V8 refused (a compiler bug)
  const jit = m.jit as { instructionsRun?: number; compileErrors?: number; firstCompileError?: string } | null;
  const regionErrors = jit?.compileErrors ? `${jit.compileErrors} regions failed to compile: ${jit.firstCompileError}` : undefined;
  if (regionErrors && !error) error = regionErrors;
  return { output: new Uint8Array(out), ...(error ? { error } : {}), instructions: m.cpu.instructionsRun, slices, ...(jit?.instructionsRun !== undefined ? { inRegions: jit.instructionsRun } : {}) };
}

export interface TestOutcome {
  name: string;
  qemu: RunResult;
  qemuStream: ParsedStream;
  tsvm?: RunResult;
  tsvmStream?: ParsedStream;
  mismatches: Mismatch[];
  /** human-readable report; empty when everything matched */
  report: string;
  /** set when the QEMU side itself failed (bad ROM, QEMU error) */
  qemuProblem?: string;
}

/**
 * Runs one ROM in QEMU, then in tsvm, and compares.  One emulator at a time:
 * test/run.js runs two test files at once, so the machine never runs more
 * than two emulators.
 */
export async function runRom(name: string, rom: string, opts: { qemuOnly?: boolean; tsvmTimeout?: number; accel?: string } = {}): Promise<TestOutcome> {
  const qemu = await runQemu(rom);
  const tsvm = opts.qemuOnly || !tsvmAvailable() ? undefined : await runTsvm(rom, opts.tsvmTimeout ?? 20, opts.accel);
  const qemuStream = parseStream(qemu.output);
  const lines: string[] = [];
  const qemuLines: string[] = [];
  if (qemu.timedOut || qemu.code !== 1 || qemuStream.error) {
    qemuLines.push(`test '${name}': QEMU run failed (exit ${qemu.code}${qemu.timedOut ? ', timed out' : ''}): ${qemuStream.error ?? ''} ${qemu.stderr.trim()}`);
  }
  const unexpected = qemuStream.records.findIndex((r) => r.kind === 'X' && !r.expected);
  if (unexpected >= 0) {
    const r = qemuStream.records[unexpected]!;
    const prev = qemuStream.records.slice(0, unexpected).reverse().find((x) => x.kind === 'D') as DumpRecord | undefined;
    qemuLines.push(`test '${name}': the ROM is broken: QEMU took an unexpected ${describe(r)} after '${prev?.label ?? '(start)'}'\n    ${formatState(r)}`);
  }
  lines.push(...qemuLines);
  let mismatches: Mismatch[] = [];
  let tsvmStream: ParsedStream | undefined;
  if (tsvm) {
    tsvmStream = parseStream(tsvm.output);
    mismatches = compareStreams(qemuStream.records, tsvmStream.records, undefined, undefined, RF_FRAME_MASK);
    if (mismatches.length) lines.push(formatMismatches(name, mismatches));
    if (tsvm.timedOut || tsvm.code !== 0 || tsvmStream.error) {
      lines.push(`test '${name}': tsvm run: exit ${tsvm.code}${tsvm.timedOut ? ' (killed after timeout)' : ''}; ${tsvmStream.error ?? 'stream complete'}; ${tsvmStream.records.length} records`);
      if (tsvm.stderr.trim()) lines.push('    tsvm stderr: ' + tsvm.stderr.trim().split('\n').slice(0, 15).join('\n    '));
    }
  } else if (!opts.qemuOnly) {
    lines.push(`test '${name}': tsvm CLI not available (${TSVM_BIN} missing); QEMU produced ${qemuStream.records.length} records`);
  }
  const qemuProblem = qemuLines.length ? qemuLines.join('\n') : undefined;
  return { name, qemu, qemuStream, tsvm, tsvmStream, mismatches, report: lines.join('\n'), qemuProblem };
}

export async function runTest(name: string, opts: { qemuOnly?: boolean; accel?: string } = {}): Promise<TestOutcome> {
  const rom = assemble(join(ASM_DIR, name + '.asm'));
  return runRom(name, rom, opts);
}

/** true when a run is a full pass (both streams complete and equal) */
export function passed(o: TestOutcome): boolean {
  return !o.report && !!o.tsvm && o.tsvm.code === 0 && !o.tsvmStream?.error && o.mismatches.length === 0;
}

// ---------------------------------------------------------------- Bochs (second reference)
//
// Bochs (Debian's `bochs` 2.7) is the referee where QEMU departs from the SDM
// (test/cpu/bochs.test.ts, docs/cpu-testing.md "Bochs").  Debian builds it
// with the internal debugger and without the `nogui` display library, so:
//  - the display is `rfb` with timeout=0 (listens on a free port from 5900,
//    never waits for a viewer);
//  - the debugger stops before the first instruction and reads its commands
//    from a generated `-rc` file: a linear breakpoint on the `cli` of every
//    finish16/finish32 (after the end record is written), `continue`, `quit`;
//  - port-E9-hack bytes go to stdout, mixed with the banner and the debugger's
//    messages: the stream is what follows the debugger's first disassembly
//    line ("Next at t=0" + one line) up to the end record.
// A VGA BIOS is required by Bochs but never run by the test ROMs: the harness
// writes a minimal 512-byte option ROM instead of depending on `vgabios`.

/** Bochs CPU model: CPUID family 6 model 7 like QEMU's pentium3, plus VME. */
export const BOCHS_CPU = 'p3_katmai';
export const BOCHS_BIN = process.env['BOCHS_BIN'] ?? 'bochs';
const BOCHS_CONFIG_VERSION = '1';

export function bochsAvailable(): boolean {
  if (BOCHS_BIN.includes('/')) return existsSync(BOCHS_BIN);
  return (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(join(d, BOCHS_BIN)));
}

/**
 * The linear addresses of the `cli; hlt` that end a test: finish16 and
 * finish32 (lib/runtime.inc) are `mov al,'E'; out 0xE9,al; xor al,al;
 * out 0xF4,al; cli; hlt` in both code sizes.  Real-mode CS is 0xF000 and the
 * protected-mode code segments have base 0xF0000, so the linear address is
 * 0xF0000 + offset in every mode (paging maps the ROM 1:1).
 */
export function finishAddresses(rom: Uint8Array): number[] {
  const pat = [0xb0, 0x45, 0xe6, 0xe9, 0x30, 0xc0, 0xe6, 0xf4, 0xfa, 0xf4];
  const out: number[] = [];
  for (let i = 0; i + pat.length <= rom.length; i++) {
    if (pat.every((b, k) => rom[i + k] === b)) out.push(0xf0000 + i + 8);
  }
  return out;
}

export function bochsConfig(rom: string, vgaRom: string, logFile: string): string {
  return [
    '# generated by test/cpu/harness.ts (runBochs)',
    'display_library: rfb, options="timeout=0"',
    `romimage: file=${rom}`, // no address: the 64 KiB image ends at 4 GiB and shows at 0xF0000
    `vgaromimage: file=${vgaRom}`,
    `cpu: model=${BOCHS_CPU}, count=1, reset_on_triple_fault=0`,
    'megs: 16',
    'clock: sync=none, time0=1',
    'port_e9_hack: enabled=1',
    `log: ${logFile}`,
    'panic: action=fatal',
    'error: action=report',
    'info: action=report',
    'debug: action=ignore',
    'speaker: enabled=0',
    'sound: driver=dummy', // the default (alsa) mixer thread aborts without a sound card
    '',
  ].join('\n');
}

/** A 512-byte option ROM (55 AA, RETF, checksum 0) to satisfy vgaromimage. */
function dummyVgaRom(): Uint8Array {
  const b = new Uint8Array(512);
  b[0] = 0x55;
  b[1] = 0xaa;
  b[2] = 1;
  b[3] = 0xcb;
  b[511] = -b.reduce((s, x) => s + x, 0) & 0xff;
  return b;
}

/**
 * Cuts the record stream out of Bochs' stdout: after the line that follows
 * "Next at t=0" (the debugger's first disassembly) up to the end record.
 * Returns undefined when the marker is missing.
 */
export function extractBochsStream(stdout: Uint8Array): Uint8Array | undefined {
  const text = Buffer.from(stdout.buffer, stdout.byteOffset, stdout.byteLength);
  const m = text.indexOf('Next at t=0\n');
  if (m < 0) return undefined;
  const nl = text.indexOf(0x0a, m + 'Next at t=0\n'.length);
  if (nl < 0) return undefined;
  const rest = stdout.subarray(nl + 1);
  const p = parseStream(rest);
  const last = p.records[p.records.length - 1];
  if (last?.kind === 'E' && p.error) {
    // drop what the debugger printed after the end record (the breakpoint message)
    const extra = Number(/^(\d+) bytes after/.exec(p.error)?.[1] ?? 0);
    return rest.slice(0, rest.length - extra);
  }
  return rest.slice();
}

/**
 * Runs the ROM in Bochs; the stream (output) is what the ROM wrote to port
 * 0xE9.  Results are cached by the ROM's hash like QEMU's.  Exit status 0 is
 * the normal end (the debugger's `quit` at the final breakpoint).
 */
export async function runBochs(rom: string, timeoutMs = 60000): Promise<RunResult> {
  const romBytes = readFileSync(rom);
  const hash = createHash('sha256').update(romBytes).update('bochs:' + BOCHS_CPU + ':' + BOCHS_CONFIG_VERSION).digest('hex').slice(0, 24);
  const cacheDir = join(BUILD_DIR, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  const cached = join(cacheDir, hash + '.bochs');
  if (existsSync(cached) && !process.env['TSVM_NO_CACHE']) {
    return { code: 0, timedOut: false, stderr: '', stdout: '', output: new Uint8Array(readFileSync(cached)), ms: 0 };
  }
  const base = rom.replace(/\.bin$/, '');
  const vga = join(BUILD_DIR, 'bochs-vga.bin');
  if (!existsSync(vga)) writeFileSync(vga, dummyVgaRom());
  const logFile = base + '.bochs.log';
  const rcFile = base + '.bochsrc';
  const dbgFile = base + '.bochs-dbg';
  const outFile = base + '.bochs.out';
  writeFileSync(rcFile, bochsConfig(resolve(rom), resolve(vga), resolve(logFile)));
  const bps = finishAddresses(romBytes);
  writeFileSync(dbgFile, [...bps.map((a) => `lb 0x${a.toString(16)}`), 'continue', 'quit', ''].join('\n'));
  rmSync(outFile, { force: true });
  const t0 = Date.now();
  const r = await new Promise<RunResult>((res) => {
    const child = spawn(BOCHS_BIN, ['-q', '-f', rcFile, '-rc', dbgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString();
    });
    let timedOut = false;
    // SIGINT drops into the debugger, which finds no more commands and quits
    // (flushing stdout); SIGKILL if that does not work.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
    const done = (code: number | null): void => {
      clearTimeout(timer);
      const all = new Uint8Array(Buffer.concat(chunks));
      const stream = extractBochsStream(all);
      if (!stream) stderr += `\n(no record stream found in Bochs' stdout: ${Buffer.from(all.subarray(0, 2000)).toString('latin1')})`;
      const output = stream ?? new Uint8Array(0);
      const tail = stderr.split('\n').filter((l) => !/lt_dlhandle|\[PLUGIN\]|LTDL_LIBRARY_PATH|BXSHARE/.test(l)).join('\n');
      res({ code, timedOut, stderr: tail, stdout: '', output, ms: Date.now() - t0 });
    };
    child.on('error', (e) => {
      stderr += String(e);
      done(null);
    });
    child.on('close', (code) => done(code));
  });
  writeFileSync(outFile, r.output);
  if (!bps.length) r.stderr += '\nno finish16/finish32 code found in the ROM: Bochs ran until the timeout';
  if (r.code === 0 && !r.timedOut && parseStream(r.output).error === undefined) copyFileSync(outFile, cached);
  return r;
}

/**
 * Bochs and tsvm set RF in the EFLAGS image of faults (SDM vol. 3, 18.3.1.1);
 * QEMU 7.2 does not (docs/cpu-qemu-differences.md), so a comparison with QEMU
 * on one side leaves RF out of exception frames.
 */
export const RF_FRAME_MASK = 0xfffeffff;

export type Emulator = 'qemu' | 'bochs' | 'tsvm';

export interface EmuRun {
  emu: Emulator;
  run: RunResult;
  stream: ParsedStream;
  /** why the run is not a complete, normal one (undefined when it is) */
  problem?: string;
}

export async function runOn(emu: Emulator, rom: string, accel?: string): Promise<EmuRun> {
  const run = emu === 'qemu' ? await runQemu(rom) : emu === 'bochs' ? await runBochs(rom) : await runTsvm(rom, 20, accel);
  const stream = parseStream(run.output);
  const okCode = emu === 'qemu' ? 1 : 0;
  let problem: string | undefined;
  if (run.timedOut || run.code !== okCode || stream.error) {
    problem = `${emu} run failed (exit ${run.code}${run.timedOut ? ', timed out' : ''}): ${stream.error ?? 'stream complete'}; ${stream.records.length} records`;
    const err = run.stderr.trim();
    if (err) problem += '\n    ' + err.split('\n').slice(-15).join('\n    ');
  }
  return { emu, run, stream, problem };
}

export interface PairOutcome {
  name: string;
  ref: EmuRun;
  subject: EmuRun;
  mismatches: Mismatch[];
  /** human-readable report; empty when both runs are complete and equal */
  report: string;
}

/**
 * Runs a ROM on a reference emulator and on a subject (one after the other)
 * and compares the subject's stream with the reference's, e.g. tsvm against
 * Bochs, or Bochs against QEMU.
 */
export async function compareOn(name: string, rom: string, ref: Emulator, subject: Emulator, accel?: string): Promise<PairOutcome> {
  const r = await runOn(ref, rom, accel);
  const s = await runOn(subject, rom, accel);
  const lines: string[] = [];
  if (r.problem) lines.push(`test '${name}': ${r.problem}`);
  const unexpected = r.stream.records.find((x) => x.kind === 'X' && !x.expected);
  if (unexpected) lines.push(`test '${name}': ${ref} took an ${describe(unexpected)} (no continuation set)\n    ${formatState(unexpected)}`);
  const frameMask = ref === 'qemu' || subject === 'qemu' ? RF_FRAME_MASK : 0xffffffff;
  const mismatches = compareStreams(r.stream.records, s.stream.records, 50, [subject, ref], frameMask);
  if (mismatches.length) lines.push(formatMismatches(name, mismatches, 20, [subject, ref]));
  if (s.problem) lines.push(`test '${name}': ${s.problem}`);
  return { name, ref: r, subject: s, mismatches, report: lines.join('\n') };
}

// ---------------------------------------------------------------- CLI

async function main(argv: string[]): Promise<number> {
  let qemuOnly = false;
  let show = false;
  let pair: [Emulator, Emulator] | undefined;
  const names: string[] = [];
  for (const a of argv) {
    if (a === '--qemu-only') qemuOnly = true;
    else if (a === '--show') show = true;
    else if (a === '--bochs') pair = ['bochs', 'tsvm'];
    else if (a === '--bochs-qemu') pair = ['qemu', 'bochs'];
    else if (a === '--show-bochs') {
      show = true;
      pair = ['bochs', 'bochs'];
    } else if (a === '-h' || a === '--help') {
      console.log(
        'usage: node dist/test/cpu/harness.js [--qemu-only | --show | --bochs | --bochs-qemu | --show-bochs] [test ...]\n' +
          '  --qemu-only   run only QEMU (check the ROMs)\n' +
          '  --show        print QEMU\'s records as text\n' +
          '  --bochs       compare tsvm with Bochs instead of QEMU\n' +
          '  --bochs-qemu  compare Bochs with QEMU (no tsvm)\n' +
          '  --show-bochs  print Bochs\' records as text\n' +
          'tests: ' + listTests().join(' ') + ' (and qemu-diff/NAME)',
      );
      return 0;
    } else names.push(a.replace(/\.asm$/, ''));
  }
  const tests = names.length ? names : listTests();
  if (pair) return mainPair(tests, pair[0], pair[1], show);
  if (show) {
    for (const t of tests) {
      let o: TestOutcome;
      try {
        o = await runTest(t, { qemuOnly: true });
      } catch (e) {
        console.log((e as Error).message);
        continue;
      }
      o.qemuStream.records.forEach((r, i) => console.log(`#${i} ${describe(r)}\n      ${formatState(r)}`));
      if (o.qemuStream.error) console.log('stream error: ' + o.qemuStream.error);
    }
    return 0;
  }
  let failed = 0;
  for (const t of tests) {
    let o: TestOutcome;
    try {
      o = await runTest(t, { qemuOnly });
    } catch (e) {
      failed++;
      console.log(`FAIL ${t}: ${(e as Error).message}`);
      continue;
    }
    const nrec = o.qemuStream.records.length;
    const ok = qemuOnly ? !o.report : passed(o);
    if (!ok) failed++;
    const tsvmInfo = o.tsvm ? `, tsvm ${o.tsvm.ms} ms` : '';
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${t}: ${nrec} records (qemu ${o.qemu.ms} ms${tsvmInfo})`);
    if (o.report) console.log(o.report);
  }
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

async function mainPair(tests: string[], ref: Emulator, subject: Emulator, show: boolean): Promise<number> {
  let failed = 0;
  for (const t of tests) {
    try {
      const rom = assemble(join(ASM_DIR, t + '.asm'));
      if (show) {
        const r = await runOn(ref, rom);
        r.stream.records.forEach((x, i) => console.log(`#${i} ${describe(x)}\n      ${formatState(x)}`));
        if (r.problem) console.log(r.problem);
        continue;
      }
      const o = await compareOn(t, rom, ref, subject);
      if (o.report) failed++;
      console.log(`${o.report ? 'FAIL' : 'ok  '} ${t}: ${o.ref.stream.records.length} records (${ref} ${o.ref.run.ms} ms, ${subject} ${o.subject.run.ms} ms)`);
      if (o.report) console.log(o.report);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t}: ${(e as Error).message}`);
    }
  }
  if (!show) console.log(`${tests.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && !process.env['NODE_TEST_CONTEXT']) {
  main(process.argv.slice(2)).then((c) => process.exit(c));
}
