// Randomized differential CPU test: from a seed, generate many short random
// integer instruction sequences (each preceded by random register, flag and
// memory state and followed by a state dump), assemble them into test ROMs,
// run QEMU and tsvm and report the first mismatching sequence with its text.
//
//   node dist/test/cpu/random.js --seeds 1-100 [--count 300] [--qemu-only] [--accel tsvm,...]
//
// The generator tracks which arithmetic flags are undefined (per the Intel SDM)
// after each instruction: flag readers (ADC, Jcc, SETcc, PUSHF, ...) are only
// picked when the flags they read are defined, and the dump masks the flags
// still undefined at the end.  Memory operands stay inside a 64-byte scratch
// buffer addressed through EBX (BX in real mode), which no instruction writes;
// in the paging part some go to a not-present or read-only page instead.
// --reduce shrinks a mismatching sequence to a test snippet.

import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, BUILD_DIR, compareStreams, RF_FRAME_MASK, runRom, type TestOutcome } from './harness.js';

// ---------------------------------------------------------------- PRNG

/** mulberry32: small, fast, good enough for test generation */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed * 0x9e3779b9) >>> 0 || 1;
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  /** a value biased towards edge cases */
  value(bits: 8 | 16 | 32): number {
    const edges = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x10000];
    const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
    const r = this.int(4);
    const v = r === 0 ? this.pick(edges) : r === 1 ? this.int(64) : this.u32();
    return (v & mask) >>> 0;
  }
}

// ---------------------------------------------------------------- flags

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const ARITH = CF | PF | AF | ZF | SF | OF;
const hex = (v: number): string => '0x' + (v >>> 0).toString(16);

const CONDS: [string, number][] = [
  ['o', OF], ['no', OF], ['b', CF], ['ae', CF], ['e', ZF], ['ne', ZF], ['be', CF | ZF], ['a', CF | ZF],
  ['s', SF], ['ns', SF], ['p', PF], ['np', PF], ['l', SF | OF], ['ge', SF | OF], ['le', ZF | SF | OF], ['g', ZF | SF | OF],
];

type Size = 8 | 16 | 32;
const SZ: Record<Size, string> = { 8: 'byte', 16: 'word', 32: 'dword' };
const DST: Record<Size, string[]> = {
  8: ['al', 'cl', 'dl', 'ah', 'ch', 'dh'],
  16: ['ax', 'cx', 'dx', 'si', 'di', 'bp'],
  32: ['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp'],
};
const SRC: Record<Size, string[]> = {
  8: ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'],
  16: ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'],
  32: ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'],
};

/** one generated instruction (possibly a few lines) with its flag effects */
export interface Gen {
  lines: string[];
  /** flags read */
  reads: number;
  /** flags that become defined */
  writes: number;
  /** flags that become undefined */
  undef: number;
  /** may raise #DE: wrapped in EXPECT */
  faults?: boolean;
  /** uses a not-present/read-only page operand (paging part) */
  faultPage?: boolean;
}

const SCRATCH_LEN = 0x40;
/** fault pages of the paging part of a random ROM */
const FAULT_NP = 0x401000;
const FAULT_RO = 0x402000;
const PAGING_SETUP = [
  'cld',
  'ENTER_PAGING',
  'push es',
  'push dword SEL_FLAT',
  'pop es',
  'mov edi, PT_BASE + 0x1000',
  'xor eax, eax',
  'mov ecx, 1024',
  'rep stosd',
  'mov dword [es:PD_BASE + 4], (PT_BASE + 0x1000) | 7',
  'mov dword [es:PT_BASE + 0x1000], 0x30000 | 7',
  'mov dword [es:PT_BASE + 0x1000 + 8], 0x32000 | 5      ; read-only; page 1 not present',
  'mov edi, 0x32000',
  'mov eax, 0x9E3779B9',
  'mov ecx, 1024',
  '.rofill: stosd',
  'rol eax, 3',
  'loop .rofill',
  'mov eax, cr3',
  'mov cr3, eax',
  'mov eax, cr0',
  'or eax, 0x10000                                        ; WP',
  'mov cr0, eax',
  'pop es',
];

export class SeqGen {
  /** value of EBX (the memory pointer) */
  ptr = 0;
  /** undefined flags at this point */
  undef = 0;
  df = 0;
  /** paging mode: some memory operands go to a read-only or not-present page */
  faultMode = false;
  /** set by mem() when it returned a fault-page operand */
  private touched = false;
  /** no fault-page operands (CMPXCHG: QEMU deviation) */
  private noFault = false;
  constructor(private rng: Rng, private bits: 16 | 32) {}

