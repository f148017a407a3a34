// Random control-flow programs for the differential CPU test: where random.ts
// generates straight-line sequences, random-flow-gen.ts builds whole programs
// with branches, loops, calls across code pages, self-modifying stores and
// page-table changes; this file assembles them into ROMs, runs them with
// paging on in QEMU and in tsvm (in process, in slices of random lengths, on
// every execution tier), compares the final registers, flags and memory
// (data, stack, the code pages as patched, the page table with its A/D bits
// and a log of register snapshots taken at checkpoints along the way) and
// shrinks a failing program.
//
//   node dist/test/cpu/random-flow.js --seeds 1-20 [--programs 3] [--mode wasm-eager] [--reduce]
//
// docs/cpu-testing.md, "The random control-flow test".

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  assemble,
  BUILD_DIR,
  compareStreams,
  formatMismatches,
  parseStream,
  RF_FRAME_MASK,
  runQemu,
  runTsvmSliced,
  TSVM_MODES,
  type CpuRecord,
  type Mismatch,
} from './harness.js';
import { Rng } from './random.js';
import {
  ALIAS_DELTA,
  ARITH,
  CODE_LIN,
  CTR_BASE,
  FlowGen,
  flagsAfter,
  hex,
  LOG,
  LOG_DUMP,
  LOG_ENTRY,
  LOGPTR,
  LOGTMP,
  MAX_MAIN_PAGES,
  PHYS_DA,
  PHYS_DB,
  PHYS_MAIN,
  PHYS_RA,
  PHYS_RB,
  physDelta,
  PT1,
  PTE_D,
  PTE_R,
  R_LIN,
  D_LIN,
  SEL_FLATCODE,
  type FlowProgram,
  type Stmt,
} from './random-flow-gen.js';

export { FlowGen, type FlowProgram, type Stmt };

// ---------------------------------------------------------------- emission

class Emitter {
  tail: string[] = [];
  constructor(
    private counter: { n: number },
    /** physDelta of the program */
    private delta: number,
  ) {}
  private lbl(): string {
    return `L${this.counter.n++}`;
  }

  list(list: Stmt[], into: string[]): void {
    for (const s of list) this.one(s, into);
  }

