// Random control-flow programs for the differential CPU test: where random.ts
// generates straight-line sequences, this generator builds whole programs with
// branches, loops, calls across code pages, self-modifying stores and
// page-table changes, runs them with paging on in QEMU and in tsvm (in
// process, in slices of random lengths, on every execution tier) and compares
// the final registers, flags and memory (data, stack, the code pages as
// patched, the page table with its A/D bits and a log of register snapshots
// taken at checkpoints along the way).
//
//   node dist/test/cpu/random-flow.js --seeds 1-20 [--programs 3] [--mode wasm-eager] [--reduce]
//
// A program (one far call from the ROM, 32-bit flat code segment, paging on):
//   linear 0x400000+  main code pages (functions F0..Fn, out-of-line blocks,
//                     a call table), also mapped at 0x480000+ (a write alias)
//   linear 0x410000   the "R" page: one of two physical pages (variants A and
//                     B, the same code up to the point where R remaps itself)
//   linear 0x420000   a data page remapped between two physical pages
//                     (0x421000 always shows the second one)
//   DS:0x100+         loop counters; DS:0..0x3F the scratch buffer random.ts
//                     uses (SeqGen's instructions run unchanged)
//   0x70000           checkpoint log (32 bytes per entry)
// Every loop is bounded (a counter in memory, or ECX with LOOP) and calls go
// only from Fi to Fj with j > i, so every program ends; a cost model keeps
// each program to a few tens of thousands of instructions.  Flags: as in
// random.ts, a flag reader is emitted only where the flags it reads are
// defined on every path (joins and calls are conservative).

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ASM_DIR,
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
import { Rng, SeqGen, type Gen } from './random.js';

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;
const hex = (v: number): string => '0x' + (v >>> 0).toString(16);

// ---------------------------------------------------------------- layout

const CODE_LIN = 0x400000;
const ALIAS_DELTA = 0x80000;
const MAX_MAIN_PAGES = 8;
const R_LIN = 0x410000;
const D_LIN = 0x420000;
const D2_LIN = 0x421000;
const PHYS_MAIN = 0x40000;
const PHYS_RA = 0x48000;
const PHYS_RB = 0x49000;
const PHYS_DA = 0x4a000;
const PHYS_DB = 0x4b000;
/**
 * Each program of a ROM has its own physical pages (program k at 0x40000 +
 * k * 0x10000): a page the wasm tier gave up on after many rewrites in one
 * program is fresh for the next.
 */
const physDelta = (p: FlowProgram): number => p.index * 0x10000;
const PT1 = 0x82000;
const PTE_R = PT1 + ((R_LIN - CODE_LIN) >> 12) * 4;
const PTE_D = PT1 + ((D_LIN - CODE_LIN) >> 12) * 4;
const LOG = 0x70000;
const LOGPTR = 0x6fff0;
const LOGTMP = 0x6fff4;
const LOG_DUMP = 0x2000;
const LOG_ENTRY = 32;
/** loop counters at linear 0x10000 + CTR_BASE + 4k, addressed through SS (flat; DS, ES, FS, GS get switched) */
const CTR_BASE = 0x100;
const MAX_CTRS = 60;
const SEL_FLATCODE = 0x90;