  size(): Size {
    return this.rng.pick([8, 16, 32, 32] as Size[]);
  }
  dst(s: Size): string {
    return this.rng.pick(DST[s]);
  }
  src(s: Size): string {
    return this.rng.pick(SRC[s]);
  }
  /** a memory operand of `bytes` bytes inside the scratch buffer */
  mem(bytes: number, withSize = true, write = true): string {
    const r = this.rng;
    const prefix = withSize ? SZ[(bytes * 8) as Size] + ' ' : '';
    if (this.faultMode && !this.noFault && r.chance(0.2)) {
      // SS is flat: 0x401000 is not present, 0x402000 read-only (CR0.WP=1)
      this.touched = true;
      const page = r.pick([FAULT_NP, FAULT_RO]);
      return `${prefix}[ss:${hex(page + r.pick([r.int(0x40), 0x1000 - bytes - r.int(8)]))}]`;
    }
    // segment override: DS/ES/FS/GS all have the scratch base; CS (ROM) and
    // SS (base 0: IVT/GDT area) only for reads
    const segs = write ? ['', '', '', 'es:', 'fs:', 'gs:'] : ['', '', '', 'es:', 'fs:', 'gs:', 'cs:', 'ss:'];
    const seg = r.pick(segs);
    const max = SCRATCH_LEN - bytes;
    const form = r.int(this.bits === 32 ? 5 : 2);
    if (form === 0) return `${prefix}[${seg}${hex(r.int(max + 1))}]`;
    if (form === 1 || form === 3) {
      const d = r.int(max - this.ptr + 1);
      return `${prefix}[${seg}${this.bits === 32 ? 'ebx' : 'bx'}+${hex(d)}]`;
    }
    if (form === 4) {
      // 16-bit addressing in 32-bit code (a16 prefix)
      const d = r.int(max - this.ptr + 1);
      return `${prefix}[${seg}bx+${hex(d)}]`;
    }
    // [ebx*2+d]
    if (max - 2 * this.ptr < 0) return `${prefix}[${seg}ebx+${hex(r.int(max - this.ptr + 1))}]`;
    const d = r.int(max - 2 * this.ptr + 1);
    return `${prefix}[${seg}ebx*2+${hex(d)}]`;
  }
  /** a memory operand that is only read */
  src_mem(bytes: number, withSize = true): string {
    return this.mem(bytes, withSize, false);
  }
  rm(s: Size, allowSrcRegs = false): string {
    return this.rng.chance(0.35) ? this.mem(s / 8) : allowSrcRegs ? this.src(s) : this.dst(s);
  }
  imm(s: Size): string {
    return hex(this.rng.value(s));
  }

  /**
   * One random instruction.  In fault mode an instruction with a fault-page
   * operand may or may not fault (a read of the read-only page does not):
   * it is wrapped in EXPECT and defines no flag afterwards (either path).
   */
  one(): Gen {
    this.touched = false;
    const g = this.gen();
    if (this.touched) {
      // QEMU 7.2 does not always restore lazily computed flags correctly when
      // an instruction faults, so flags are not compared across these
      this.touched = false;
      return { ...g, faults: true, faultPage: true, writes: 0, undef: g.undef | ARITH };
    }
    return g;
  }