  one(s: Stmt, o: string[]): void {
    switch (s.k) {
      case 'ins':
        for (const l of s.gen.lines) o.push(l.endsWith(':') ? l : '  ' + l);
        return;
      case 'check':
        o.push(
          `  ; checkpoint ${s.id}`,
          `  mov [ss:${hex(LOGTMP)}], eax`,
          `  mov eax, [ss:${hex(LOGPTR)}]`,
          `  mov dword [ss:eax], ${s.id}`,
          ...['ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi'].map((r, i) => `  mov [ss:eax+${8 + 4 * i}], ${r}`),
          `  mov ecx, [ss:${hex(LOGTMP)}]`,
          `  mov [ss:eax+4], ecx`,
          `  mov ecx, [ss:eax+8]`,
          `  lea eax, [eax+${LOG_ENTRY}]`,
          `  mov [ss:${hex(LOGPTR)}], eax`,
          `  mov eax, [ss:${hex(LOGTMP)}]`,
        );
        return;
      case 'if': {
        const a = this.lbl();
        o.push(...s.def.lines.map((l) => '  ' + l), `  j${invert(s.cc)} ${s.else ? a + 'e' : a}`);
        this.list(s.then, o);
        if (s.else) {
          o.push(`  jmp ${a}`, `${a}e:`);
          this.list(s.else, o);
        }
        o.push(`${a}:`);
        return;
      }
      case 'loop': {
        const a = this.lbl();
        const ctr = `dword [ss:${hex(0x10000 + CTR_BASE + 4 * s.ctr)}]`;
        if (s.form === 'loop') {
          o.push(`  mov ecx, ${s.n}`, `${a}:`, '  push ecx');
          this.list(s.body, o);
          // LOOP has only a rel8 form: it goes to a JMP back to the top
          o.push('  pop ecx', `  loop ${a}b`, `  jmp ${a}x`, `${a}b:`, `  jmp ${a}`, `${a}x:`);
        } else if (s.form === 'count') {
          o.push(`  mov ${ctr}, 0`, `${a}:`);
          this.list(s.body, o);
          o.push(s.n & 1 ? `  inc ${ctr}` : `  add ${ctr}, 1`, `  cmp ${ctr}, ${s.n}`, `  jb ${a}`);
        } else {
          o.push(`  mov ${ctr}, ${s.n}`, `${a}:`);
          this.list(s.body, o);
          if (s.form === 'dec') o.push(s.n & 1 ? `  dec ${ctr}` : `  sub ${ctr}, 1`, `  jnz ${a}`);
          else o.push(`  sub ${ctr}, 1`, `  jz ${a}x`, `  jmp ${a}`, `${a}x:`);
        }
        return;
      }
      case 'call':
        for (const a of s.args) o.push(`  push ${a}`);
        if (s.how === 'rel') o.push(`  call F${s.fn}`);
        else if (s.how === 'reg') o.push(`  mov ebp, F${s.fn}`, '  call ebp');
        else o.push(`  call [ss:FTAB+${4 * s.fn}]`);
        return;
      case 'callr':
        o.push(`  call ${hex(R_LIN)}`);
        return;
      case 'slot':
        if (s.straddle) {
          // jump over padding to a page end less s.straddle bytes: the slot crosses into the next page
          o.push(`  jmp S${s.id}`, `  times (0x1000 - (($ - $$) & 0xfff) - ${s.straddle}) & 0xfff db 0xcc`);
        }
        o.push(`S${s.id}:`, `  db ${s.bytes.map((b) => hex(b)).join(', ')}`);
        return;
      case 'patch':
        o.push(...s.line.lines.map((l) => '  ' + l));
        return;
      case 'remap': {
        const pte = s.page === 'r' ? PTE_R : PTE_D;
        const lin = s.page === 'r' ? R_LIN : D_LIN;
        if (s.to < 0) o.push(`  xor dword [ss:${hex(pte)}], ${hex(PHYS_RA ^ PHYS_RB)}`);
        else o.push(`  mov dword [ss:${hex(pte)}], ${hex((s.to + this.delta) | 3)}`);
        if (s.flush === 'invlpg') o.push(`  invlpg [ss:${hex(lin)}]`);
        else o.push('  mov eax, cr3', '  mov cr3, eax');
        return;
      }
      case 'seg':
        o.push(`  push dword ${hex(s.sel)}`, `  pop ${s.sreg}`);
        return;
      case 'push':
        o.push(`  push ${s.reg}`);
        this.list(s.body, o);
        o.push(`  pop ${s.pop}`);
        return;
      case 'tramp': {
        // an out-of-line block, placed after all functions (another page, likely)
        o.push(`  jmp T${s.id}`, `B${s.id}:`);
        const t: string[] = [`T${s.id}:`];
        this.list(s.body, t);
        t.push(`  jmp B${s.id}`);
        this.tail.push(...t);
        return;
      }
    }
  }
}

function invert(cc: string): string {
  const pairs: Record<string, string> = { o: 'no', b: 'ae', e: 'ne', be: 'a', s: 'ns', p: 'np', l: 'ge', le: 'g' };
  for (const [a, b] of Object.entries(pairs)) {
    if (cc === a) return b;
    if (cc === b) return a;
  }
  throw new Error(cc);
}

/** slot ids defined in and patched from the statement lists */
function slotRefs(lists: Stmt[][]): { defined: Set<number>; patched: Set<number> } {
  const defined = new Set<number>();
  const patched = new Set<number>();
  const walk = (l: Stmt[]): void => {
    for (const s of l) {
      if (s.k === 'slot') defined.add(s.id);
      else if (s.k === 'patch') patched.add(s.slot);
      else if (s.k === 'if') {
        walk(s.then);
        if (s.else) walk(s.else);
      } else if (s.k === 'loop' || s.k === 'push' || s.k === 'tramp') walk(s.body);
    }
  };
  lists.forEach(walk);
  return { defined, patched };
}

/** a slot whose instruction was dropped (by the generator or the reducer) is still patched: as data */
function orphanSlots(lists: Stmt[][]): string[] {
  const { defined, patched } = slotRefs(lists);
  return [...patched].filter((id) => !defined.has(id)).map((id) => `S${id}: db 0x90, 0x90, 0x90, 0x90, 0x90`);
}