const CONDS: [string, number][] = [
  ['o', OF], ['no', OF], ['b', CF], ['ae', CF], ['e', ZF], ['ne', ZF], ['be', CF | ZF], ['a', CF | ZF],
  ['s', SF], ['ns', SF], ['p', PF], ['np', PF], ['l', SF | OF], ['ge', SF | OF], ['le', ZF | SF | OF], ['g', ZF | SF | OF],
];
const REGS = ['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
const REG_CODE: Record<string, number> = { eax: 0, ecx: 1, edx: 2, ebx: 3, esp: 4, ebp: 5, esi: 6, edi: 7 };
/** first bytes of the 5-byte `op r32/eax, imm32` forms a patch may put into a slot */
const SLOT_OPS = [0xb8, 0xb9, 0xba, 0xbd, 0xbe, 0xbf, 0x05, 0x2d, 0x35, 0x0d, 0x25, 0x3d, 0xa9];

// ---------------------------------------------------------------- program tree

export type Stmt =
  | { k: 'ins'; gen: Gen }
  | { k: 'check'; id: number }
  | { k: 'if'; def: Gen; cc: string; then: Stmt[]; else?: Stmt[] }
  | { k: 'loop'; form: 'dec' | 'loop' | 'jmpback' | 'count'; n: number; ctr: number; body: Stmt[] }
  | { k: 'call'; fn: number; how: 'rel' | 'reg' | 'tab'; args: string[] }
  | { k: 'callr' }
  | { k: 'slot'; id: number; jmp: boolean; bytes: number[]; straddle?: number }
  | { k: 'patch'; slot: number; line: Gen }
  | { k: 'remap'; page: 'r' | 'd'; to: number; flush: 'invlpg' | 'cr3' }
  | { k: 'push'; reg: string; body: Stmt[]; pop: string }
  | { k: 'tramp'; id: number; body: Stmt[] }
  | { k: 'seg'; sreg: 'ds' | 'es' | 'fs' | 'gs'; sel: number };

export interface Fn {
  /** bytes popped by RET n (the caller pushes as many) */
  ret: number;
  body: Stmt[];
}

export interface FlowProgram {
  index: number;
  fns: Fn[];
  /** the R page: common prefix (may end with a self-remap), then per variant */
  rPrefix: Stmt[];
  rA: Stmt[];
  rB: Stmt[];
  /** initial state */
  regs: Record<string, number>;
  ebx: number;
  flags: number;
  memSeed: number;
  dataSeed: number;
  /** physical page (0-7 from PHYS_MAIN) of each main code page: neighbours in linear space are not in physical space */
  pagePerm: number[];
}

interface Cost {
  n: number;
  checks: number;
}

const plainGen = (...lines: string[]): Gen => ({ lines, reads: 0, writes: 0, undef: 0 });

/** flags undefined after a statement list (reads of undefined flags: undefined) */
function flagsAfter(list: Stmt[], undef: number): number | undefined {
  let u: number | undefined = undef;
  for (const s of list) {
    u = flagsAfterOne(s, u);
    if (u === undefined) return undefined;
  }
  return u;
}

function applyGen(g: Gen, u: number): number | undefined {
  if (g.reads & u) return undefined;
  return (u & ~g.writes) | g.undef;
}

function flagsAfterOne(s: Stmt, u: number): number | undefined {
  switch (s.k) {
    case 'ins':
      return applyGen(s.gen, u);
    case 'check':
      return u;
    case 'if': {
      const d = applyGen(s.def, u);
      if (d === undefined) return undefined;
      const need = CONDS.find(([c]) => c === s.cc)![1];
      if (need & d) return undefined;
      const a = flagsAfter(s.then, d);
      const b = s.else ? flagsAfter(s.else, d) : d;
      if (a === undefined || b === undefined) return undefined;
      return a | b;
    }
    case 'loop':
      return flagsAfter(s.body, ARITH) === undefined ? undefined : ARITH;
    case 'call':
    case 'callr':
    case 'slot':
      return ARITH;
    case 'patch':
      return applyGen(s.line, u);
    case 'remap':
    case 'seg':
      return u;
    case 'push':
      return flagsAfter(s.body, u);
    case 'tramp':
      return flagsAfter(s.body, u);
  }
}

// ---------------------------------------------------------------- generation

/** SeqGen instructions that are safe in a program: no faults, balanced stack, no DF change. */
function safeGen(g: Gen): boolean {
  if (g.faults) return false;
  const text = g.lines.join('\n');
  if (/\b(enter|leave|call|ret|std|cld|bound)\b/.test(text)) return false;
  const pushes = g.lines.filter((l) => /^push/.test(l)).length;
  const pops = g.lines.filter((l) => /^pop/.test(l)).length;
  if (pushes !== pops) return false;
  if (pushes && !(g.lines.join(';') === 'pushfd;popfd;' + g.lines[2] || /^push dword 0x[0-9a-f]+;popfd$/.test(g.lines.join(';')))) return false;
  return true;
}

export class FlowGen {
  private seq: SeqGen;
  private label = 0;
  private ctrs = 0;
  private checks = 0;
  private slotsMain: { id: number; jmp: boolean; fn: number }[] = [];
  private slotsR: { id: number; jmp: boolean }[] = [];
  /** which function is being generated (-1: the R page) */
  private cur = 0;
  private fns: Fn[] = [];
  private fnCost: Cost[] = [];
  private rCost: Cost = { n: 0, checks: 0 };
  private straddles = 0;

  constructor(
    private rng: Rng,
    private ptr: number,
  ) {
    this.seq = new SeqGen(rng, 32);
    this.seq.ptr = ptr;
    this.seq.df = 0;
  }

  private nextId(): number {
    return this.label++;
  }

  /** a flag-defining instruction for a condition, and a condition it defines */
  private definer(): { def: Gen; cc: string } {
    const r = this.rng;
    const reg = r.pick(REGS);
    const f = r.int(6);
    let def: Gen;
    if (f === 0) def = { lines: [`cmp ${reg}, ${hex(r.value(32))}`], reads: 0, writes: ARITH, undef: 0 };
    else if (f === 1) def = { lines: [`test ${reg}, ${hex(r.value(32))}`], reads: 0, writes: ARITH & ~AF, undef: AF };
    else if (f === 2) def = { lines: [`${r.pick(['inc', 'dec'])} ${reg}`], reads: 0, writes: ARITH & ~CF, undef: 0 };
    else if (f === 3) def = { lines: [`cmp ${reg}, ${r.pick(REGS)}`], reads: 0, writes: ARITH, undef: 0 };
    else if (f === 4) def = { lines: [`${r.pick(['add', 'sub', 'xor', 'and', 'or'])} ${reg}, ${hex(r.value(32))}`], reads: 0, writes: ARITH, undef: 0 };
    else def = { lines: [`cmp byte [${hex(r.int(0x40))}], ${hex(r.value(8))}`], reads: 0, writes: ARITH, undef: 0 };
    if (/^(xor|and|or) /.test(def.lines[0]!)) def = { ...def, writes: ARITH & ~AF, undef: AF };
    const ok = CONDS.filter(([, fl]) => (fl & def.writes) === fl);
    return { def, cc: r.pick(ok)[0] };
  }

  private ins(undef: number): Gen {
    // half the instructions in the forms the wasm regions compile (so that
    // regions run long stretches), half from random.ts's whole repertoire
    if (this.rng.chance(0.5)) {
      for (let t = 0; t < 40; t++) {
        const g = this.simple();
        if (!(g.reads & undef)) return g;
      }
    }
    for (let t = 0; t < 40; t++) {
      const g = this.seq.one();
      this.seq.df = 0; // a rejected STD must not leak into a later POPFD image
      if (!safeGen(g) || g.reads & undef) continue;
      return g;
    }
    return plainGen('nop');
  }

  /** 32-bit register and [EBX+disp] forms, 8-bit ALU and MOV, shifts by an immediate, SETcc/CMOVcc */
  private simple(): Gen {
    const r = this.rng;
    const reg = (): string => r.pick(REGS);
    const src = (): string => r.pick(['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi']);
    const mem = (bytes: number): string => `[ebx+${hex(r.int(0x40 - bytes - this.ptr + 1))}]`;
    const f = r.int(12);
    if (f < 3) {
      const op = r.pick(['add', 'adc', 'sub', 'sbb', 'cmp', 'and', 'or', 'xor', 'test']);
      const logic = ['and', 'or', 'xor', 'test'].includes(op);
      const fx = logic ? { writes: ARITH & ~AF, undef: AF } : { writes: ARITH, undef: 0 };
      const reads = op === 'adc' || op === 'sbb' ? CF : 0;
      const g = r.int(6);
      let line: string;
      if (g === 0) line = `${op} ${reg()}, ${src()}`;
      else if (g === 1) line = `${op} ${reg()}, ${hex(r.value(32))}`;
      else if (g === 2 && op !== 'test') line = `${op} ${reg()}, dword ${mem(4)}`;
      else if (g === 3) line = `${op} dword ${mem(4)}, ${src()}`;
      else if (g === 4) line = `${op} ${r.pick(['al', 'cl', 'dl', 'ah', 'ch', 'dh'])}, ${r.pick(['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'])}`;
      else line = `${op} dword ${mem(4)}, ${hex(r.value(32))}`;
      return { lines: [line], reads, ...fx };
    }
    if (f === 3) {
      const g = r.int(5);
      if (g === 0) return plainGen(`mov ${reg()}, ${hex(r.value(32))}`);
      if (g === 1) return plainGen(`mov ${reg()}, ${src()}`);
      if (g === 2) return plainGen(`mov ${reg()}, ${mem(4)}`);
      if (g === 3) return plainGen(`mov ${mem(4)}, ${src()}`);
      return plainGen(`mov byte ${mem(1)}, ${r.pick(['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'])}`);
    }
    if (f === 4) return plainGen(`lea ${reg()}, [${src()}+${r.pick(REGS)}*${r.pick([1, 2, 4, 8])}+${hex(r.value(8))}]`);
    if (f === 5) {
      const op = r.pick(['inc', 'dec', 'neg', 'not']);
      const fx = op === 'not' ? { writes: 0, undef: 0 } : op === 'neg' ? { writes: ARITH, undef: 0 } : { writes: ARITH & ~CF, undef: 0 };
      return { lines: [`${op} ${reg()}`], reads: 0, ...fx };
    }
    if (f === 6) return plainGen(`${r.pick(['movzx', 'movsx'])} ${reg()}, ${r.chance(0.5) ? r.pick(['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh']) : 'byte ' + mem(1)}`);
    if (f === 7) {
      const line = r.chance(0.5) ? `imul ${reg()}, ${r.chance(0.5) ? src() : 'dword ' + mem(4)}` : `imul ${reg()}, ${src()}, ${hex(r.value(32))}`;
      return { lines: [line], reads: 0, writes: CF | OF, undef: SF | ZF | AF | PF };
    }
    if (f === 8) {
      const c = 1 + r.int(31);
      return { lines: [`${r.pick(['shl', 'shr', 'sar'])} ${reg()}, ${c}`], reads: 0, writes: CF | SF | ZF | PF | (c === 1 ? OF : 0), undef: AF | (c === 1 ? 0 : OF) };
    }
    if (f === 9) {
      const [cc, fl] = r.pick(CONDS);
      if (r.chance(0.5)) return { lines: [`set${cc} ${r.pick(['al', 'cl', 'dl', 'ah', 'ch', 'dh'])}`], reads: fl, writes: 0, undef: 0 };
      return { lines: [`cmov${cc} ${reg()}, ${r.chance(0.5) ? src() : 'dword ' + mem(4)}`], reads: fl, writes: 0, undef: 0 };
    }
    if (f === 10) return plainGen(r.pick(['cwde', 'cdq']));
    return plainGen(`push ${src()}`, `pop ${reg()}`);
  }

  private costOf(list: Stmt[]): Cost {
    let n = 0;
    let checks = 0;
    for (const s of list) {
      const c = this.costOne(s);
      n += c.n;
      checks += c.checks;
    }
    return { n, checks };
  }

  private costOne(s: Stmt): Cost {
    switch (s.k) {
      case 'ins':
        return { n: s.gen.lines.length + (s.gen.lines.some((l) => /rep/.test(l)) ? 8 : 0), checks: 0 };
      case 'check':
        return { n: 20, checks: 1 };
      case 'if': {
        const a = this.costOf(s.then);
        const b = s.else ? this.costOf(s.else) : { n: 0, checks: 0 };
        return { n: 3 + Math.max(a.n, b.n), checks: Math.max(a.checks, b.checks) };
      }
      case 'loop': {
        const b = this.costOf(s.body);
        return { n: 2 + s.n * (b.n + 4), checks: s.n * b.checks };
      }
      case 'call': {
        const c = this.fnCost[s.fn]!;
        return { n: c.n + 3 + s.args.length, checks: c.checks };
      }
      case 'callr':
        return { n: this.rCost.n + 2, checks: this.rCost.checks };
      case 'push': {
        const b = this.costOf(s.body);
        return { n: b.n + 2, checks: b.checks };
      }
      case 'tramp': {
        const b = this.costOf(s.body);
        return { n: b.n + 2, checks: b.checks };
      }
      default:
        return { n: 3, checks: 0 };
    }
  }

  /** a statement list; `budget` bounds its dynamic instruction count */
  private list(depth: number, budget: number, len: number): Stmt[] {
    const out: Stmt[] = [];
    let undef = ARITH;
    let used = 0;
    let checksUsed = 0;
    for (let i = 0; i < len && used < budget; i++) {
      const s = this.stmt(depth, budget - used, undef);
      const c = this.costOne(s);
      if (used + c.n > budget || checksUsed + c.checks > 200) continue;
      const u = flagsAfterOne(s, undef);
      if (u === undefined) continue;
      out.push(s);
      used += c.n;
      checksUsed += c.checks;
      undef = u;
    }
    // self-modification inside this list: a slot and a patch of it, the
    // patch ahead of the slot (it takes effect on this pass) or behind it
    // (on the next pass of an enclosing loop, or the next call)
    if (this.rng.chance(0.35)) {
      const slot = this.newSlot();
      const at = this.rng.int(out.length + 1);
      out.splice(at, 0, slot);
      const pat = this.patchOf(slot.id, slot.jmp, this.cur < 0);
      const pAt = this.rng.int(out.length + 1);
      out.splice(pAt, 0, pat);
      if (flagsAfter(out, ARITH) === undefined) {
        out.splice(out.indexOf(pat), 1);
        out.splice(out.indexOf(slot), 1);
      }
    }
    return out;
  }

  private newSlot(): Stmt & { k: 'slot' } {
    const r = this.rng;
    const id = this.nextId();
    const jmp = r.chance(0.3);
    const bytes = jmp
      ? [...(r.chance(0.5) ? [0xeb, 0x03] : [0x90, 0x90]), 0x83, 0xc0, r.int(256)]
      : [r.pick(SLOT_OPS), ...[0, 1, 2, 3].map(() => r.int(256))];
    if (this.cur < 0) this.slotsR.push({ id, jmp });
    else this.slotsMain.push({ id, jmp, fn: this.cur });
    // now and then a slot that straddles a page boundary of the main code
    // (the two pages are not neighbours in physical memory)
    if (this.cur >= 0 && this.straddles < 2 && r.chance(0.2)) {
      this.straddles++;
      return { k: 'slot', id, jmp, bytes, straddle: 1 + r.int(4) };
    }
    return { k: 'slot', id, jmp, bytes };
  }

  private patchOf(id: number, jmp: boolean, inR: boolean): Stmt {
    const r = this.rng;
    // main code pages may be written through their alias mapping too
    const at = (off: number): string => `[ss:S${id}+${off}${!inR && r.chance(0.3) ? `+${hex(ALIAS_DELTA)}` : ''}]`;
    let g: Gen;
    if (jmp) {
      const f = r.int(3);
      if (f === 0) g = plainGen(`mov word ${at(0)}, 0x03eb`);
      else if (f === 1) g = plainGen(`mov word ${at(0)}, 0x9090`);
      else g = { lines: [`xor word ${at(0)}, 0x03eb ^ 0x9090`], reads: 0, writes: ARITH & ~AF, undef: AF };
    } else {
      const f = r.int(7);
      const reg = r.pick(['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'ebx']);
      if (f === 0) g = plainGen(`mov dword ${at(1)}, ${hex(r.value(32))}`);
      else if (f === 1) g = plainGen(`mov ${at(1)}, ${reg}`);
      else if (f === 2) g = plainGen(`mov byte ${at(0)}, ${hex(r.pick(SLOT_OPS))}`);
      else if (f === 3) g = plainGen(`mov dword ${at(0)}, ${hex(((r.u32() & 0xffffff00) | r.pick(SLOT_OPS)) >>> 0)}`);
      else if (f === 4) g = plainGen(`xchg ${at(1)}, ${r.pick(REGS)}`);
      else if (f === 5) g = { lines: [`add dword ${at(1)}, ${hex(r.value(32))}`], reads: 0, writes: ARITH, undef: 0 };
      else g = { lines: [`inc byte ${at(2)}`], reads: 0, writes: ARITH & ~CF, undef: 0 };
    }
    return { k: 'patch', slot: id, line: g };
  }

  private stmt(depth: number, budget: number, undef: number): Stmt {
    const r = this.rng;
    const k = r.int(100);
    const inR = this.cur < 0;
    if (k < 40 || depth > 2 || budget < 40) return { k: 'ins', gen: this.ins(undef) };
    if (k < 46) {
      if (this.checks >= 40) return { k: 'ins', gen: this.ins(undef) };
      this.checks++;
      return { k: 'check', id: this.checks };
    }
    if (k < 58) {
      const { def, cc } = this.definer();
      const then = this.list(depth + 1, budget / 3, 1 + r.int(4));
      const els = r.chance(0.4) ? this.list(depth + 1, budget / 3, 1 + r.int(3)) : undefined;
      return { k: 'if', def, cc, then, ...(els ? { else: els } : {}) };
    }
    if (k < 70) {
      if (this.ctrs >= MAX_CTRS) return { k: 'ins', gen: this.ins(undef) };
      const ctr = this.ctrs++;
      const n = 1 + r.int(r.chance(0.3) ? 40 : 6);
      const body = this.list(depth + 1, Math.max(20, budget / (n + 1) - 4), 1 + r.int(6));
      const form = r.pick(['dec', 'loop', 'jmpback', 'count'] as const);
      return { k: 'loop', form, n, ctr, body };
    }
    if (k < 80 && !inR) {
      // a call to a later function (possibly on another page)
      const cands: number[] = [];
      for (let j = this.cur + 1; j < this.fns.length; j++) if (this.fnCost[j]!.n + 10 < budget) cands.push(j);
      if (!cands.length) return { k: 'ins', gen: this.ins(undef) };
      const fn = r.pick(cands);
      const args = Array.from({ length: this.fns[fn]!.ret / 4 }, () => (r.chance(0.5) ? r.pick(REGS) : `dword ${hex(r.value(32))}`));
      return { k: 'call', fn, how: r.pick(['rel', 'rel', 'reg', 'tab'] as const), args };
    }
    if (k < 84 && !inR) {
      if (this.rCost.n + 10 > budget) return { k: 'ins', gen: this.ins(undef) };
      return { k: 'callr' };
    }
    if (k < 89) {
      // patch a slot elsewhere: another function (another page, maybe) or on the R page
      const pool = inR ? this.slotsR.map((s) => ({ ...s, fn: -1 })) : this.slotsMain;
      if (!pool.length) return { k: 'ins', gen: this.ins(undef) };
      const s = r.pick(pool);
      return this.patchOf(s.id, s.jmp, inR);
    }
    if (k < 93) {
      const page = inR ? 'd' : r.pick(['r', 'd'] as const);
      const to = page === 'r' ? r.pick([PHYS_RA, PHYS_RB]) : r.pick([PHYS_DA, PHYS_DB]);
      return { k: 'remap', page, to, flush: r.pick(['invlpg', 'cr3'] as const) };
    }
    if (k < 95 && r.chance(0.5)) {
      // switch a data segment between the two scratch segments (bases 0x10000 and 0x20000)
      return { k: 'seg', sreg: r.pick(['ds', 'es', 'fs', 'gs'] as const), sel: r.pick([0x28, 0x30]) };
    }
    if (k < 97) {
      return { k: 'push', reg: r.pick(['eax', 'ecx', 'edx', 'ebx', 'esi', 'edi', 'ebp']), body: this.list(depth + 1, budget / 2, 1 + r.int(4)), pop: r.pick(REGS) };
    }
    if (inR) return { k: 'ins', gen: this.dataIns(undef) };
    return r.chance(0.5) ? { k: 'ins', gen: this.dataIns(undef) } : { k: 'tramp', id: this.nextId(), body: this.list(depth + 1, budget / 2, 1 + r.int(4)) };
  }

  /** an access to the remapped data page or to its fixed second view */
  private dataIns(undef: number): Gen {
    const r = this.rng;
    // D_LIN + 0xFFD..0xFFF: a dword that continues on the fixed page at D2_LIN
    const off = r.chance(0.2) ? 0xffd + r.int(3) : r.int(0x1000 - 4);
    const addr = `[ss:${hex(r.chance(0.5) ? D_LIN + off : D2_LIN + Math.min(off, 0xffc))}]`;
    const reg = r.pick(REGS);
    const f = r.int(5);
    if (f === 0) return plainGen(`mov ${reg}, ${addr}`);
    if (f === 1) return plainGen(`mov ${addr}, ${reg}`);
    if (f === 2) return { lines: [`add ${addr}, ${reg}`], reads: 0, writes: ARITH, undef: 0 };
    if (f === 3) return { lines: [`xor ${reg}, ${addr}`], reads: 0, writes: ARITH & ~AF, undef: AF };
    return this.ins(undef);
  }

  program(index: number): FlowProgram {
    const r = this.rng;
    const nf = 4 + r.int(5);
    this.fns = Array.from({ length: nf }, () => ({ ret: r.pick([0, 0, 4, 8]), body: [] }));
    this.fnCost = this.fns.map(() => ({ n: 0, checks: 0 }));
    this.fns[0]!.ret = 0;
    // the R page first (main functions call it); then callees before callers
    this.cur = -1;
    const rPrefix = this.list(1, 600, 1 + r.int(4));
    if (r.chance(0.6)) {
      // R remaps itself: the next instruction comes from the other variant
      const flush = r.pick(['invlpg', 'cr3'] as const);
      rPrefix.push({ k: 'remap', page: 'r', to: -1, flush });
    }
    // a patch on the R page targets the common prefix or its own variant
    const prefixSlots = this.slotsR.slice();
    const rA = this.list(1, 600, 1 + r.int(5));
    this.slotsR = prefixSlots.slice();
    const rB = this.list(1, 600, 1 + r.int(5));
    const ca = this.costOf([...rPrefix, ...rA]);
    const cb = this.costOf([...rPrefix, ...rB]);
    this.rCost = { n: Math.max(ca.n, cb.n), checks: Math.max(ca.checks, cb.checks) };
    for (let i = nf - 1; i >= 0; i--) {
      this.cur = i;
      const budget = i === 0 ? 60000 : 6000;
      this.fns[i]!.body = this.list(0, budget, i === 0 ? 8 + r.int(20) : 5 + r.int(12));
      this.fnCost[i] = this.costOf(this.fns[i]!.body);
    }
    // a hot loop in F0: enough iterations for the default thresholds to
    // compile it; a self-modifying store in it rewrites its page on every pass
    if (r.chance(0.85) && this.ctrs < MAX_CTRS) {
      this.cur = 0;
      // its body in the forms the regions compile: it can run in one region
      const body: Stmt[] = [];
      let u = ARITH;
      for (let i = 2 + r.int(5); i > 0; i--) {
        const g = this.simple();
        if (g.reads & u) continue;
        body.push({ k: 'ins', gen: g });
        u = (u & ~g.writes) | g.undef;
      }
      if (r.chance(0.3)) {
        const slot = this.newSlot();
        body.splice(r.int(body.length + 1), 0, slot);
        body.splice(r.int(body.length + 1), 0, this.patchOf(slot.id, slot.jmp, false));
        if (flagsAfter(body, ARITH) === undefined) body.splice(0, body.length, { k: 'ins', gen: plainGen('nop') });
      }
      const n = 2100 + r.int(600);
      const hot: Stmt = { k: 'loop', form: r.pick(['dec', 'count', 'jmpback'] as const), n: n & ~1, ctr: this.ctrs++, body };
      const f0 = this.fns[0]!.body;
      const at = r.int(f0.length + 1);
      f0.splice(at, 0, hot);
      if (flagsAfter(f0, ARITH) === undefined) {
        // a flag reader after it relied on flags the loop leaves undefined
        f0.splice(at, 1);
        f0.push(hot);
      }
    }
    // F0 ends with a definer of every arithmetic flag: the final dump compares them all
    this.fns[0]!.body.push({ k: 'ins', gen: { lines: [`${r.pick(['add', 'sub', 'cmp'])} ${r.pick(REGS)}, ${r.pick(REGS)}`], reads: 0, writes: ARITH, undef: 0 } });
    const regs: Record<string, number> = {};
    for (const reg of REGS) regs[reg] = r.value(32);
    return {
      index,
      fns: this.fns,
      rPrefix,
      rA,
      rB,
      regs,
      ebx: this.ptr,
      flags: ((r.u32() & ARITH) | 2) >>> 0,
      memSeed: r.u32() | 1,
      dataSeed: r.u32() | 1,
      pagePerm: shuffle(r, [0, 1, 2, 3, 4, 5, 6, 7]),
    };
  }
}

function shuffle<T>(r: Rng, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

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

export interface FlowRun {
  name: string;
  mode: string;
  ok: boolean;
  report: string;
  mismatches: Mismatch[];
}

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

void ASM_DIR;
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && !process.env['NODE_TEST_CONTEXT']) {
  main(process.argv.slice(2)).then((c) => process.exit(c));
}