  private gen(): Gen {
    const r = this.rng;
    const kind = r.int(100);
    const s = this.size();
    if (kind < 22) {
      // two-operand ALU
      const op = r.pick(['add', 'adc', 'sub', 'sbb', 'cmp', 'and', 'or', 'xor', 'test']);
      const logic = ['and', 'or', 'xor', 'test'].includes(op);
      const reads = op === 'adc' || op === 'sbb' ? CF : 0;
      const fx = logic ? { writes: ARITH & ~AF, undef: AF } : { writes: ARITH, undef: 0 };
      const f = r.int(5);
      let line: string;
      if (f === 0) line = `${op} ${this.dst(s)}, ${this.src(s)}`;
      else if (f === 1) line = `${op} ${this.mem(s / 8)}, ${this.src(s)}`;
      else if (f === 2 && op !== 'test') line = `${op} ${this.dst(s)}, ${this.src_mem(s / 8, false)}`;
      else if (f === 3 && s !== 8 && op !== 'test') line = `${op} ${this.rm(s)}, strict byte ${hex(r.value(8))}`;
      else line = `${op} ${this.rm(s)}, ${this.imm(s)}`;
      return { lines: [line], reads, ...fx };
    }
    if (kind < 28) {
      const op = r.pick(['inc', 'dec', 'neg', 'not']);
      const fx = op === 'not' ? { writes: 0, undef: 0 } : op === 'neg' ? { writes: ARITH, undef: 0 } : { writes: ARITH & ~CF, undef: 0 };
      return { lines: [`${op} ${this.rm(s)}`], reads: 0, ...fx };
    }
    if (kind < 40) return this.shift(s);
    if (kind < 44) return this.shiftDouble();
    if (kind < 50) return this.muldiv(s);
    if (kind < 55) return this.bitop();
    if (kind < 62) {
      // mov / movzx / movsx / lea / bswap / xchg
      const f = r.int(7);
      if (f === 0) return plain(`mov ${this.dst(s)}, ${this.rng.chance(0.5) ? this.src(s) : this.imm(s)}`);
      if (f === 1) return plain(`mov ${this.mem(s / 8)}, ${this.src(s)}`);
      if (f === 2) {
        const from = r.pick([8, 16] as Size[]);
        const to = from === 8 ? r.pick([16, 32] as Size[]) : 32;
        const src = r.chance(0.5) ? this.src_mem(from / 8) : this.src(from);
        return plain(`${r.pick(['movzx', 'movsx'])} ${this.dst(to)}, ${src}`);
      }
      if (f === 3) return plain(this.lea());
      if (f === 4) return plain(`bswap ${this.dst(32)}`);
      if (f === 5) return plain(`xchg ${this.dst(s)}, ${r.chance(0.5) ? this.dst(s) : this.mem(s / 8, false)}`);
      if (r.chance(0.2)) return plain(`${r.pick(['', 'es ', 'fs ', 'cs '])}xlatb`);
      return plain(`${r.pick(['cbw', 'cwde', 'cwd', 'cdq'])}`);
    }
    if (kind < 67) {
      const f = r.int(3);
      if (f === 0) return { lines: [`xadd ${this.rm(s)}, ${this.dst(s)}`], reads: 0, writes: ARITH, undef: 0 };
      if (f === 1) {
        this.noFault = true;
        const m = this.rm(s);
        this.noFault = false;
        return { lines: [`cmpxchg ${m}, ${this.dst(s)}`], reads: 0, writes: ARITH, undef: 0 };
      }
      // QEMU 7.2 computes CMPXCHG8B's flags from a stale lazy-flags state when
      // the previous flag writer is in the same translation block; POPFD ends
      // the block first (see docs/cpu-testing.md, "QEMU deviations")
      this.noFault = true;
      const m8 = this.mem(8, false);
      this.noFault = false;
      return { lines: ['pushfd', 'popfd', `cmpxchg8b ${m8}`], reads: ARITH, writes: ZF, undef: 0 };
    }
    if (kind < 77) {
      // flag readers
      const [cc, fl] = r.pick(CONDS);
      const f = r.int(5);
      if (f === 0) return { lines: [`set${cc} ${r.chance(0.5) ? this.dst(8) : this.mem(1)}`], reads: fl, writes: 0, undef: 0 };
      if (f === 1) {
        const s2 = r.pick([16, 32] as Size[]);
        return { lines: [`cmov${cc} ${this.dst(s2)}, ${r.chance(0.5) ? this.src(s2) : this.src_mem(s2 / 8, false)}`], reads: fl, writes: 0, undef: 0 };
      }
      if (f === 2) {
        // a forward branch over one instruction
        const inner = this.one();
        if (inner.faults) return inner;
        const lbl = `.j${r.u32().toString(36)}`;
        return { lines: [`j${cc} short ${lbl}`, ...inner.lines, `${lbl}:`], reads: fl | inner.reads, writes: 0, undef: inner.undef };
      }
      if (f === 3) return { lines: ['lahf'], reads: SF | ZF | AF | PF | CF, writes: 0, undef: 0 };
      return { lines: [r.pick(['pushfd', 'pushfw'])], reads: ARITH, writes: 0, undef: 0 };
    }
    if (kind < 82) {
      const f = r.int(6);
      if (f === 0) return { lines: ['sahf'], reads: 0, writes: SF | ZF | AF | PF | CF, undef: 0 };
      if (f === 1) return { lines: ['cmc'], reads: CF, writes: CF, undef: 0 };
      if (f === 2) return { lines: [r.pick(['clc', 'stc'])], reads: 0, writes: CF, undef: 0 };
      if (f === 3) {
        this.df = r.int(2);
        return plain(this.df ? 'std' : 'cld');
      }
      if (f === 4) {
        const v = (r.u32() & ARITH) | 2 | (this.df << 10);
        return { lines: [`push dword ${hex(v)}`, 'popfd'], reads: 0, writes: ARITH, undef: 0 };
      }
      return this.bcd();
    }
    if (kind < 90) {
      // stack
      const f = r.int(8);
      if (f === 5) {
        // ENTER/LEAVE with a frame pointer inside the (random) stack area
        const lvl = r.pick([0, 1, 2, 3, 5]);
        return plain(`mov ebp, 0x8f40`, `enter ${r.int(0x21)}, ${lvl}`, `leave`);
      }
      if (f === 6) {
        // CALL/RET around a flag-neutral or ALU instruction (no stack use)
        let inner = this.one();
        for (let k = 0; k < 20 && (inner.faults || inner.lines.some((l) => /push|pop|enter|leave|call|ret|^j|:$/.test(l))); k++) inner = this.one();
        if (inner.faults || inner.lines.some((l) => /push|pop|enter|leave|call|ret|^j|:$/.test(l))) inner = plain('nop');
        const id = r.u32().toString(36);
        const ret = r.chance(0.3) ? 'ret 2' : 'ret';
        return { ...inner, lines: [`call .f${id}`, `jmp short .e${id}`, `.f${id}:`, ...inner.lines, ret, `.e${id}:`] };
      }
      if (f === 7) {
        const s2 = r.pick([16, 32] as Size[]);
        return { lines: [`bound ${this.dst(s2)}, ${this.src_mem(s2 / 4, false)}`], reads: 0, writes: 0, undef: 0, faults: true };
      }
      if (f === 0) return plain(`push ${this.src(r.pick([16, 32] as Size[]))}`);
      if (f === 1) return plain(`push ${r.pick(['dword', 'word'])} ${hex(r.value(16))}`);
      if (f === 2) return plain(`push ${this.src_mem(r.pick([2, 4]))}`);
      if (f === 3) return plain(`pop ${this.dst(r.pick([16, 32] as Size[]))}`);
      return plain(`pop ${this.mem(r.pick([2, 4]))}`);
    }
    return this.string();
  }