/** nasm sources of the main code and the two R variants; undefined when a flag read is not defined */
export function emitProgram(p: FlowProgram, rng: Rng): { main: string; ra: string; rb: string } | undefined {
  for (const f of p.fns) if (flagsAfter(f.body, ARITH) === undefined) return undefined;
  const main: string[] = ['bits 32', `org ${hex(CODE_LIN)}`, '  jmp F0'];
  const tails: string[] = [];
  const counter = { n: 0 };
  p.fns.forEach((f, i) => {
    main.push(`  times ${rng.int(3) === 0 ? 0 : rng.int(1500)} db 0xcc`, `F${i}:`);
    const e = new Emitter(counter, physDelta(p));
    e.list(f.body, main);
    main.push(i === 0 ? '  retf' : f.ret ? `  ret ${f.ret}` : '  ret');
    tails.push(...e.tail);
  });
  main.push('  times 64 db 0xcc', ...tails, ...orphanSlots(p.fns.map((f) => f.body)), '  align 4, db 0xcc', 'FTAB:', ...p.fns.map((_, i) => `  dd F${i}`));
  const r = (suffix: Stmt[]): string | undefined => {
    if (flagsAfter([...p.rPrefix, ...suffix], ARITH) === undefined) return undefined;
    const e = new Emitter({ n: 0 }, physDelta(p));
    const lines = ['bits 32', `org ${hex(R_LIN)}`];
    e.list([...p.rPrefix, ...suffix], lines);
    lines.push('  ret', ...e.tail, ...orphanSlots([p.rPrefix, suffix]));
    return lines.join('\n') + '\n';
  };
  const ra = r(p.rA);
  const rb = r(p.rB);
  if (!ra || !rb) return undefined;
  return { main: main.join('\n') + '\n', ra, rb };
}

