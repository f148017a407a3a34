// Random control-flow programs, the generator (random-flow.ts builds, runs
// and compares them; docs/cpu-testing.md, "The random control-flow test").
// A program is a tree of statements (Stmt) per function; the generator
// tracks undefined flags like random.ts and a cost model that bounds what a
// program executes.
//
// Layout of a program (one far call from the ROM, flat 32-bit code, paging on):
//   linear 0x400000+  main code pages (functions F0..Fn, out-of-line blocks,
//                     a call table), on shuffled physical pages, also mapped
//                     at 0x480000+ (a write alias)
//   linear 0x410000   the "R" page: one of two physical pages (variants A and
//                     B, the same code up to the point where R remaps itself)
//   linear 0x420000   a data page remapped between two physical pages
//                     (0x421000 always shows the second one)
//   0x10100+          loop counters (through SS); DS:0..0x3F the scratch
//                     buffer random.ts uses (SeqGen's instructions run as is)
//   0x70000           checkpoint log (32 bytes per entry)
// Every loop is bounded (a counter in memory, or ECX with LOOP) and calls go
// only from Fi to Fj with j > i, so every program ends.  Flags: a flag
// reader is emitted only where the flags it reads are defined on every path
// (joins, loops and calls are conservative).

import { Rng, SeqGen, type Gen } from './random.js';

export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
export const ARITH = CF | PF | AF | ZF | SF | OF;
export const hex = (v: number): string => '0x' + (v >>> 0).toString(16);

// ---------------------------------------------------------------- layout

export const CODE_LIN = 0x400000;
export const ALIAS_DELTA = 0x80000;
export const MAX_MAIN_PAGES = 8;
export const R_LIN = 0x410000;
export const D_LIN = 0x420000;
export const D2_LIN = 0x421000;
export const PHYS_MAIN = 0x40000;
export const PHYS_RA = 0x48000;
export const PHYS_RB = 0x49000;
export const PHYS_DA = 0x4a000;
export const PHYS_DB = 0x4b000;
/**
 * Each program of a ROM has its own physical pages (program k at 0x40000 +
 * k * 0x10000): a page the wasm tier gave up on after many rewrites in one
 * program is fresh for the next.
 */
export const physDelta = (p: FlowProgram): number => p.index * 0x10000;
export const PT1 = 0x82000;
export const PTE_R = PT1 + ((R_LIN - CODE_LIN) >> 12) * 4;
export const PTE_D = PT1 + ((D_LIN - CODE_LIN) >> 12) * 4;
export const LOG = 0x70000;
export const LOGPTR = 0x6fff0;
export const LOGTMP = 0x6fff4;
export const LOG_DUMP = 0x2000;
export const LOG_ENTRY = 32;
/** loop counters at linear 0x10000 + CTR_BASE + 4k, addressed through SS (flat; DS, ES, FS, GS get switched) */
export const CTR_BASE = 0x100;
export const MAX_CTRS = 60;
export const SEL_FLATCODE = 0x90;

export const CONDS: [string, number][] = [
  ['o', OF], ['no', OF], ['b', CF], ['ae', CF], ['e', ZF], ['ne', ZF], ['be', CF | ZF], ['a', CF | ZF],
  ['s', SF], ['ns', SF], ['p', PF], ['np', PF], ['l', SF | OF], ['ge', SF | OF], ['le', ZF | SF | OF], ['g', ZF | SF | OF],
];
export const REGS = ['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
/** first bytes of the 5-byte `op r32/eax, imm32` forms a patch may put into a slot */
export const SLOT_OPS = [0xb8, 0xb9, 0xba, 0xbd, 0xbe, 0xbf, 0x05, 0x2d, 0x35, 0x0d, 0x25, 0x3d, 0xa9];

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

export const plainGen = (...lines: string[]): Gen => ({ lines, reads: 0, writes: 0, undef: 0 });

/** flags undefined after a statement list (reads of undefined flags: undefined) */
export function flagsAfter(list: Stmt[], undef: number): number | undefined {
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

export function flagsAfterOne(s: Stmt, u: number): number | undefined {
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
  private slotsMain: { id: number; jmp: boolean; fn: number; straddle?: number }[] = [];
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
      const pat = this.patchOf(slot.id, slot.jmp, this.cur < 0, slot.straddle);
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
    if (this.cur < 0) {
      this.slotsR.push({ id, jmp });
      return { k: 'slot', id, jmp, bytes };
    }
    // now and then a slot that straddles a page boundary of the main code
    // (the two pages are not neighbours in physical memory): `straddle`
    // bytes on the first page
    const straddle = this.straddles < 2 && r.chance(0.2) ? 1 + r.int(4) : 0;
    this.slotsMain.push({ id, jmp, fn: this.cur, straddle });
    if (straddle) {
      this.straddles++;
      return { k: 'slot', id, jmp, bytes, straddle };
    }
    return { k: 'slot', id, jmp, bytes };
  }

  /**
   * A patch of slot `id`. A read-modify-write (XOR, XCHG, ADD) of a slot
   * that straddles a page boundary never straddles it itself: QEMU 7.2
   * repeats such a store's first part after the self-modifying-code check
   * (docs/cpu-qemu-differences.md; qemu-diff/smc-straddle-diff.asm).
   */
  private patchOf(id: number, jmp: boolean, inR: boolean, straddle = 0): Stmt {
    const r = this.rng;
    const crosses = (from: number, len: number): boolean => straddle > from && straddle < from + len;
    // main code pages may be written through their alias mapping too
    const at = (off: number): string => `[ss:S${id}+${off}${!inR && r.chance(0.3) ? `+${hex(ALIAS_DELTA)}` : ''}]`;
    let g: Gen;
    if (jmp) {
      let f = r.int(3);
      if (f === 2 && crosses(0, 2)) f = r.int(2);
      if (f === 0) g = plainGen(`mov word ${at(0)}, 0x03eb`);
      else if (f === 1) g = plainGen(`mov word ${at(0)}, 0x9090`);
      else g = { lines: [`xor word ${at(0)}, 0x03eb ^ 0x9090`], reads: 0, writes: ARITH & ~AF, undef: AF };
    } else {
      let f = r.int(7);
      if ((f === 4 || f === 5) && crosses(1, 4)) f = r.int(4);
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
      const pool: { id: number; jmp: boolean; straddle?: number }[] = inR ? this.slotsR : this.slotsMain;
      if (!pool.length) return { k: 'ins', gen: this.ins(undef) };
      const s = r.pick(pool);
      return this.patchOf(s.id, s.jmp, inR, s.straddle);
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
        body.splice(r.int(body.length + 1), 0, this.patchOf(slot.id, slot.jmp, false, slot.straddle));
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