  lea(): string {
    const r = this.rng;
    const s = r.pick([16, 32] as Size[]);
    if (r.chance(0.5) && true) {
      // 32-bit addressing
      const base = r.chance(0.8) ? r.pick(SRC[32]) : '';
      const index = r.chance(0.6) ? r.pick(SRC[32].filter((x) => x !== 'esp')) : '';
      const scale = r.pick([1, 2, 4, 8]);
      const disp = r.pick([0, r.value(8), r.value(32), -r.int(200)]);
      const parts = [base, index ? `${index}*${scale}` : ''].filter(Boolean);
      const sign = disp < 0 ? '-' : '+';
      const expr = parts.length ? `${parts.join('+')}${sign}${hex(Math.abs(disp))}` : `dword ${hex(disp >>> 0)}`;
      return `lea ${this.dst(s)}, [${expr}]`;
    }
    const forms = ['bx+si', 'bx+di', 'bp+si', 'bp+di', 'si', 'di', 'bp', 'bx'];
    const f = r.pick(forms);
    const disp = r.pick([0, r.int(256) - 128, r.int(65536)]);
    return `lea ${this.dst(s)}, [${f}${disp < 0 ? '-' : '+'}${hex(Math.abs(disp))}]`;
  }

  shift(s: Size): Gen {
    const r = this.rng;
    const op = r.pick(['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr', 'sal']);
    const f = r.int(3);
    const count = f === 0 ? 1 : r.pick([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, r.int(256)]);
    const lines: string[] = [];
    const dst = this.rm(s);
    if (f === 0) lines.push(`${op} ${dst}, 1`);
    else if (f === 1) lines.push(`${op} ${dst}, strict byte ${count}`);
    else lines.push(`mov cl, ${count}`, `${op} ${dst}, cl`);
    const c = count & 31;
    const reads = op === 'rcl' || op === 'rcr' ? CF : 0;
    if (c === 0) return { lines, reads, writes: 0, undef: 0 };
    if (['rol', 'ror', 'rcl', 'rcr'].includes(op)) return { lines, reads, writes: c === 1 ? CF | OF : CF, undef: c === 1 ? 0 : OF };
    let writes = CF | SF | ZF | PF | (c === 1 ? OF : 0);
    let undef = AF | (c === 1 ? 0 : OF);
    if (op !== 'sar' && c >= s) {
      writes &= ~CF;
      undef |= CF;
    }
    return { lines, reads, writes, undef };
  }