/** slots are emitted in R variants A/B and the common prefix: their labels must be unique per blob */
function assembleBlob(src: string, file: string, maxBytes: number): Uint8Array {
  writeFileSync(file + '.asm', src);
  try {
    execFileSync('nasm', ['-f', 'bin', '-o', file + '.bin', file + '.asm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`nasm failed for ${file}.asm:\n${err.stderr?.toString() ?? err.message}`);
  }
  const b = new Uint8Array(readFileSync(file + '.bin'));
  if (b.length > maxBytes) throw new RangeError(`${file}.bin: ${b.length} bytes, more than ${maxBytes}`);
  const out = new Uint8Array((b.length + 3) & ~3).fill(0xcc);
  out.set(b);
  writeFileSync(file + '.bin', out);
  return out;
}

// ---------------------------------------------------------------- ROM

export interface FlowRom {
  name: string;
  rom: string;
  source: string;
  programs: { p: FlowProgram; dir: string; mainPages: number }[];
}

const ROM_INIT = [
  'ENTER_PM32',
  'ENTER_PAGING',
  '  jmp flow_main',
  '; flat 32-bit code descriptor after the harness GDT (selector 0x90)',
  'flow_gdtr:',
  '  dw GDT_ENTRIES * 8 + 8 - 1',
  '  dd GDT_BASE',
  '; esi = linear source, edi = physical destination, ecx = dwords',
  'flow_copy:',
  '  push ds',
  '  push es',
  '  push dword SEL_FLAT',
  '  pop ds',
  '  push dword SEL_FLAT',
  '  pop es',
  '  rep movsd',
  '  pop es',
  '  pop ds',
  '  ret',
  '; eax = xorshift32 state, edi = physical destination, ecx = dwords',
  'flow_fill:',
  '  push es',
  '  push dword SEL_FLAT',
  '  pop es',
  '.l:',
  '  mov edx, eax',
  '  shl edx, 13',
  '  xor eax, edx',
  '  mov edx, eax',
  '  shr edx, 17',
  '  xor eax, edx',
  '  mov edx, eax',
  '  shl edx, 5',
  '  xor eax, edx',
  '  stosd',
  '  loop .l',
  '  pop es',
  '  ret',
  'flow_main:',
  `  mov dword [ss:GDT_BASE + GDT_ENTRIES * 8], 0x0000ffff`,
  `  mov dword [ss:GDT_BASE + GDT_ENTRIES * 8 + 4], 0x00cf9b00`,
  '  lgdt [cs:flow_gdtr]',
  `  mov dword [ss:PD_BASE + 4], ${hex(PT1 | 7)}`,
];

interface Blobs {
  main: string;
  mainBytes: number;
  mainPages: number;
  ra: string;
  raBytes: number;
  rb: string;
  rbBytes: number;
}

function romProgram(p: FlowProgram, blobs: Blobs): string[] {
  const k = p.index;
  const D = physDelta(p);
  const o: string[] = [`; ---- program ${k}`, '  cld'];
  // page table 1: main pages and their aliases, R, data pages
  o.push(`  mov eax, 0`, `  mov edi, ${hex(PT1)}`, '  mov ecx, 1024', '  push es', '  push dword SEL_FLAT', '  pop es', '  rep stosd', '  pop es');
  const phys = (i: number): number => (PHYS_MAIN + D) + p.pagePerm[i]! * 0x1000;
  for (let i = 0; i < blobs.mainPages; i++) {
    const pte = hex(phys(i) | 3);
    o.push(`  mov dword [ss:${hex(PT1 + i * 4)}], ${pte}`, `  mov dword [ss:${hex(PT1 + ((ALIAS_DELTA >> 12) + i) * 4)}], ${pte}`);
  }
  o.push(`  mov dword [ss:${hex(PTE_R)}], ${hex((PHYS_RA + D) | 3)}`, `  mov dword [ss:${hex(PTE_D)}], ${hex((PHYS_DA + D) | 3)}`, `  mov dword [ss:${hex(PTE_D + 4)}], ${hex((PHYS_DB + D) | 3)}`);
  o.push('  mov eax, cr3', '  mov cr3, eax');
  const copy = (lbl: string, phys: number, bytes: number): string[] => [`  mov esi, 0xf0000 + ${lbl}`, `  mov edi, ${hex(phys)}`, `  mov ecx, ${bytes / 4}`, '  call flow_copy'];
  o.push(`  jmp .x${k}`, `.m${k}: incbin "${blobs.main}"`, `.a${k}: incbin "${blobs.ra}"`, `.b${k}: incbin "${blobs.rb}"`, `.x${k}:`);
  // code pages: 0xCC (INT3) where no code is, then the code
  o.push('  mov eax, 0xcccccccc', `  mov edi, ${hex((PHYS_MAIN + D))}`, `  mov ecx, ${((PHYS_RB + D) + 0x1000 - (PHYS_MAIN + D)) / 4}`, '  push es', '  push dword SEL_FLAT', '  pop es', '  rep stosd', '  pop es');
  for (let i = 0; i < blobs.mainPages; i++) o.push(...copy(`.m${k} + ${i * 0x1000}`, phys(i), Math.min(0x1000, blobs.mainBytes - i * 0x1000)));
  o.push(...copy(`.a${k}`, (PHYS_RA + D), blobs.raBytes), ...copy(`.b${k}`, (PHYS_RB + D), blobs.rbBytes));
  o.push(`  mov eax, ${hex(p.dataSeed)}`, `  mov edi, ${hex((PHYS_DA + D))}`, '  mov ecx, 2048', '  call flow_fill');
  o.push('  mov eax, 0', `  mov edi, ${hex(LOG)}`, `  mov ecx, ${LOG_DUMP / 4}`, '  push es', '  push dword SEL_FLAT', '  pop es', '  rep stosd', '  pop es');
  o.push(`  mov dword [ss:${hex(LOGPTR)}], ${hex(LOG)}`);
  // loop counters and scratch buffer
  o.push('  mov edi, 0x100', '  mov ecx, 64', '  xor eax, eax', '  rep stosd');
  o.push('  mov esp, 0x8e00', `  mov eax, ${hex(p.memSeed)}`, '  call randfill32', '  mov esp, 0x8f00');
  for (const [reg, v] of Object.entries(p.regs)) o.push(`  mov ${reg}, ${hex(v)}`);
  o.push(`  mov ebx, ${hex(p.ebx)}`, `  push dword ${hex(p.flags)}`, '  popfd');
  o.push(`  call ${SEL_FLATCODE}:${hex(CODE_LIN)}`);
  o.push(`  DUMP "f${k}", M_ALL`, ...['ds', 'es', 'fs', 'gs'].flatMap((sr) => ['  push dword SEL_SCR', `  pop ${sr}`]));
  o.push(`  DUMPMEM "f${k} scratch", SCRATCH, 0x40`, `  DUMPMEM "f${k} scratch2", SCRATCH2, 0x40`, `  DUMPMEM "f${k} counters", SCRATCH + 0x100, 0x100`, `  DUMPMEM "f${k} stack", 0x8e00, 0x100`);
  for (let i = 0; i < blobs.mainPages; i++) o.push(`  DUMPMEM "f${k} code${i}", ${hex(phys(i))}, 0x1000`);
  o.push(`  DUMPMEM "f${k} rA", ${hex((PHYS_RA + D))}, 0x1000`, `  DUMPMEM "f${k} rB", ${hex((PHYS_RB + D))}, 0x1000`);
  o.push(`  DUMPMEM "f${k} dA", ${hex((PHYS_DA + D))}, 0x1000`, `  DUMPMEM "f${k} dB", ${hex((PHYS_DB + D))}, 0x1000`);
  o.push(`  DUMPMEM "f${k} pt", ${hex(PT1)}, 0x100`, `  DUMPMEM "f${k} pt alias", ${hex(PT1 + (ALIAS_DELTA >> 12) * 4)}, 0x20`);
  for (let a = 0; a < LOG_DUMP; a += 0x1000) o.push(`  DUMPMEM "f${k} log${a >> 12}", ${hex(LOG + a)}, 0x1000`);
  return o;
}

export function programRng(seed: number, index: number): Rng {
  return new Rng(seed * 7919 + index * 104729 + 17);
}

export function generateProgram(seed: number, index: number): FlowProgram {
  const rng = programRng(seed, index);
  return new FlowGen(rng, rng.int(0x20)).program(index);
}

/** Builds the ROM for `programs` (already generated); returns undefined if a program does not fit. */
export function buildRom(name: string, programs: FlowProgram[], layoutSeed: number): FlowRom {
  const dir = join(BUILD_DIR, 'flow');
  mkdirSync(dir, { recursive: true });
  const src: string[] = [`; generated by test/cpu/random-flow.ts: ${name}`, '%include "lib/harness.inc"', 'TEST_BEGIN', ...ROM_INIT];
  const out: FlowRom['programs'] = [];
  let total = 0;
  for (const p of programs) {
    const rng = new Rng(layoutSeed + p.index);
    const e = emitProgram(p, rng);
    if (!e) throw new Error(`program ${p.index} of ${name} reads undefined flags (generator bug)`);
    const base = join(dir, `${name}-f${p.index}`);
    const main = assembleBlob(e.main, base + '-main', MAX_MAIN_PAGES * 4096);
    const ra = assembleBlob(e.ra, base + '-ra', 4096);
    const rb = assembleBlob(e.rb, base + '-rb', 4096);
    const mainPages = Math.ceil(main.length / 4096);
    total += main.length + ra.length + rb.length;
    if (total > ROM_BLOB_BYTES) throw new RangeError(`${name}: the programs' code (${total} bytes) does not fit in the ROM`);
    src.push(...romProgram(p, { main: base + '-main.bin', mainBytes: main.length, mainPages, ra: base + '-ra.bin', raBytes: ra.length, rb: base + '-rb.bin', rbBytes: rb.length }));
    out.push({ p, dir, mainPages });
  }
  src.push('TEST_END', '');
  const file = join(dir, name + '.asm');
  writeFileSync(file, src.join('\n'));
  const rom = assemble(file, dir);
  return { name, rom, source: file, programs: out };
}

// ---------------------------------------------------------------- running

/** The slice seed of a (seed, mode) run: printed with a failure to reproduce it. */
export const sliceSeedOf = (seed: number, mode: string): number => seed * 31 + mode.length * 1009 + mode.charCodeAt(0);

export async function runFlowRom(rom: FlowRom, accel: string, sliceSeed: number): Promise<{ ok: boolean; report: string; mismatches: Mismatch[]; qemuProblem?: string }> {
  const q = await runQemu(rom.rom);
  const qs = parseStream(q.output);
  const lines: string[] = [];
  let qemuProblem: string | undefined;
  if (q.timedOut || q.code !== 1 || qs.error) qemuProblem = `QEMU run failed (exit ${q.code}${q.timedOut ? ', timed out' : ''}): ${qs.error ?? ''} ${q.stderr.trim()}`;
  const unexpected = qs.records.find((r) => r.kind === 'X' && !r.expected);
  if (unexpected) qemuProblem = `the ROM is broken: QEMU took an unexpected exception\n${JSON.stringify(unexpected)}`;
  if (qemuProblem) return { ok: false, report: qemuProblem, mismatches: [], qemuProblem };
  const t = await runTsvmSliced(rom.rom, accel, sliceSeed);
  const ts = parseStream(t.output);
  const mismatches = compareStreams(qs.records, ts.records, undefined, undefined, RF_FRAME_MASK);
  if (mismatches.length) lines.push(formatMismatches(rom.name, mismatches, 8));
  if (t.error || ts.error) lines.push(`tsvm run: ${t.error ?? ''} ${ts.error ?? ''}`);
  return { ok: lines.length === 0, report: lines.join('\n'), mismatches };
}

/**
 * Where the first mismatch points: its program and, when that program's
 * checkpoint log differs too, the first differing log entry (the program ran
 * the same up to the checkpoint before it).
 */
export function explain(ms: Mismatch[], rom: FlowRom): string {
  const m0 = ms[0]!;
  const rec0 = (m0.expected ?? m0.got) as CpuRecord | undefined;
  const pm = /f(\d+)/.exec(rec0 && 'label' in rec0 ? rec0.label : m0.after);
  const prog = pm ? Number(pm[1]) : undefined;
  const m = ms.find((x) => x.expected?.kind === 'M' && x.got?.kind === 'M' && x.expected.label.includes(`f${prog} log`)) ?? m0;
  const rec = (m.expected ?? m.got) as CpuRecord | undefined;
  const label = rec && 'label' in rec ? rec.label : m.after;
  let where = '';
  if (rec?.kind === 'M' && /log/.test(label) && m.expected?.kind === 'M' && m.got?.kind === 'M') {
    const e = m.expected.data;
    const g = m.got.data;
    for (let i = 0; i < e.length; i++) {
      if (e[i] !== g[i]) {
        const entry = Math.floor(i / LOG_ENTRY) * LOG_ENTRY;
        const id = new DataView(e.buffer, e.byteOffset).getUint32(entry, true);
        where = ` first differing log entry #${((m.expected.addr - LOG + entry) / LOG_ENTRY) | 0} (checkpoint ${id})`;
        break;
      }
    }
  }
  const p = prog === undefined ? undefined : rom.programs.find((x) => x.p.index === prog);
  return `program ${prog ?? '?'}${where}${p ? ` (sources ${join(p.dir, `${rom.name}-f${prog}`)}-{main,ra,rb}.asm)` : ''}`;
}

export const PROGRAMS_PER_ROM = 3;
/** code bytes the ROM holds besides the harness (about 7 KiB) and the per-program set-up and dumps */
const ROM_BLOB_BYTES = 44 * 1024;

/** Generates and builds the ROM of a seed: up to `count` programs, as many as fit. */
export function seedRom(seed: number, count = PROGRAMS_PER_ROM): FlowRom {
  const programs: FlowProgram[] = [];
  let rom: FlowRom | undefined;
  for (let i = 0; i < count; i++) {
    try {
      rom = buildRom(`flow-s${seed}`, [...programs, generateProgram(seed, i)], seed * 13);
      programs.push(generateProgram(seed, i));
    } catch (e) {
      if (!(e instanceof RangeError) || i === 0) throw e;
      break;
    }
  }
  return rom!;
}

// ---------------------------------------------------------------- reduction

function stmtLists(p: FlowProgram): Stmt[][] {
  const out: Stmt[][] = [];
  const walk = (l: Stmt[]): void => {
    out.push(l);
    for (const s of l) {
      if (s.k === 'if') {
        walk(s.then);
        if (s.else) walk(s.else);
      } else if (s.k === 'loop' || s.k === 'push' || s.k === 'tramp') walk(s.body);
    }
  };
  p.fns.forEach((f) => walk(f.body));
  walk(p.rPrefix);
  walk(p.rA);
  walk(p.rB);
  return out;
}

/**
 * Shrinks a failing program: drops statements (and then unwraps compound
 * ones) while tsvm in `accel` still disagrees with QEMU.  Prints each step;
 * returns the final program's sources.
 */
export async function reduceProgram(seed: number, index: number, accel: string, sliceSeed: number, log: (s: string) => void): Promise<string> {
  const p = generateProgram(seed, index);
  p.index = 0;
  let n = 0;
  const fails = async (): Promise<string | undefined> => {
    let rom: FlowRom;
    try {
      rom = buildRom(`flow-reduce-s${seed}-${n++}`, [p], seed * 13 + index);
    } catch (e) {
      if (e instanceof RangeError) return undefined;
      return undefined;
    }
    const r = await runFlowRom(rom, accel, sliceSeed);
    if (r.qemuProblem) return undefined;
    return r.ok ? undefined : r.report;
  };
  let report = await fails();
  if (!report) return '(the program alone does not fail)';
  for (let changed = true; changed; ) {
    changed = false;
    for (const l of stmtLists(p)) {
      for (let i = 0; i < l.length; i++) {
        const s = l[i]!;
        const repl: Stmt[][] = [[]];
        if (s.k === 'loop' || s.k === 'push' || s.k === 'tramp') repl.push(s.body);
        if (s.k === 'if') repl.push(s.then, ...(s.else ? [s.else] : []));
        for (const rep of repl) {
          l.splice(i, 1, ...rep);
          const bad = (p.fns.every((f) => flagsAfter(f.body, ARITH) !== undefined) && (await fails())) || undefined;
          if (bad) {
            report = bad;
            changed = true;
            log(`  dropped a '${s.k}' statement (${n} attempts)`);
            i--;
            break;
          }
          l.splice(i, rep.length, s);
        }
      }
    }
  }
  const rom = buildRom(`flow-reduced-s${seed}-p${index}`, [p], seed * 13 + index);
  const base = join(BUILD_DIR, 'flow', `${rom.name}-f0`);
  return `reduced program: ${rom.source} (code ${base}-main.asm, ${base}-ra.asm, ${base}-rb.asm)\n${readFileSync(base + '-main.asm', 'utf8')}\n-- R page A --\n${readFileSync(base + '-ra.asm', 'utf8')}\n-- its diff --\n${report}`;
}

// ---------------------------------------------------------------- CLI

function parseSeeds(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad --seeds: ${s}`);
    for (let i = Number(m[1]); i <= Number(m[2] ?? m[1]); i++) out.push(i);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  let seeds = [1, 2];
  let programs = PROGRAMS_PER_ROM;
  let modes = TSVM_MODES.slice();
  let reduce = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--seeds') seeds = parseSeeds(argv[++i] ?? '');
    else if (a === '--programs') programs = Number(argv[++i]);
    else if (a === '--mode') {
      const m = argv[++i];
      modes = TSVM_MODES.filter((x) => x.label === m);
      if (!modes.length) throw new Error(`--mode: one of ${TSVM_MODES.map((x) => x.label).join(', ')}`);
    } else if (a === '--reduce') reduce = true;
    else {
      console.log('usage: node dist/test/cpu/random-flow.js [--seeds 1-20] [--programs N] [--mode interp|blocks-eager|wasm-eager|default] [--reduce]');
      return a === '-h' || a === '--help' ? 0 : 2;
    }
  }
  let failed = 0;
  for (const seed of seeds) {
    const rom = seedRom(seed, programs);
    for (const mode of modes) {
      const ss = sliceSeedOf(seed, mode.label);
      const r = await runFlowRom(rom, mode.accel, ss);
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} seed ${seed} [${mode.label}] (slice seed ${ss})`);
      if (r.ok) continue;
      failed++;
      const first = r.mismatches[0];
      if (first) console.log('  ' + explain(r.mismatches, rom));
      console.log(r.report);
      if (reduce && first) {
        const prog = Number(/program (\d+)/.exec(explain(r.mismatches, rom))?.[1] ?? 0);
        console.log(await reduceProgram(seed, prog, mode.accel, ss, (s) => console.log(s)));
      }
    }
  }
  console.log(`${failed ? 'FAIL' : 'ok'}: ${failed} failing runs`);
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && !process.env['NODE_TEST_CONTEXT']) {
  main(process.argv.slice(2)).then((c) => process.exit(c));
}