  shiftDouble(): Gen {
    const r = this.rng;
    const s = r.pick([16, 32] as Size[]);
    const op = r.pick(['shld', 'shrd']);
    const count = s === 16 ? r.int(17) : r.pick([0, 1, 2, 8, 16, 31, 32, 33, r.int(256)]);
    const lines: string[] = [];
    const dst = this.rm(s);
    const src = this.src(s);
    if (r.chance(0.5)) lines.push(`${op} ${dst}, ${src}, ${count}`);
    else if (src === 'cx' || src === 'ecx') lines.push(`${op} ${dst}, ${src}, ${count}`);
    else lines.push(`mov cl, ${count}`, `${op} ${dst}, ${src}, cl`);
    const c = count & 31;
    if (c === 0) return { lines, reads: 0, writes: 0, undef: 0 };
    return { lines, reads: 0, writes: CF | SF | ZF | PF | (c === 1 ? OF : 0), undef: AF | (c === 1 ? 0 : OF) };
  }

  muldiv(s: Size): Gen {
    const r = this.rng;
    const f = r.int(6);
    if (f === 0) return { lines: [`${r.pick(['mul', 'imul'])} ${this.rm(s, true)}`], reads: 0, writes: CF | OF, undef: SF | ZF | AF | PF };
    if (f === 1 && s !== 8) return { lines: [`imul ${this.dst(s)}, ${r.chance(0.5) ? this.src(s) : this.mem(s / 8, false)}`], reads: 0, writes: CF | OF, undef: SF | ZF | AF | PF };
    if (f === 2 && s !== 8) {
      const imm = r.chance(0.5) ? `strict byte ${hex(r.value(8))}` : this.imm(s);
      return { lines: [`imul ${this.dst(s)}, ${r.chance(0.5) ? this.src(s) : this.mem(s / 8, false)}, ${imm}`], reads: 0, writes: CF | OF, undef: SF | ZF | AF | PF };
    }
    return { lines: [`${r.pick(['div', 'idiv'])} ${this.rm(s, true)}`], reads: 0, writes: 0, undef: ARITH, faults: true };
  }

  bitop(): Gen {
    const r = this.rng;
    const op = r.pick(['bt', 'bts', 'btr', 'btc', 'bsf', 'bsr']);
    const s = r.pick([16, 32] as Size[]);
    if (op === 'bsf' || op === 'bsr') {
      return { lines: [`${op} ${this.dst(s)}, ${r.chance(0.5) ? this.src(s) : this.src_mem(s / 8, false)}`], reads: 0, writes: ZF, undef: CF | OF | SF | AF | PF };
    }
    const fx = { reads: 0, writes: CF, undef: OF | SF | AF | PF };
    if (r.chance(0.5)) return { lines: [`${op} ${this.dst(s)}, ${this.src(s)}`], ...fx };
    return { lines: [`${op} ${this.rm(s)}, ${r.int(256)}`], ...fx };
  }

  bcd(): Gen {
    const r = this.rng;
    const op = r.pick(['daa', 'das', 'aaa', 'aas', 'aam', 'aad']);
    if (op === 'daa' || op === 'das') return { lines: [op], reads: CF | AF, writes: CF | AF | SF | ZF | PF, undef: OF };
    if (op === 'aaa' || op === 'aas') return { lines: [op], reads: AF, writes: AF | CF, undef: OF | SF | ZF | PF };
    const base = r.pick([10, 10, 16, 0, 7, 255, r.int(256)]);
    return { lines: [`${op} ${base}`], reads: 0, writes: SF | ZF | PF, undef: OF | AF | CF, faults: op === 'aam' && base === 0 };
  }

  string(): Gen {
    const r = this.rng;
    const op = r.pick(['movs', 'stos', 'lods', 'cmps', 'scas']);
    const s = r.pick([8, 16, 32] as Size[]);
    const b = s / 8;
    const n = r.int(9);
    const rep = op === 'cmps' || op === 'scas' ? r.pick(['', 'repe ', 'repne ']) : r.pick(['', 'rep ']);
    const iters = rep ? n : 1;
    const start = (): number => {
      const span = Math.max(iters - 1, 0) * b;
      return this.df ? span + r.int(SCRATCH_LEN - b - span + 1) : r.int(SCRATCH_LEN - b - span + 1);
    };
    const suffix = { 8: 'b', 16: 'w', 32: 'd' }[s];
    const lines = [`mov esi, ${hex(start())}`, `mov edi, ${hex(start())}`, `mov ecx, ${n}`, `${rep}${op}${suffix}`];
    const cmp = op === 'cmps' || op === 'scas';
    return { lines, reads: 0, writes: cmp && iters > 0 ? ARITH : 0, undef: 0 };
  }
}

function plain(...lines: string[]): Gen {
  return { lines, reads: 0, writes: 0, undef: 0 };
}

// ---------------------------------------------------------------- program

export interface Sequence {
  index: number;
  mode: 'rm' | 'p16' | 'p32' | 'pg';
  /** human-readable text: setup and instructions */
  text: string;
  spec: SeqSpec;
}

export interface RandomRom {
  name: string;
  source: string;
  sequences: Sequence[];
}

const REGS32 = ['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp'];

/** Generates the nasm source of one ROM: `count` sequences, half in real mode, half in 32-bit protected mode. */
const PREAMBLE: string[] = ['%include "lib/harness.inc"', 'TEST_BEGIN'];

/** everything needed to re-emit one sequence (for the ROM and for reduction) */
export interface SeqSpec {
  index: number;
  mode: 'rm' | 'p16' | 'p32' | 'pg';
  /** setup lines: fill, registers, flags */
  setup: string[];
  /** comment line with the initial state */
  header: string;
  gens: Gen[];
}

/**
 * The asm lines of a sequence made of `gens`, with EXPECT around faulting
 * instructions and the final dumps masked by the still-undefined flags.
 * Returns undefined when an instruction would read an undefined flag.
 */
export function emitSequence(spec: SeqSpec, gens: Gen[]): string[] | undefined {
  const idx = spec.index;
  const out = [`; ---- seq ${idx}`, ...spec.setup.map((l) => '  ' + l)];
  let undef = 0;
  let i = 0;
  for (const ins of gens) {
    if (ins.reads & undef) return undefined;
    i++;
    const before = undef;
    undef = (undef & ~ins.writes) | ins.undef;
    if (ins.faults) {
      const lbl = `.c${idx}_${i}`;
      // a faulting instruction leaves EFLAGS as before: compare those defined then
      const xmask = ins.faultPage ? ~(before | ARITH) : ~before;
      out.push(`  EXPECT ${lbl}, ${hex(xmask >>> 0)}`, ...ins.lines.map((l) => '  ' + l), '  mov dword [ss:V_CONT], 0', `${lbl}:`);
    } else {
      out.push(...ins.lines.map((l) => (l.endsWith(':') ? l : '  ' + l)));
    }
  }
  out.push(`  DUMP "s${idx}", ${hex(~undef >>> 0)}`, `  DUMPMEM "s${idx} mem", SCRATCH, 0x40`, `  DUMPMEM "s${idx} stack", 0x9000 - 0x180, 0x100`);
  return out;
}

function seqText(spec: SeqSpec, gens: Gen[]): string {
  return [spec.header, ...gens.flatMap((g) => g.lines.map((l) => (l.endsWith(':') ? l : '  ' + l)))].join('\n');
}

/** Generates the nasm source of one ROM: `count` sequences, a third each in real mode, 16-bit and 32-bit protected mode. */
export function generateRom(seed: number, part: number, count: number, firstIndex: number): RandomRom {
  const rng = new Rng(seed * 1000 + part + 1);
  const name = `random-s${seed}-p${part}`;
  const out: string[] = [`; generated by test/cpu/random.ts: seed ${seed}, part ${part}`, ...PREAMBLE];
  const sequences: Sequence[] = [];
  let prevMode = 'rm';
  for (let k = 0; k < count; k++) {
    const q = Math.floor((4 * k) / count);
    const mode = (['rm', 'p16', 'p32', 'pg'] as const)[q]!;
    if (mode !== prevMode) {
      if (mode === 'p16') out.push('ENTER_PM16');
      if (mode === 'p32') out.push('ENTER_PM32');
      if (mode === 'pg') out.push(...(prevMode === 'p32' ? [] : ['ENTER_PM32']), ...PAGING_SETUP.map((l) => (l.startsWith('.') ? l : '  ' + l)));
      prevMode = mode;
    }
    const bits = mode === 'p32' || mode === 'pg' ? 32 : 16;
    const g = new SeqGen(rng, bits);
    g.faultMode = mode === 'pg';
    const idx = firstIndex + k;
    // setup
    const memSeed = rng.u32() | 1;
    g.ptr = rng.int(0x20);
    const ebx = bits === 16 ? ((rng.u32() & 0xffff0000) | g.ptr) >>> 0 : g.ptr;
    const flags = ((rng.u32() & ARITH) | 2 | (rng.chance(0.3) ? 0x400 : 0)) >>> 0;
    g.df = flags & 0x400 ? 1 : 0;
    const setup = ['mov esp, 0x8e00', `mov eax, ${hex(memSeed)}`, `call randfill${bits}`, `mov esp, ${hex(0x9000 - 0x100)}`];
    const regText: string[] = [];
    for (const reg of REGS32) {
      const v = rng.value(32);
      setup.push(`mov ${reg}, ${hex(v)}`);
      regText.push(`${reg}=${hex(v)}`);
    }
    setup.push(`mov ebx, ${hex(ebx)}`, `push dword ${hex(flags)}`, 'popfd');
    const header = `; seq ${idx} (${mode}) scratch = xorshift32 from ${hex(memSeed)}; ${regText.join(' ')} ebx=${hex(ebx)} esp=0x8f00 eflags=${hex(flags)}`;
    // body: instructions whose flag inputs are defined
    const n = 1 + rng.int(8);
    const gens: Gen[] = [];
    let undef = 0;
    for (let tries = 0; gens.length < n && tries < 50; tries++) {
      const ins = g.one();
      if (ins.reads & undef) continue;
      undef = (undef & ~ins.writes) | ins.undef;
      gens.push(ins);
    }
    const spec: SeqSpec = { index: idx, mode, setup, header, gens };
    out.push(...emitSequence(spec, gens)!);
    sequences.push({ index: idx, mode, text: seqText(spec, gens), spec });
  }
  out.push('TEST_END', '');
  return { name, source: out.join('\n'), sequences };
}

/** A ROM holding one sequence (in its mode) made of `gens`. */
function singleRom(spec: SeqSpec, gens: Gen[]): string | undefined {
  const body = emitSequence(spec, gens);
  if (!body) return undefined;
  const modeLines = spec.mode === 'p16' ? ['ENTER_PM16'] : spec.mode === 'p32' ? ['ENTER_PM32'] : spec.mode === 'pg' ? ['ENTER_PM32', ...PAGING_SETUP] : [];
  return ['; reduced random sequence', ...PREAMBLE, ...modeLines, ...body, 'TEST_END', ''].join('\n');
}

/**
 * Delta-reduces a mismatching sequence: drops instructions one at a time as
 * long as tsvm and QEMU still disagree.  Returns the text of the smallest
 * sequence found and a ready-to-paste test snippet.
 */
export async function reduceSequence(spec: SeqSpec): Promise<{ text: string; snippet: string; report: string }> {
  const dir = join(BUILD_DIR, 'random');
  mkdirSync(dir, { recursive: true });
  let n = 0;
  const mismatches = async (gens: Gen[]): Promise<string | undefined> => {
    const src = singleRom(spec, gens);
    if (!src) return undefined;
    const name = `reduce-s${spec.index}-${n++}`;
    const file = join(dir, name + '.asm');
    writeFileSync(file, src);
    const o = await runRom(name, assemble(file, dir));
    if (o.qemuProblem) return undefined;
    return o.report || undefined;
  };
  let cur = spec.gens;
  let report = (await mismatches(cur)) ?? '';
  if (!report) return { text: seqText(spec, cur), snippet: '', report: '(the sequence alone does not mismatch)' };
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i < cur.length && cur.length > 1; i++) {
      const cand = cur.filter((_, k) => k !== i);
      const r = await mismatches(cand);
      if (r) {
        cur = cand;
        report = r;
        changed = true;
        i--;
      }
    }
  }
  const body = emitSequence(spec, cur)!;
  const modeLines = spec.mode === 'p16' ? ['ENTER_PM16'] : spec.mode === 'p32' ? ['ENTER_PM32'] : spec.mode === 'pg' ? ['ENTER_PM32', ...PAGING_SETUP] : [];
  const snippet = [...modeLines, ...body.filter((l) => !/DUMPMEM/.test(l))].join('\n');
  return { text: seqText(spec, cur), snippet, report };
}

export interface SeedResult {
  seed: number;
  ok: boolean;
  report: string;
  outcomes: TestOutcome[];
  /** the mismatching sequences (first few per ROM) */
  failing: Sequence[];
}

/** Per-ROM sequence count: stays well inside the 64 KiB ROM. */
export const PER_ROM = 150;

export async function runSeed(seed: number, count: number, opts: { qemuOnly?: boolean; accel?: string } = {}): Promise<SeedResult> {
  const dir = join(BUILD_DIR, 'random');
  mkdirSync(dir, { recursive: true });
  const parts = Math.ceil(count / PER_ROM);
  const reports: string[] = [];
  const outcomes: TestOutcome[] = [];
  const failing: Sequence[] = [];
  let ok = true;
  for (let p = 0; p < parts; p++) {
    const n = Math.min(PER_ROM, count - p * PER_ROM);
    const rom = generateRom(seed, p, n, p * PER_ROM);
    const src = join(dir, rom.name + '.asm');
    writeFileSync(src, rom.source);
    const bin = assemble(src, dir);
    const o = await runRom(rom.name, bin, opts);
    outcomes.push(o);
    const bad = opts.qemuOnly ? !!o.report : !!o.report || !o.tsvm || o.tsvm.code !== 0;
    if (!bad) continue;
    ok = false;
    const lines = [o.report];
    // show the text of the mismatching sequences (first few)
    const ms = o.tsvmStream ? compareStreams(o.qemuStream.records, o.tsvmStream.records, undefined, undefined, RF_FRAME_MASK) : [];
    const seen = new Set<number>();
    const texts: string[] = [];
    for (const m of ms) {
      const rec = m.expected ?? m.got;
      const label = rec && 'label' in rec ? rec.label : m.after;
      const mm = /s(\d+)/.exec(rec?.kind === 'X' ? m.after : label);
      if (!mm) continue;
      const idx = Number(mm[1]);
      // an exception record belongs to the sequence after the last dump
      const seqIdx = rec?.kind === 'X' && !/ (mem|stack)$/.test(m.after) ? idx + 1 : idx;
      if (seen.has(seqIdx) || seen.size >= 6) continue;
      seen.add(seqIdx);
      const seq = rom.sequences.find((s) => s.index === seqIdx);
      if (seq) {
        texts.push(seq.text);
        failing.push(seq);
      }
    }
    if (texts.length) lines.unshift(`seed ${seed}: mismatching sequences (ROM source ${src}):\n${texts.join('\n')}`);
    reports.push(lines.join('\n'));
  }
  return { seed, ok, report: reports.join('\n'), outcomes, failing };
}

function parseSeeds(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad --seeds: ${s}`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  let seeds = [1, 2, 3, 4];
  let count = 300;
  let qemuOnly = false;
  let reduce = false;
  let accel: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--reduce') reduce = true;
    else if (a === '--seeds') seeds = parseSeeds(argv[++i] ?? '');
    else if (a === '--count') count = Number(argv[++i]);
    else if (a === '--qemu-only') qemuOnly = true;
    else if (a === '--accel') accel = argv[++i];
    else {
      console.log('usage: node dist/test/cpu/random.js [--seeds 1-100] [--count 300] [--qemu-only] [--accel tsvm,tier=T,threshold=N] [--reduce]\n  --reduce  shrink the first mismatching sequence of each failing seed and print it as a test snippet');
      return a === '-h' || a === '--help' ? 0 : 2;
    }
  }
  let failed = 0;
  for (const seed of seeds) {
    const r = await runSeed(seed, count, { qemuOnly, accel });
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} seed ${seed} (${count} sequences)`);
    if (!r.ok) {
      failed++;
      console.log(r.report);
      const first = r.failing[0];
      if (reduce && first) {
        const red = await reduceSequence(first.spec);
        console.log(`reduced seed ${seed} sequence ${first.index}:\n${red.text}\n-- snippet for a test file --\n${red.snippet}\n-- its diff --\n${red.report}`);
      }
    }
  }
  console.log(`${seeds.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && !process.env['NODE_TEST_CONTEXT']) {
  main(process.argv.slice(2)).then((c) => process.exit(c));
}

