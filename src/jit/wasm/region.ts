/**
 * The region compiler of the wasm tier: the code reachable from a set of entry
 * points on one guest page (32-bit code, flat segments) becomes one
 * WebAssembly function
 *
 *   run(pc, left) -> left
 *
 * (pc: a label index, or ~offset in the page to enter at an offset) over the machine's state memory (bus/layout.ts). Layout of the function:
 *
 *   prologue: guest registers and the flag state into locals
 *   block $exit
 *     loop $top
 *       block ... block            ; one per label
 *         block br_table bk end    ; back to loop head `bk` (if the region has loop heads)
 *         br_table pc              ; a way in: label `pc`
 *       end  <code of label 0>     ; falls through into label 1's code
 *       end  <code of label 1> ...
 *     end
 *   end
 *   epilogue: locals back to memory, EIP to the exchange area, return `left`
 *
 * A branch to a later label is a `br` to the block ending before it; back to
 * a loop head it sets `bk`, to another label (computed targets) `pc`, and
 * branches to $top (docs/cpu-jit.md, "Regions", says why). Anything
 * else (a branch off the page, RET to an unknown address, an instruction this
 * compiler does not take, a TLB miss or a page-crossing access, a store to a
 * page holding compiled code, `left` reaching 0) stores the EIP of the
 * instruction to run next and branches to $exit: the interpreter goes on from
 * there. Every exit happens before the instruction changes any state, so the
 * interpreter redoes it completely (and raises its faults itself).
 */
import { Layout } from '../../bus/layout.js';
import { F, Seg } from '../../cpu/consts.js';
import { PAUSE_CYCLES, REP_CHUNK } from '../../cpu/cpu.js';
import { FuncBuilder, I32, I64, ModuleBuilder, Op } from './encoder.js';
import { fallThroughLength } from './fallthrough.js';
import { WASM_NAMES } from './stats.js';

/** Int32 slots of the exchange area (Layout.JIT). */
export const enum Xchg {
  EIP = 0,
  FLAGS = 1,
  /**
   * The lazy state's constant part, packed: op | top << 8 | mask << 16 (one
   * store per flag-writing instruction instead of three; 6 and 7 are free).
   */
  LKIND = 2,
  LA = 3,
  LB = 4,
  LRES = 5,
  RMASK = 8,
  WMASK = 9,
  /** DS and SS bases (read-only for the region: it runs no segment loads). */
  DSB = 10,
  SSB = 11,
  /** ES, FS, GS bases, for segment-override prefixes (the region's `segs` says which it uses). */
  ESB = 12,
  FSB = 13,
  GSB = 14,
  /** Written by the chain dispatcher (wasm/chain.ts): the host page of the last region that ran, and how many calls ran something. */
  LAST_HP = 15,
  CHAINED = 16,
  /** CPL (CLI/STI/POPF check it against IOPL; constant through a chain: no region changes CS). */
  CPL = 17,
  /** 1 when an interrupt request is pending (cpu.intrLine): an STI or POPF that sets IF then ends the call. */
  INTR = 18,
  /**
   * Written by a region's STI that set IF: `left` right after the STI. JS
   * finds it equal to the `left` the call returned when the region left
   * right after the STI, i.e. inside its interrupt shadow, and sets
   * cpu.inhibitIrq; -1 otherwise (JS puts it back after reading it).
   */
  SHADOW = 19,
  /** The TSC plus `left` at the call (cpu.readTsc() + cpu.left), low and high dwords: RDTSC subtracts the `left` at the instruction. */
  TSC_LO = 20,
  TSC_HI = 21,
  /** 1 when RDTSC may run (not CR4.TSD at CPL > 0). */
  TSC_OK = 22,
  /**
   * An access's inline TLB lookup failed (exited before the instruction): its
   * linear address, and in MISS 1 for a read, 2 for a write (JS puts it back
   * to 0). JS fills an empty entry (the page walk) and goes on in the region
   * (WasmCache.runRegion).
   */
  MISS_LIN = 23,
  MISS = 24,
  /**
   * The segment selectors, two per slot, by Seg: ES | CS << 16, then SS |
   * DS << 16, then FS | GS << 16 (PUSH Sreg and MOV r/m,Sreg read them; a
   * region's MOV Sreg goes through the tier's import, which writes them and
   * the bases here too).
   */
  SEL = 25,
}

/** The imported FPU's first argument: the opcode (D8-DF, 0x1AE), the operand's segment << FPU_SEG_SHIFT, FPU_O16. */
export const FPU_SEG_SHIFT = 12;
export const FPU_O16 = 1 << 16;
/**
 * The imported FPU's answer (src/jit/fpu-call.ts), in its low two bits: go
 * on, leave before the instruction (the interpreter runs it), leave after
 * it. FPU_OUT: FCOMI/FUCOMI set EFLAGS' ZF/PF/CF, or FNSTSW AX stored AX, to
 * the answer's high 16 bits.
 */
export const FPU_ON = 0;
export const FPU_BEFORE = 1;
export const FPU_AFTER = 2;
export const FPU_OUT = 4;

/** Most instructions in one region (a page holds at most 4096). */
const MAX_INSNS = 1500;
/** Ways in above which the loop top finds an entry through a table of 64-byte chunks instead of a binary search. */
const CHUNKED_SEARCH = 12;
const CHUNK_SHIFT = 6;
/** Compiled instructions a run reaches before a label only branched to from inside it starts a run of its own (compileRegion's `counted`). */
const RUN_MERGE_LIMIT = 64;

// locals of run()
const PC = 0,
  LEFT = 1,
  R0 = 2, // R0..R7: EAX..EDI
  FL = 10,
  /** 11, 15, 16: unused (the lazy op, width and mask are packed in Xchg.LKIND). */
  LA = 12,
  LB = 13,
  LRES = 14,
  /** 17, 18: unused (RMASK, WMASK are read from the exchange area: see RMASK below). */
  EIP = 19,
  TA = 20,
  TE = 21,
  TH = 22,
  X = 23,
  Y = 24,
  R = 25,
  V = 26,
  /** 27-31: unused (segment bases are read from the exchange area: see RMASK below). */
  A1 = 32,
  A2 = 33,
  A3 = 34,
  B1 = 35,
  B2 = 36,
  C1 = 37,
  P64 = 38,
  Q64 = 39,
  /** 1 + the index of a loop head in `heads` to go to at the loop top, or 0: go by PC. */
  BK = 40,
  /** At a TLB miss, for the region's one miss tail: the instructions to give back << 14 | the instruction's page offset << 2 | 1 (read) or 2 (write). */
  MX = 41;
const N_I32_LOCALS = 36; // 2..37
/**
 * What a region call never changes (the TLB masks, the segment bases) is read
 * from the exchange area at each use, not kept in locals: a local live across
 * the whole region is one more value for TurboFan's register allocator, which
 * then spills and shuffles the guest registers between stack slots at every
 * label; a load from a fixed address costs what a spill reload does.
 */
const RMASK = Layout.JIT + Xchg.RMASK * 4,
  WMASK = Layout.JIT + Xchg.WMASK * 4,
  DSB = Layout.JIT + Xchg.DSB * 4,
  SSB = Layout.JIT + Xchg.SSB * 4,
  ESB = Layout.JIT + Xchg.ESB * 4,
  FSB = Layout.JIT + Xchg.FSB * 4,
  GSB = Layout.JIT + Xchg.GSB * 4;
/** The exchange-area address of each segment's base, by Seg (ES CS SS DS FS GS); CS is never used. */
const SEG_BASE_AT = [ESB, -1, SSB, DSB, FSB, GSB];
/** Segment-override prefixes the regions take (CS is not one: reads through CS need its type checked). */
const SEG_PREFIX: Record<number, number> = { 0x26: 0, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5 };
/** The region's lazy flag state, for pushFlag. */
const LKIND_AT = Layout.JIT + Xchg.LKIND * 4;
const REGION_LAZY: LazyState = {
  fl: (f) => f.localGet(FL),
  lop: (f) => f.inv(LKIND_AT).i32Const(0xff).op(Op.i32_and),
  a: (f) => f.localGet(LA),
  b: (f) => f.localGet(LB),
  r: (f) => f.localGet(LRES),
  top: (f) => f.inv(LKIND_AT).i32Const(8).op(Op.i32_shr_u).i32Const(0xff).op(Op.i32_and),
  mask: (f) => f.inv(LKIND_AT).i32Const(16).op(Op.i32_shr_u),
};


/**
 * What the code knows at compile time about the flag state: the kind of the
 * last flag-writing instruction of the run (its width is Emitter.fkTop), so
 * a Jcc/SETcc/CMOVcc/ADC/INC after it reads its operands directly instead
 * of computing them from the lazy state. Every kind leaves LA/LB (zero-extended to the
 * width) and LRES (not masked) as lazy() set them.
 */
const enum Fk {
  UNKNOWN = 0,
  /** SUB, CMP, NEG, CMPS, SCAS, CMPXCHG: LRES = LA - LB. */
  SUB = 1,
  /** AND, OR, XOR, TEST, BSF/BSR-free logic: CF = OF = 0. */
  LOGIC = 2,
  /** ADD, XADD: LRES = LA + LB. */
  ADD = 3,
  /** INC (LRES = LA + 1; CF in FL). */
  INC = 4,
  /** DEC (LRES = LA - 1; CF in FL). */
  DEC = 5,
}

/** A decoded instruction of the region. */
interface Insn {
  /** Offset in the page. */
  off: number;
  len: number;
  /** Opcode (0x100 | second byte after 0F), or -1: not compiled (exit to the interpreter here). */
  key: number;
  /** Host offset of the byte after the opcode. */
  at: number;
  /** Near branch target EIP (Jcc/JMP/CALL), if any. */
  target: number;
  /** Control does not go on to the next instruction. */
  ends: boolean;
  /** Segment-override prefix (Seg), or -1. */
  seg: number;
  /** Operand-size prefix (16-bit operands). */
  o16: boolean;
  /** REP/REPNE prefix byte (string instructions), or 0. */
  rep: number;
}

/**
 * A bit of a region's `segs` beside the six segments': the region was
 * compiled for ES, SS and DS bases of 0 (flat segments, as Linux has them;
 * FS and GS, per-CPU data and TLS, keep their bases) and is entered only
 * while they are.
 */
export const ZERO_BASES = 1 << 6;

/** Bytes of the next page that compileRegion reads for instructions crossing into it (an instruction has at most 15). */
export const CROSS_BYTES = 16;

/** The page after a region's page as the compiler sees it: its linear address and its first CROSS_BYTES bytes. */
export interface NextPage {
  lin: number;
  bytes: Uint8Array;
}

export interface CompiledRegion {
  bytes: Uint8Array;
  /** Per page offset: label index + 1 where the region can be entered, EXIT_ENTRY at an instruction it decoded but exits at, 0 elsewhere. */
  entries: Entries;
  /** Per label index: the instructions of its straight run (paid for at its start; `left` below it exits there), 0 for a label inside another's run. */
  runs: Uint16Array;
  /** Instructions compiled (not counting the ones that only exit). */
  instructions: number;
  /**
   * Bit per Seg of the segments whose checks the region needs at entry: the
   * segment-override prefixes and ES (string instructions) as DS is checked,
   * CS when it leaves the page through a computed or off-page target (CS's
   * limit must then be 4 GiB, as the interpreter checks the target against it).
   */
  segs: number;
}

/** Bytes after the opcode of a 32-bit ModRM operand starting at host offset o (ModRM, SIB, displacement). */
function modrmLen(mem: Uint8Array, o: number): number {
  const m = mem[o];
  const mod = m >> 6;
  const rm = m & 7;
  if (mod === 3) return 1;
  let len = 1;
  if (rm === 4) {
    len++;
    if (mod === 0 && (mem[o + 1] & 7) === 5) len += 4;
  } else if (mod === 0 && rm === 5) len += 4;
  if (mod === 1) len += 1;
  else if (mod === 2) len += 4;
  return len;
}

function imm32(mem: Uint8Array, o: number): number {
  return mem[o] | (mem[o + 1] << 8) | (mem[o + 2] << 16) | (mem[o + 3] << 24);
}
function imm8s(mem: Uint8Array, o: number): number {
  return (mem[o] << 24) >> 24;
}
/** Immediate of `size` bytes (zero-extended below 4). */
function immN(mem: Uint8Array, o: number, size: number): number {
  return size === 4 ? imm32(mem, o) : size === 2 ? mem[o] | (mem[o + 1] << 8) : mem[o];
}

/** LOCK is accepted where the interpreter accepts it (cpu.ts _checkLock): read-modify-write forms with a memory destination. */
function lockOk(key: number, m: number): boolean {
  if (m >= 0xc0) return false;
  const reg = (m >> 3) & 7;
  if (key < 0x38 && (key & 7) < 2) return true;
  if (key >= 0x80 && key <= 0x83) return reg !== 7;
  if (key === 0x86 || key === 0x87) return true;
  if (key === 0xf6 || key === 0xf7) return reg === 2 || reg === 3;
  if (key === 0xfe || key === 0xff) return reg < 2;
  if (key === 0x1ab || key === 0x1b3 || key === 0x1bb || key === 0x1b0 || key === 0x1b1 || key === 0x1c0 || key === 0x1c1) return true;
  if (key === 0x1ba) return reg >= 5;
  if (key === 0x1c7) return reg === 1;
  return false;
}

/** `entries` value of an offset whose instruction the region decoded but does not take (it exits there). */
export const EXIT_ENTRY = -1;

/**
 * A region's entries by page offset, kept compact: the offsets that have one
 * (labels and exits, a few dozen to a few hundred per page), sorted, each
 * packed with its value as `offset << 16 | value`. A dense table of 4096
 * entries cost 8 KiB of malloc'd memory per region (11 MiB over the boot's
 * regions); these are looked up only on calls from JS and their misses.
 */
export class Entries {
  private constructor(private readonly packed: Uint32Array) {}

  /** From a dense table (page offset -> value, 0 for none). */
  static from(dense: Int16Array): Entries {
    let n = 0;
    for (let o = 0; o < dense.length; o++) if (dense[o] !== 0) n++;
    const packed = new Uint32Array(n);
    n = 0;
    for (let o = 0; o < dense.length; o++) if (dense[o] !== 0) packed[n++] = ((o << 16) | (dense[o] & 0xffff)) >>> 0;
    return new Entries(packed);
  }

  /** The value at page offset `off` (0..4095): label index + 1, EXIT_ENTRY, or 0. */
  at(off: number): number {
    const p = this.packed;
    let lo = 0;
    let hi = p.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = p[mid] >>> 16;
      if (k === off) return (p[mid] << 16) >> 16;
      if (k < off) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /** The first page offset after `off` with a value (a label or an exit), or 4096. */
  nextAfter(off: number): number {
    const p = this.packed;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid] >>> 16 <= off) lo = mid + 1;
      else hi = mid;
    }
    return lo < p.length ? p[lo] >>> 16 : 4096;
  }

  /** Offsets with a value. */
  get size(): number {
    return this.packed.length;
  }

  equals(other: Entries): boolean {
    const a = this.packed;
    const b = other.packed;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
}

/** MOVS STOS LODS CMPS SCAS (byte and word/dword forms). */
function isString(key: number): boolean {
  return key >= 0xa4 && key <= 0xaf && key !== 0xa8 && key !== 0xa9;
}

/**
 * Decode the instruction at page offset `off`. Returns the instruction with
 * key -1 when this compiler does not take it (prefixes, system instructions,
 * forms not written below, or one that crosses the page end unless `cross`:
 * the next page's first bytes follow the page in `mem`).
 */
function decode(mem: Uint8Array, page: number, off: number, eipPage: number, cross = false): Insn {
  const ins = decodeTaken(mem, page, off, eipPage, cross);
  if (ins.key < 0) {
    // not taken: still, decoding goes on behind it when it falls through
    const len = fallThroughLength(mem, page + off, page + 4096);
    if (len > 0 && len <= 15 && off + len <= 4096) {
      ins.len = len;
      ins.ends = false;
    }
  }
  return ins;
}

function decodeTaken(mem: Uint8Array, page: number, off: number, eipPage: number, cross: boolean): Insn {
  const stop: Insn = { off, len: 0, key: -1, at: 0, target: 0, ends: true, seg: -1, o16: false, rep: 0 };
  let o = page + off;
  const end = page + 4096;
  let seg = -1;
  let o16 = false;
  let lock = false;
  let rep = 0;
  for (let n = 0; n < 4; n++) {
    const b = mem[o];
    const sp = SEG_PREFIX[b];
    if (sp !== undefined) {
      if (seg >= 0) return stop;
      seg = sp;
    } else if (b === 0x66) {
      if (o16) return stop;
      o16 = true;
    } else if (b === 0xf0) {
      if (lock) return stop;
      lock = true;
    } else if (b === 0xf2 || b === 0xf3) {
      if (rep !== 0) return stop;
      rep = b;
    } else break;
    o++;
  }
  // every byte read below belongs to the instruction (ModRM aside, read ahead
  // only for forms that have one), and one that ends past the page end is
  // refused at the end: code in the page's last bytes is taken like any other
  if (o >= end) return stop;
  let key = mem[o++];
  if (key === 0x0f) key = 0x100 | mem[o++];
  const at = o;
  let len = 0;
  let target = 0;
  let ends = false;
  const m = mem[o];
  const reg = (m >> 3) & 7;
  const mod = m >> 6;
  const v = o16 ? 2 : 4; // size of a word/dword operand and immediate
  const next = (): number => (eipPage + (at - page) + len) | 0;
  if (lock && !lockOk(key, m)) return stop;
  // REP only on the string instructions, F3 90 (PAUSE), REP RET and REP
  // BSF/BSR (the CPU has no BMI1: F3 0F BC is TZCNT only where CPUID says so,
  // and compilers emit it for BSF on purpose; the prefix is ignored, as the
  // interpreter does); the other F3 0F forms are the interpreter's
  if (rep !== 0 && !(isString(key) || key === 0xc3 || (key === 0x90 && rep === 0xf3) || key === 0x1bc || key === 0x1bd)) return stop;
  // 16-bit near branches and stack forms truncate EIP / move ESP by 2: the interpreter's
  if (o16 && (isBranch(key) || key === 0x9c || key === 0xc3 || key === 0xc2 || key === 0xc9 || (key >= 0x50 && key <= 0x5f) || key === 0x68 || key === 0x6a || key === 0x8f || key === 0x1a4 || key === 0x1a5 || key === 0x1ac || key === 0x1ad)) return stop;
  if (o16 && key === 0xff && reg >= 2) return stop;
  // PUSH Sreg and MOV r/m,Sreg: 32-bit operand size only (a selector above GS is #UD: the interpreter's)
  if (o16 && (key === 0x06 || key === 0x0e || key === 0x16 || key === 0x1e || key === 0x1a0 || key === 0x1a8 || key === 0x8c)) return stop;
  if (key < 0x40 && (key & 7) < 6) {
    // ALU: r/m8,r8 r/m,r r8,r/m8 r,r/m AL,imm8 eAX,imm
    const lo = key & 7;
    len = lo < 4 ? modrmLen(mem, o) : lo === 4 ? 1 : v;
  } else if (key === 0x80 || key === 0x83) len = modrmLen(mem, o) + 1;
  else if (key === 0x81) len = modrmLen(mem, o) + v;
  else if (key >= 0x84 && key <= 0x8b) len = modrmLen(mem, o);
  else if (key === 0x8c) {
    if (reg > 5) return stop;
    len = modrmLen(mem, o);
  } else if (key === 0x06 || key === 0x0e || key === 0x16 || key === 0x1e || key === 0x1a0 || key === 0x1a8) len = 0;
  else if (key === 0x8d) {
    if (mod === 3) return stop;
    len = modrmLen(mem, o);
  } else if (key === 0x8f) {
    // POP r/m: ESP moves before the address is computed; not with ESP as a base
    if (reg !== 0 || (mod !== 3 && (m & 7) === 4 && (mem[o + 1] & 7) === 4)) return stop;
    len = modrmLen(mem, o);
  } else if (key === 0xa8) len = 1;
  else if (key === 0xa9) len = v;
  else if (key >= 0xa0 && key <= 0xa3) len = 4;
  else if (isString(key)) len = 0;
  else if (key >= 0x40 && key <= 0x5f) len = 0;
  else if (key >= 0x90 && key <= 0x99) len = 0;
  else if (key === 0x9c || key === 0x9e || key === 0x9f || key === 0xf5 || key === 0xf8 || key === 0xf9 || key === 0xfc || key === 0xfd || key === 0xc9) len = 0;
  else if (key === 0xfa || key === 0xfb || key === 0x9d || key === 0x131) {
    // CLI STI POPF RDTSC (32-bit forms only); an STI or POPF may end the call
    // right after it with EIP on the next page, where the chain dispatcher
    // would go on: those at a page's end stay the interpreter's
    if (o16 || ((key === 0xfb || key === 0x9d) && o === end)) return stop;
    len = 0;
  }
  else if (key === 0x8e && (reg === Seg.ES || reg === Seg.DS || reg === Seg.FS || reg === Seg.GS)) {
    // MOV ES/DS/FS/GS, r/m16: through the tier's imported segment load
    // (Emitter.segLoad); MOV SS (its interrupt shadow) stays the interpreter's
    len = modrmLen(mem, o);
  }
  else if (key === 0x122 && reg === 3) len = 1; // MOV CR3, r32: through the tier's import (Emitter.cr3Load)
  else if ((key >= 0xd8 && key <= 0xdf) || key === 0x1ae) {
    // x87 and FXSAVE/FXRSTOR: through the tier's imported FPU (Emitter.fpu);
    // not the forms that read or write EFLAGS or AX, nor a CS override
    if (seg === Seg.CS || !fpuTaken(key, m)) return stop;
    len = modrmLen(mem, o);
  }
  else if (key >= 0xb0 && key <= 0xb7) len = 1;
  else if (key >= 0xb8 && key <= 0xbf) len = v;
  else if (key === 0xc6 && reg === 0) len = modrmLen(mem, o) + 1;
  else if (key === 0xc7 && reg === 0) len = modrmLen(mem, o) + v;
  else if (key === 0x69) len = modrmLen(mem, o) + v;
  else if (key === 0x6b) len = modrmLen(mem, o) + 1;
  else if (key === 0x68) len = 4;
  else if (key === 0x6a) len = 1;
  else if ((key >= 0x140 && key <= 0x14f) || (key >= 0x190 && key <= 0x19f)) len = modrmLen(mem, o);
  else if (key === 0xf6 || key === 0xf7) len = modrmLen(mem, o) + (reg < 2 ? (key === 0xf6 ? 1 : v) : 0);
  else if (key === 0xfe && reg < 2) len = modrmLen(mem, o);
  else if (key === 0xff && (reg < 3 || reg === 4 || reg === 6)) {
    len = modrmLen(mem, o);
    ends = reg === 2 || reg === 4;
  } else if (key === 0x1af || key === 0x1b6 || key === 0x1b7 || key === 0x1be || key === 0x1bf) len = modrmLen(mem, o);
  else if (key === 0x1a3 || key === 0x1ab || key === 0x1b3 || key === 0x1bb || key === 0x1bc || key === 0x1bd) len = modrmLen(mem, o);
  else if (key === 0x1ba && reg >= 4) len = modrmLen(mem, o) + 1;
  else if (key === 0x1c0 || key === 0x1c1 || key === 0x1b0 || key === 0x1b1) len = modrmLen(mem, o);
  else if (key === 0x1c7) {
    // CMPXCHG8B m64 (a register operand or another /reg is #UD: the interpreter's)
    if (reg !== 1 || mod === 3 || o16) return stop;
    len = modrmLen(mem, o);
  } else if (key === 0x1a4 || key === 0x1ac) len = modrmLen(mem, o) + 1;
  else if (key === 0x1a5 || key === 0x1ad) len = modrmLen(mem, o);
  else if (key >= 0x1c8 && key <= 0x1cf) len = 0;
  else if (key === 0xc0 || key === 0xc1) len = modrmLen(mem, o) + 1;
  else if (key >= 0xd0 && key <= 0xd3) len = modrmLen(mem, o);
  else if (key >= 0x70 && key <= 0x7f) {
    len = 1;
    target = (next() + imm8s(mem, o)) | 0;
  } else if (key >= 0x180 && key <= 0x18f) {
    len = 4;
    target = (next() + imm32(mem, o)) | 0;
  } else if (key === 0xeb) {
    len = 1;
    target = (next() + imm8s(mem, o)) | 0;
    ends = true;
  } else if (key === 0xe9 || key === 0xe8) {
    len = 4;
    target = (next() + imm32(mem, o)) | 0;
    ends = key === 0xe9;
  } else if (key === 0xc3) ends = true;
  else if (key === 0xc2) {
    len = 2;
    ends = true;
  } else return stop;
  const total = at - page - off + len;
  // past the page end only with the next page's bytes at hand (compileRegion's `next`); the
  // opcode itself is on this page (prefixes and opcode are read up to `end` above)
  if (off + total > (cross ? 4096 + 15 : 4096) || total > 15) return stop;
  return { off, len: total, key, at, target, ends, seg, o16, rep };
}

/** Whether the region compiler takes the instruction at page offset `off` (for wasm/stats.ts). */
export function takes(mem: Uint8Array, page: number, off: number, eipPage: number): boolean {
  return decode(mem, page, off, eipPage).key >= 0;
}

/**
 * Compile the code reachable on page `page` (host offset) from the given
 * entry offsets. `eipPage` is the EIP of the page's first byte; `memPages` the
 * size of the state memory in 64 KiB pages.
 */
export function compileRegion(
  mem: Uint8Array,
  page: number,
  eipPage: number,
  entryOffsets: readonly number[],
  memPages: number,
  sweepAll = false,
  next: NextPage | null = null,
  zeroBases = false,
): CompiledRegion | null {
  // An instruction that crosses into the next page is taken when that page's
  // first bytes are given: the region is compiled from a copy of this page
  // followed by them, and checks at run time, before the instruction, that
  // the next page is still mapped for reads and still holds those bytes
  // (Emitter.crossCheck); otherwise it exits there and the interpreter runs it.
  if (next !== null) {
    const copy = new Uint8Array(4096 + CROSS_BYTES);
    copy.set(mem.subarray(page, page + 4096));
    copy.set(next.bytes.subarray(0, CROSS_BYTES), 4096);
    mem = copy;
    page = 0;
  }
  const cross = next !== null;
  // ---- pass 1: decode everything reachable on the page ----
  const insns = new Map<number, Insn>();
  const labels = new Set<number>(entryOffsets);
  // labels that are ways in from outside the region (the rest are only
  // targets of branches on the page, see `ways` below)
  const ways = new Set<number>(entryOffsets);
  const work = [...entryOffsets];
  const inPage = (eip: number): number => {
    const d = (eip - eipPage) | 0;
    return d >= 0 && d < 4096 ? d : -1;
  };
  // Code behind a RET or JMP is usually the next function (or a jump-table
  // target), entered from other pages. With `sweepAll` (the caller asks for
  // it once a page has been compiled again for new entries several times)
  // that code is decoded too, after what the entries reach, with its start
  // (past alignment padding) a label, so a page with many entries stops
  // recompiling one entry at a time. Not sooner: regions twice the size
  // run slower and cost twice the memory (docs/cpu-jit.md, "Regions: what
  // is decoded").
  const behind: number[] = [];
  const sweep = (off: number): void => {
    if (!sweepAll) return;
    while (off < 4096 && (mem[page + off] === 0xcc || mem[page + off] === 0)) off++; // INT3 or zero padding
    if (off < 4096 && !insns.has(off)) {
      labels.add(off);
      ways.add(off);
      behind.push(off);
    }
  };
  for (;;) {
    if (work.length === 0) {
      if (behind.length === 0) break;
      work.push(behind.shift()!);
    }
    if (insns.size >= MAX_INSNS) break;
    const off = work.pop()!;
    if (insns.has(off)) continue;
    // zeros (ADD [EAX],AL over and over) are not code: the page's unused
    // end, or data; decoding on into them made regions of 1500 such
    // instructions. The interpreter runs them, if ever.
    if (off + 4 <= 4096 && (mem[page + off] | mem[page + off + 1] | mem[page + off + 2] | mem[page + off + 3]) === 0) {
      insns.set(off, { off, len: 0, key: -1, at: 0, target: 0, ends: true, seg: -1, o16: false, rep: 0 });
      continue;
    }
    const ins = decode(mem, page, off, eipPage, cross);
    insns.set(off, ins);
    if (ins.key < 0) {
      // the interpreter runs it; the next instruction is a label
      if (!ins.ends) work.push(off + ins.len);
      continue;
    }
    if (ins.ends) sweep(off + ins.len);
    else if (isPadding(mem, ins)) {
      labels.add(off + ins.len);
      ways.add(off + ins.len);
    }
    if ((ins.key === 0x8e || ins.key === 0x122) && ins.off + ins.len < 4096) {
      // a segment load that changes what regions assume (Linux's MOV FS of
      // a null selector on the way back to user mode), or a CR3 load that
      // flushed the region's own code page, leaves right after it: the
      // interpreter would otherwise step from there to the next way in
      labels.add(ins.off + ins.len);
      ways.add(ins.off + ins.len);
    }
    if (ins.rep !== 0 && isString(ins.key)) {
      labels.add(off);
      ways.add(off);
    }
    if (isBranch(ins.key)) {
      const t = inPage(ins.target);
      if (t >= 0) {
        labels.add(t);
        work.push(t);
      }
    }
    if (isCall(mem, ins)) {
      // the return address is where RET comes back to: a label
      const r = ins.off + ins.len;
      if (r < 4096) {
        labels.add(r);
        ways.add(r);
        work.push(r);
      }
    }
    if (!ins.ends && ins.off + ins.len < 4096) work.push(ins.off + ins.len);
  }
  // instructions reached only by falling through from outside what was decoded
  // (the MAX_INSNS cut) are not there: a fall-through into one exits
  const order = [...insns.keys()].sort((a, b) => a - b);
  // every instruction whose predecessor in address order does not fall into it is a label
  for (let i = 0; i < order.length; i++) {
    const off = order[i];
    if (i === 0) {
      labels.add(off);
      ways.add(off);
      continue;
    }
    const p = insns.get(order[i - 1])!;
    if (p.key < 0 || p.ends || p.off + p.len !== off) {
      labels.add(off);
      ways.add(off);
    }
  }
  const labelList = order.filter((o) => labels.has(o));
  const labelIndex = new Map<number, number>();
  labelList.forEach((o, i) => labelIndex.set(o, i));
  const nLabels = labelList.length;
  if (nLabels === 0) return null;
  // ---- pass 2: emit ----
  const mb = new ModuleBuilder();
  mb.importMemory('env', 'mem', memPages, memPages);
  let usesFpu = false;
  for (const ins of insns.values()) if ((ins.key >= 0xd8 && ins.key <= 0xdf) || ins.key === 0x1ae) usesFpu = true;
  const fpuFunc = usesFpu ? mb.importFunc('env', 'fpu', [I32, I32, I32, I32], [I32]) : -1;
  let usesSeg = false;
  let usesCr3 = false;
  for (const ins of insns.values()) {
    if (ins.key === 0x8e) usesSeg = true;
    if (ins.key === 0x122) usesCr3 = true;
  }
  const segFunc = usesSeg ? mb.importFunc('env', 'seg', [I32, I32], [I32]) : -1;
  const cr3Func = usesCr3 ? mb.importFunc('env', 'cr3', [I32, I32], [I32]) : -1;
  const f = mb.func([I32, I32], [I32]);
  if (WASM_NAMES) f.name = `p${(eipPage >>> 0).toString(16)}`;
  // compiled for ES, SS and DS bases of 0 (ZERO_BASES): no load and no add for them
  if (zeroBases) for (const a of [ESB, SSB, DSB]) f.assume(a, 0);
  for (let i = 0; i < N_I32_LOCALS; i++) f.local(I32);
  f.local(I64);
  f.local(I64);
  f.local(I32); // BK
  f.local(I32); // MX
  mb.export('run', f);
  // prologue
  for (let r = 0; r < 8; r++) f.i32Const(0).i32Load(Layout.REGS + r * 4).localSet(R0 + r);
  const xo = (slot: number): number => Layout.JIT + slot * 4;
  const xl: [number, number][] = [
    [Xchg.FLAGS, FL],
    [Xchg.LA, LA],
    [Xchg.LB, LB],
    [Xchg.LRES, LRES],
  ];
  // the flag state stays in the exchange area (docs/cpu-jit.md, "Locals and TurboFan's register allocator")
  for (const [slot, l] of xl) f.keepInMemory(l, xo(slot));
  f.block(); // $exit
  const entryOffs = labelList.filter((o) => ways.has(o) && insns.get(o)!.key >= 0);
  // loop heads: labels a branch goes back to (a later or the same label's
  // code jumps there); they get a br_table of their own at the loop top, so
  // a loop's back edge does not search all the labels (see Emitter.jumpLabel)
  const heads = new Map<number, number>();
  {
    let li = -1;
    const back = (eip: number): void => {
      const j = labelIndex.get(inPage(eip));
      if (j !== undefined && j <= li && !heads.has(j)) heads.set(j, heads.size + 1);
    };
    for (let i = 0; i < order.length; i++) {
      const ins = insns.get(order[i])!;
      if (labels.has(ins.off)) li++;
      if (ins.key < 0) continue;
      if (isBranch(ins.key)) back(ins.target);
      if (isString(ins.key) && ins.rep !== 0) back((eipPage + ins.off) | 0);
      if (!ins.ends && order[i + 1] !== ins.off + ins.len) back((eipPage + ins.off + ins.len) | 0);
    }
  }
  // a loop head is a way in too: the interpreter stepping on after an exit in
  // a loop body comes back to the region there at the latest (and its merge
  // state is the loop top's all the same, through the loop heads' br_table)
  for (const j of heads.keys()) ways.add(labelList[j]);
  // $miss: the TLB misses' shared tail (Emitter.lookup), between the loop and $exit
  f.block();
  f.loop();
  for (let i = 0; i < nLabels; i++) f.block();
  if (heads.size > 0) {
    const table = [0];
    for (const j of heads.keys()) table.push(j + 1);
    f.block();
    f.localGet(BK).brTable(table, 0);
    f.end();
  }
  // entry by page offset, from the chain dispatcher (wasm/chain.ts) or a
  // RET or indirect jump in the region (Emitter.dispatch): pc = ~offset
  // finds the label by a binary search over the ways in; an offset that is
  // not one leaves with EIP there (`left` as it is). One search per region,
  // here, instead of one inline at every RET and indirect jump (a RET's
  // compare per return address in the region was an eighth of all the
  // regions' bytes)
  f.localGet(PC).i32Const(0).op(Op.i32_lt_s).if();
  f.localGet(PC).i32Const(-1).op(Op.i32_xor).localSet(B1);
  // depth: the search's ifs around; a match goes straight to its label's
  // code (the end of its block: inside the match's if, the search's ifs and
  // the `pc < 0` if, label 0's block is innermost), not through the table
  const search = (lo: number, hi: number, depth: number): void => {
    if (hi - lo <= 4) {
      for (let i = lo; i < hi; i++) {
        f.localGet(B1).i32Const(entryOffs[i]).op(Op.i32_eq).if();
        f.br(depth + 2 + labelIndex.get(entryOffs[i])!);
        f.end();
      }
      return;
    }
    const mid = (lo + hi) >> 1;
    f.localGet(B1).i32Const(entryOffs[mid]).op(Op.i32_lt_u).if();
    search(lo, mid, depth + 1);
    f.else();
    search(mid, hi, depth + 1);
    f.end();
  };
  if (entryOffs.length <= CHUNKED_SEARCH) search(0, entryOffs.length, 0);
  else {
    // many ways in: a br_table on the offset's 64-byte chunk, then the few
    // ways in that chunk (the optimiser makes the table one indirect jump
    // instead of a tree of some 6 compares). Blocks: $nf (not found) around
    // one block per chunk that has ways in, the first chunk's innermost.
    const chunks: number[][] = [];
    const chunkOf = new Array<number>(4096 >> CHUNK_SHIFT).fill(-1);
    for (const o of entryOffs) {
      const c = o >> CHUNK_SHIFT;
      if (chunkOf[c] < 0) {
        chunkOf[c] = chunks.length;
        chunks.push([]);
      }
      chunks[chunkOf[c]].push(o);
    }
    const m = chunks.length;
    f.block(); // $nf
    for (let j = 0; j < m; j++) f.block();
    f.localGet(B1).i32Const(CHUNK_SHIFT).op(Op.i32_shr_u);
    f.brTable(
      chunkOf.map((j) => (j < 0 ? m : j)),
      m,
    );
    for (let j = 0; j < m; j++) {
      f.end(); // chunk j's block: its code follows
      const rest = m - 1 - j; // chunk blocks still open around
      for (const o of chunks[j]) {
        f.localGet(B1).i32Const(o).op(Op.i32_eq).if();
        // inside the if: the open chunk blocks, $nf, the `pc < 0` if, then label 0's block
        f.br(1 + rest + 2 + labelIndex.get(o)!);
        f.end();
      }
      if (rest > 0) f.br(rest); // to $nf
    }
    f.end(); // $nf
  }
  // not found: leave, past the labels' blocks, the loop and $miss, to $exit
  f.localGet(B1).i32Const(eipPage).op(Op.i32_add).localSet(EIP);
  f.br(nLabels + 3);
  f.end(); // if
  // Only the ways in are targets of this br_table. Liftoff spills every
  // cached local at the loop header, and a block whose first branch (in code
  // order) is this table gets that all-spilled state as its merge state: every
  // later branch or fall-through into it must spill again. A label that is
  // only a target of forward branches on the page keeps its registers.
  f.localGet(PC).brTable(
    labelList.map((o, i) => (ways.has(o) ? i : nLabels + 2)),
    nLabels + 2,
  );
  // Counting runs (Emitter.startLabel): a label that is not a way in and
  // whose every branch comes from the run it is in (forward, on the page)
  // does not start a run of its own. The run around it paid for it, and a
  // branch there gives back only the instructions it skips. Decompressors
  // and deflate code have a label every one to three instructions; each
  // counted one costs a compare, a branch and a subtract on the hot path.
  const sources = new Map<number, number[]>();
  {
    const from = (src: number, eip: number): void => {
      const t = inPage(eip);
      if (t < 0 || !labels.has(t)) return;
      const l = sources.get(t);
      if (l === undefined) sources.set(t, [src]);
      else l.push(src);
    };
    for (let i = 0; i < order.length; i++) {
      const ins = insns.get(order[i])!;
      if (ins.key < 0) continue;
      if (isBranch(ins.key)) from(ins.off, ins.target);
      if (isString(ins.key) && ins.rep !== 0) from(ins.off, (eipPage + ins.off) | 0);
      if (!ins.ends && order[i + 1] !== ins.off + ins.len) from(ins.off, (eipPage + ins.off + ins.len) | 0);
    }
  }
  // A run is paid for whole at its start, and one that `left` cannot cover
  // leaves the rest of the slice to the interpreter: runs stop growing at
  // RUN_MERGE_LIMIT instructions.
  const counted = new Array<boolean>(nLabels).fill(true);
  {
    let start = -1;
    let n = 0; // compiled instructions from the run's start to the label
    let j = 0;
    labelList.forEach((o, i) => {
      for (; j < order.length && order[j] < o; j++) if (insns.get(order[j])!.key >= 0) n++;
      if (!ways.has(o) && start >= 0 && n < RUN_MERGE_LIMIT && (sources.get(o) ?? []).every((s) => s >= start && s < o)) counted[i] = false;
      else {
        start = o;
        n = 0;
      }
    });
  }
  // compiled instructions from each counted label to the next (0 for the
  // others), and the others' place in their run (-1 for the counted)
  const runLen = new Array<number>(nLabels).fill(0);
  const runPos = new Array<number>(nLabels).fill(-1);
  {
    let l = -1;
    let run = -1;
    for (const off of order) {
      if (labels.has(off)) {
        l++;
        if (counted[l]) run = l;
        else runPos[l] = runLen[run];
      }
      if (insns.get(off)!.key >= 0) runLen[run]++;
    }
  }
  const e = new Emitter(f, mem, nLabels, labelIndex, eipPage, heads, labelList.map((o) => ways.has(o)), runPos, next?.lin ?? 0);
  e.fpuFunc = fpuFunc;
  e.segFunc = segFunc;
  e.cr3Func = cr3Func;
  let compiled = 0;
  let li = -1;
  const dead = flagsDeadAfter(mem, order, insns, labels);
  for (let i = 0; i < order.length; i++) {
    const ins = insns.get(order[i])!;
    if (labels.has(ins.off)) {
      li++;
      f.end();
      if (counted[li]) e.startLabel(li, runLen[li], (eipPage + ins.off) | 0);
      else e.continueRun(li);
    }
    if (ins.key >= 0) compiled++;
    e.flagsDead = dead[i];
    e.insn(ins);
    // falling through into an instruction that is not next in address order (or not decoded)
    if (!ins.ends && ins.key >= 0) {
      const nxt = ins.off + ins.len;
      const following = order[i + 1];
      if (following !== nxt) e.goTo((eipPage + nxt) | 0);
    }
  }
  f.end(); // loop
  f.br(1); // to $exit, past the miss tail (the code never falls out of the loop)
  f.end(); // $miss
  // a TLB miss (or no permission, a page crossing, a store to a code page) at a
  // memory access: EIP is the instruction's; record the address and the kind
  // for the tier's refill, and give back what the run did not execute
  // (MX: instructions to refund << 14 | page offset << 2 | kind, Emitter.lookup)
  f.localGet(MX).i32Const(2).op(Op.i32_shr_u).i32Const(0xfff).op(Op.i32_and).i32Const(eipPage).op(Op.i32_add).localSet(EIP);
  f.i32Const(0).localGet(TA).i32Store(Layout.JIT + Xchg.MISS_LIN * 4);
  f.i32Const(0).localGet(MX).i32Const(3).op(Op.i32_and).i32Store(Layout.JIT + Xchg.MISS * 4);
  f.localGet(LEFT).localGet(MX).i32Const(14).op(Op.i32_shr_u).op(Op.i32_add).localSet(LEFT);
  f.end(); // block $exit
  // epilogue
  for (let r = 0; r < 8; r++) f.i32Const(0).localGet(R0 + r).i32Store(Layout.REGS + r * 4);
  f.i32Const(0).localGet(EIP).i32Store(xo(Xchg.EIP));
  f.localGet(LEFT);
  // every label starts from nothing known (flags, count), so each one can be entered
  const entries = new Int16Array(4096);
  labelList.forEach((o, i) => {
    if (ways.has(o) && insns.get(o)!.key >= 0) entries[o] = i + 1;
  });
  // an instruction decoded but not taken (an exit: the interpreter's, or one
  // that crosses into the next page) is EXIT_ENTRY: entered there, the lower
  // tiers run it without counting a miss, so it is not recompiled for
  for (const ins of insns.values()) if (ins.key < 0) entries[ins.off] = EXIT_ENTRY;
  let segs = zeroBases ? ZERO_BASES : 0;
  for (const ins of insns.values()) {
    if (ins.key < 0) continue;
    if (ins.seg >= 0) segs |= 1 << ins.seg;
    if (isString(ins.key) && ins.key !== 0xac && ins.key !== 0xad) segs |= 1 << Seg.ES;
    // a target off the page is checked against CS's limit by the interpreter: regions leave so only with a 4 GiB CS
    const k = ins.key;
    if (k === 0xc3 || k === 0xc2 || (k === 0xff && ins.ends) || (isBranch(k) && inPage(ins.target) < 0)) segs |= 1 << Seg.CS;
    // its last bytes are fetched from the next page, which the entry checks do not cover
    if (ins.off + ins.len > 4096) segs |= 1 << Seg.CS;
  }
  return { bytes: mb.encode(), entries: Entries.from(entries), runs: Uint16Array.from(runLen), instructions: compiled, segs };
}

/** NOP, and LEA r,[r+0] (the assemblers' multi-byte NOPs): padding before a function or loop, whose end is a label. */
function isPadding(mem: Uint8Array, ins: Insn): boolean {
  if (ins.key === 0x90) return true;
  if (ins.key !== 0x8d) return false;
  const m = mem[ins.at];
  const reg = (m >> 3) & 7;
  const mod = m >> 6;
  let base = m & 7;
  let p = ins.at + 1;
  if (base === 4) {
    const sib = mem[p++];
    if (((sib >> 3) & 7) !== 4) return false;
    base = sib & 7;
  }
  if (base !== reg || (mod === 0 && base === 5)) return false;
  return mod === 0 || (mod === 1 ? mem[p] === 0 : imm32(mem, p) === 0);
}

/** What an instruction does to the flags, for flagsDeadAfter. */
const enum FlagUse {
  /** Writes all six arithmetic flags and reads none; registers only, cannot leave the region. */
  KILL,
  /** Reads no flag (INC and DEC keep CF, which only a later KILL sees); registers only, cannot leave. */
  PASS,
  /** Anything else: reads flags, touches memory or may leave (a TLB miss, an exit). */
  STOP,
}
function flagUse(mem: Uint8Array, ins: Insn): FlagUse {
  const key = ins.key;
  const m = mem[ins.at];
  const reg = (m >> 3) & 7;
  const regs = m >> 6 === 3;
  if (key < 0 || ins.off + ins.len > 4096) return FlagUse.STOP;
  if (key < 0x40 && (key & 7) < 6) {
    const k = key >> 3;
    if (k === 2 || k === 3) return FlagUse.STOP; // ADC, SBB read CF
    return (key & 7) >= 4 || regs ? FlagUse.KILL : FlagUse.STOP;
  }
  if (key === 0x80 || key === 0x81 || key === 0x83) return regs && reg !== 2 && reg !== 3 ? FlagUse.KILL : FlagUse.STOP;
  if (key === 0x84 || key === 0x85) return regs ? FlagUse.KILL : FlagUse.STOP;
  if (key === 0xa8 || key === 0xa9) return FlagUse.KILL;
  if (key === 0xf6 || key === 0xf7) return !regs ? FlagUse.STOP : reg === 0 || reg === 3 ? FlagUse.KILL : reg === 2 ? FlagUse.PASS : FlagUse.STOP;
  // XCHG, MOV, MOVZX, MOVSX: registers only
  if ((key >= 0x86 && key <= 0x8b) || key === 0x1b6 || key === 0x1b7 || key === 0x1be || key === 0x1bf) return regs ? FlagUse.PASS : FlagUse.STOP;
  // LEA, MOV imm, INC/DEC, NOP/XCHG eAX/CBW/CDQ (not PAUSE), BSWAP
  if (key === 0x8d || (key >= 0xb0 && key <= 0xbf) || (key >= 0x40 && key <= 0x4f)) return FlagUse.PASS;
  if ((key >= 0x90 && key <= 0x99 && ins.rep === 0) || (key >= 0x1c8 && key <= 0x1cf)) return FlagUse.PASS;
  // ROL ROR SHL SHR SAR (not RCL/RCR, which read CF)
  if ((key === 0xc0 || key === 0xc1 || (key >= 0xd0 && key <= 0xd3)) && regs && reg !== 2 && reg !== 3 && reg !== 6) return FlagUse.PASS;
  return FlagUse.STOP;
}
/**
 * Per instruction of `order`: the flags it leaves are dead, since what follows
 * it in the same run (no label between: a label's count check may leave)
 * writes them all before anything reads them or could leave the region. The
 * Emitter then computes none of them (docs/cpu-jit.md, "Dead flags").
 */
function flagsDeadAfter(mem: Uint8Array, order: readonly number[], insns: ReadonlyMap<number, Insn>, labels: ReadonlySet<number>): boolean[] {
  const dead = new Array<boolean>(order.length).fill(false);
  for (let i = order.length - 2; i >= 0; i--) {
    const ins = insns.get(order[i])!;
    const nxt = order[i + 1];
    if (ins.key < 0 || ins.ends || nxt !== ins.off + ins.len || labels.has(nxt)) continue;
    const u = flagUse(mem, insns.get(nxt)!);
    dead[i] = u === FlagUse.KILL || (u === FlagUse.PASS && dead[i + 1]);
  }
  return dead;
}

/**
 * The x87 escapes (D8-DF) and FXSAVE/FXRSTOR (0F AE /0 /1, memory) a region
 * hands to the imported FPU: all but FCMOVcc (DA/DB C0-DF, which read
 * EFLAGS), which stay the interpreter's. Encodings a P6 refuses are refused
 * by the import at run time (the interpreter then raises #UD).
 */
function fpuTaken(key: number, m: number): boolean {
  if (key === 0x1ae) return m >> 6 !== 3 && ((m >> 3) & 7) <= 1;
  return !((key === 0xda || key === 0xdb) && m >= 0xc0 && m < 0xe0);
}

/** FCOMI, FUCOMI and their popping forms (DB/DF E8-F7): the import's FPU_OUT is EFLAGS' ZF/PF/CF. */
function fpuSetsFlags(key: number, m: number): boolean {
  return (key === 0xdb || key === 0xdf) && m >= 0xe8 && m < 0xf8;
}

/** CALL rel32 or CALL r/m32: its return address is a label. */
function isCall(mem: Uint8Array, ins: Insn): boolean {
  return ins.key === 0xe8 || (ins.key === 0xff && ((mem[ins.at] >> 3) & 7) === 2);
}

function isBranch(key: number): boolean {
  return (key >= 0x70 && key <= 0x7f) || (key >= 0x180 && key <= 0x18f) || key === 0xeb || key === 0xe9 || key === 0xe8;
}

/** Where a region keeps the lazy flag state (cpu.ts's fields): each pushes its value. */
interface LazyState {
  fl: (f: FuncBuilder) => void;
  lop: (f: FuncBuilder) => void;
  a: (f: FuncBuilder) => void;
  b: (f: FuncBuilder) => void;
  r: (f: FuncBuilder) => void;
  top: (f: FuncBuilder) => void;
  mask: (f: FuncBuilder) => void;
}

/**
 * Each arithmetic flag's value from the lazy state, as cpu.ts computes it
 * when the flag is lazy (0 or 1 pushed); lop 1 is an addition, 2 a
 * subtraction, 0 a logic op. The regions' inline code (pushFlag, pushEflags).
 */
const LAZY_FLAG: Record<number, (f: FuncBuilder, s: LazyState) => void> = {
  [F.CF]: (f, s) => {
    // add: ((a & b) | ((a | b) & ~r)) >>> top & 1
    f.emit(s.a).emit(s.b).op(Op.i32_and).emit(s.a).emit(s.b).op(Op.i32_or);
    f.emit(s.r).i32Const(-1).op(Op.i32_xor).op(Op.i32_and).op(Op.i32_or);
    f.emit(s.top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    // sub: ((~a & b) | ((~a | b) & r)) >>> top & 1
    f.emit(s.a).i32Const(-1).op(Op.i32_xor).emit(s.b).op(Op.i32_and);
    f.emit(s.a).i32Const(-1).op(Op.i32_xor).emit(s.b).op(Op.i32_or).emit(s.r).op(Op.i32_and).op(Op.i32_or);
    f.emit(s.top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    byOp(f, s);
  },
  [F.OF]: (f, s) => {
    // add: ((a ^ r) & (b ^ r)) >>> top & 1
    f.emit(s.a).emit(s.r).op(Op.i32_xor).emit(s.b).emit(s.r).op(Op.i32_xor).op(Op.i32_and);
    f.emit(s.top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    // sub: ((a ^ b) & (a ^ r)) >>> top & 1
    f.emit(s.a).emit(s.b).op(Op.i32_xor).emit(s.a).emit(s.r).op(Op.i32_xor).op(Op.i32_and);
    f.emit(s.top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    byOp(f, s);
  },
  // (r << (31 - top)) == 0
  [F.ZF]: (f, s) => void f.emit(s.r).i32Const(31).emit(s.top).op(Op.i32_sub).op(Op.i32_shl).op(Op.i32_eqz),
  // (r >>> top) & 1
  [F.SF]: (f, s) => void f.emit(s.r).emit(s.top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and),
  // an even number of ones in the low byte
  [F.PF]: (f, s) => void f.emit(s.r).i32Const(0xff).op(Op.i32_and).op(Op.i32_popcnt).i32Const(1).op(Op.i32_and).i32Const(1).op(Op.i32_xor),
  // 0 after a logic op, else bit 4 of a ^ b ^ r
  [F.AF]: (f, s) => {
    f.emit(s.a).emit(s.b).op(Op.i32_xor).emit(s.r).op(Op.i32_xor).i32Const(4).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    f.i32Const(0).emit(s.lop).op(Op.select);
  },
};
/** With an addition's and a subtraction's value pushed: the one lop names, or 0 (a logic op). */
function byOp(f: FuncBuilder, s: LazyState): void {
  f.i32Const(0).emit(s.lop).i32Const(2).op(Op.i32_eq).op(Op.select);
  f.emit(s.lop).i32Const(1).op(Op.i32_eq).op(Op.select);
}
/** Push flag `bit`: its lazy value where the mask says it is lazy, else its bit in fl. */
function pushFlag(f: FuncBuilder, s: LazyState, bit: number): void {
  LAZY_FLAG[bit](f, s);
  f.emit(s.fl).i32Const(FLAG_SHIFT[bit]).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
  f.emit(s.mask).i32Const(bit).op(Op.i32_and).op(Op.select);
}

/** EFLAGS bit number of each arithmetic flag. */
const FLAG_SHIFT: Record<number, number> = { [F.CF]: 0, [F.PF]: 2, [F.AF]: 4, [F.ZF]: 6, [F.SF]: 7, [F.OF]: 11 };

/**
 * Push the whole EFLAGS value (cpu.getFlags): the bits not lazy from fl, then
 * each lazy one. Inline in the region, not a helper function: a call anywhere
 * in a function, even on a cold path, makes TurboFan spill the values live
 * across it where they are made (measured with an import called only on TLB
 * misses: every workload 15-25% slower), and Liftoff spill its cached locals.
 */
function pushEflags(f: FuncBuilder, s: LazyState): void {
  f.emit(s.mask).op(Op.i32_eqz).if(I32);
  f.emit(s.fl);
  f.else();
  f.emit(s.fl).emit(s.mask).i32Const(-1).op(Op.i32_xor).op(Op.i32_and);
  for (const bit of [F.CF, F.ZF, F.SF, F.OF, F.PF, F.AF]) {
    pushFlag(f, s, bit);
    if (FLAG_SHIFT[bit]) f.i32Const(FLAG_SHIFT[bit]).op(Op.i32_shl);
    f.op(Op.i32_or);
  }
  f.end();
}

/** Emits the code of the instructions, keeping track of the block depth for branches. */
class Emitter {
  private label = 0;
  /** The function index of the imported FPU (`env.fpu`), -1 when the region has no x87 instruction. */
  fpuFunc = -1;
  /** The function index of the imported segment load (`env.seg`), -1 when the region has no MOV Sreg. */
  segFunc = -1;
  /** The function index of the imported CR3 load (`env.cr3`), -1 when the region has no MOV CR3. */
  cr3Func = -1;
  /** Structured blocks opened inside the current instruction. */
  private extra = 0;
  private fk: number = Fk.UNKNOWN;
  /** The width of the producer fk names: 7, 15 or 31. */
  private fkTop = 31;
  /** The flags the current instruction writes are dead (flagsDeadAfter): lazy(), resultFlags() and the rotates' CF/OF emit nothing. */
  flagsDead = false;

  constructor(
    private readonly f: FuncBuilder,
    private readonly mem: Uint8Array,
    private readonly nLabels: number,
    private readonly labelIndex: Map<number, number>,
    private readonly eipPage: number,
    private readonly heads: ReadonlyMap<number, number>,
    /** Per label: a target of the loop top's br_table (a way in), see compileRegion. */
    private readonly way: readonly boolean[],
    /** Per label that does not start a run (continueRun): the run's instructions before it; -1 for the others. */
    private readonly runPos: readonly number[],
    /** The linear address of the next page (compileRegion's `next`), for instructions that cross into it. */
    private readonly nextLin: number,
  ) {}

  /**
   * Instruction counting: a label's straight run of `runLen` instructions is
   * paid for when it starts (when `left` cannot cover it, the region exits
   * there and the interpreter runs the rest of the slice); an exit or branch
   * inside the run gives back what the run did not execute.
   */
  private runLen = 0;
  private done = 0;
  private curEip = 0;

  startLabel(i: number, runLen: number, eip: number): void {
    const f = this.f;
    this.label = i;
    this.fk = Fk.UNKNOWN;
    this.runLen = runLen;
    this.done = 0;
    if (runLen === 0) return;
    f.localGet(LEFT).i32Const(runLen).op(Op.i32_lt_s).ifUnlikely();
    f.i32Const(eip).localSet(EIP);
    f.br(this.exitDepth + 1);
    f.end();
    f.localGet(LEFT).i32Const(runLen).op(Op.i32_sub).localSet(LEFT);
  }

  /** Label i goes on with the current run (compileRegion's `counted`): it was paid for at the run's start. */
  continueRun(i: number): void {
    if (this.done !== this.runPos[i]) throw new Error(`region: label ${i} is ${this.runPos[i]} into its run, reached after ${this.done}`);
    this.label = i;
    this.fk = Fk.UNKNOWN;
  }

  /** Give back the instructions of the run not executed so far. */
  private refund(): void {
    const k = this.runLen - this.done;
    if (k !== 0) this.f.localGet(LEFT).i32Const(k).op(Op.i32_add).localSet(LEFT);
  }

  /** The depth of $exit: past the labels' blocks, the loop and $miss. */
  private get exitDepth(): number {
    return this.nLabels - 1 - this.label + 2 + this.extra;
  }
  /** The depth of $miss, the TLB misses' shared tail. */
  private get missDepth(): number {
    return this.exitDepth - 1;
  }
  private get topDepth(): number {
    return this.nLabels - 1 - this.label + this.extra;
  }
  /** Leave with EIP as it is in the EIP local (the run's count already settled). */
  private exit(): void {
    this.f.br(this.exitDepth);
  }
  /**
   * Before an instruction whose last `n` bytes are on the next page: leave
   * (the interpreter runs it) unless that page is still mapped for reads and
   * still holds the bytes it was compiled from. Writes there do not make this
   * region stale (they are another page's), so the bytes are compared instead.
   */
  private crossCheck(n: number): void {
    const f = this.f;
    const lin = this.nextLin;
    f.i32Const((lin >>> 12) << 2).i32Load(Layout.TLB).localTee(TE);
    f.inv(RMASK).op(Op.i32_and).i32Const(1).op(Op.i32_ne);
    this.exitIf();
    f.localGet(TE).i32Const(~0xfff).op(Op.i32_and).i32Const(lin).op(Op.i32_xor).localSet(TH);
    for (let k = 0; k < n; k += 4) {
      const c = Math.min(4, n - k);
      let want = 0;
      for (let j = 0; j < c; j++) want |= this.mem[4096 + k + j] << (8 * j);
      f.localGet(TH).i32Load(Layout.RAM + k);
      if (c < 4) f.i32Const((1 << (8 * c)) - 1).op(Op.i32_and);
      f.i32Const(want).op(Op.i32_ne);
      this.exitIf();
    }
  }
  /** Leave before the current instruction when the condition on the stack is true. */
  private exitIf(before?: () => void): void {
    const f = this.f;
    f.ifUnlikely();
    this.extra++;
    before?.();
    f.i32Const(this.curEip).localSet(EIP);
    this.refund();
    this.exit();
    this.extra--;
    f.end();
  }
  /**
   * Go to label i: forward (a later label) by a plain `br` to the end of the
   * block that closes right before it; backward through the loop and its
   * `br_table` (Liftoff makes that a binary search over the labels, after
   * spilling every cached local at the loop header).
   */
  private jumpLabel(i: number): void {
    const f = this.f;
    if (i > this.label) {
      f.br(i - this.label - 1 + this.extra);
      return;
    }
    const h = this.heads.get(i);
    if (h !== undefined) f.i32Const(h).localSet(BK);
    else if (this.way[i]) {
      f.i32Const(i).localSet(PC);
      if (this.heads.size > 0) f.i32Const(0).localSet(BK);
    } else throw new Error(`region: no way back to label ${i}`);
    f.br(this.topDepth);
  }
  /** Can the code of the current label go to label i (forward, or back through the loop top)? */
  private reaches(i: number): boolean {
    return i > this.label || this.heads.has(i) || this.way[i];
  }
  /** The current instruction has completed. */
  private count(): void {
    this.done++;
  }
  /** Continue at `eip`: a label of the region, or leave (after the current instruction, counted). */
  goTo(eip: number): void {
    const d = (eip - this.eipPage) | 0;
    const i = d >= 0 && d < 4096 ? this.labelIndex.get(d) : undefined;
    if (i !== undefined && i > this.label && this.runPos[i] >= 0) {
      // on in this run (compileRegion's `counted`): give back only what the branch skips
      const k = this.runPos[i] - this.done;
      if (k < 0) throw new Error(`region: a branch ${this.done} into its run to label ${i}, ${this.runPos[i]} into it`);
      if (k !== 0) this.f.localGet(LEFT).i32Const(k).op(Op.i32_add).localSet(LEFT);
      this.jumpLabel(i);
      return;
    }
    this.refund();
    if (i !== undefined && this.reaches(i)) this.jumpLabel(i);
    else {
      this.f.i32Const(eip).localSet(EIP);
      this.exit();
    }
  }

  /**
   * Continue at the EIP in local `t` (the current instruction done and
   * settled): on the page, through the loop top's search over the ways in
   * (pc = ~offset; an offset that is not one leaves there), else leave.
   */
  private dispatch(t: number): void {
    const f = this.f;
    f.localGet(t).i32Const(this.eipPage).op(Op.i32_sub).localTee(B1).i32Const(4096).op(Op.i32_lt_u).if();
    this.extra++;
    f.localGet(B1).i32Const(-1).op(Op.i32_xor).localSet(PC);
    if (this.heads.size > 0) f.i32Const(0).localSet(BK);
    f.br(this.topDepth);
    this.extra--;
    f.end();
    f.localGet(t).localSet(EIP);
    this.exit();
  }

  // ---- operands ----
  private reg8Get(n: number): void {
    const f = this.f;
    if (n < 4) f.localGet(R0 + n).i32Const(0xff).op(Op.i32_and);
    else f.localGet(R0 + n - 4).i32Const(8).op(Op.i32_shr_u).i32Const(0xff).op(Op.i32_and);
  }
  /** reg8 n = value in local `src` (low 8 bits). */
  private reg8Set(n: number, src: number): void {
    const f = this.f;
    const r = R0 + (n & 3);
    if (n < 4) f.localGet(r).i32Const(~0xff).op(Op.i32_and).localGet(src).i32Const(0xff).op(Op.i32_and).op(Op.i32_or).localSet(r);
    else f.localGet(r).i32Const(~0xff00).op(Op.i32_and).localGet(src).i32Const(0xff).op(Op.i32_and).i32Const(8).op(Op.i32_shl).op(Op.i32_or).localSet(r);
  }
  /**
   * Push the address of the ModRM memory operand at host offset o: the offset
   * (LEA) or, with `seg`, the linear address (DS or SS base added; both have
   * 4 GiB limits, checked when the region is entered).
   */
  private ea(o: number, seg = true): void {
    const f = this.f;
    const mem = this.mem;
    const m = mem[o];
    const mod = m >> 6;
    const rm = m & 7;
    let p = o + 1;
    let disp = 0;
    let terms = 0;
    let ss = false;
    if (rm === 4) {
      const sib = mem[p++];
      const base = sib & 7;
      const idx = (sib >> 3) & 7;
      if (base === 5 && mod === 0) {
        disp = imm32(mem, p);
        p += 4;
      } else {
        f.localGet(R0 + base);
        terms++;
        ss = base === 4 || base === 5;
      }
      if (idx !== 4) {
        f.localGet(R0 + idx);
        if (sib >> 6) f.i32Const(sib >> 6).op(Op.i32_shl);
        if (terms++) f.op(Op.i32_add);
      }
    } else if (rm === 5 && mod === 0) {
      disp = imm32(mem, p);
      p += 4;
    } else {
      f.localGet(R0 + rm);
      terms++;
      ss = rm === 5;
    }
    if (mod === 1) disp = imm8s(mem, p);
    else if (mod === 2) disp = imm32(mem, p);
    if (terms === 0) f.i32Const(disp);
    else if (disp !== 0) f.i32Const(disp).op(Op.i32_add);
    this.eaSeg = this.segOvr >= 0 ? this.segOvr : ss ? Seg.SS : Seg.DS;
    if (seg) f.inv(this.segOvr >= 0 ? SEG_BASE_AT[this.segOvr] : ss ? SSB : DSB).op(Op.i32_add);
  }
  /** The segment of the last operand ea() addressed. */
  private eaSeg = 0;
  /**
   * TLB lookup of the address in TA for an access of `size` bytes: leaves the
   * host offset in TH, or exits (miss, no permission, page crossing, a store
   * to a page holding compiled code).
   */
  private lookup(size: number, write: boolean): void {
    const f = this.f;
    f.localGet(TA).i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB).localTee(TE);
    f.inv(write ? WMASK : RMASK).op(Op.i32_and);
    // one compare for both tests: the entry's bits that refuse the access
    // (0 when it is valid) above the offset in the page, against the last
    // offset the access fits at (an OR of two compares cost two setcc)
    if (size > 1) f.i32Const(1).op(Op.i32_xor).i32Const(12).op(Op.i32_shl).localGet(TA).i32Const(0xfff).op(Op.i32_and).op(Op.i32_or).i32Const(4096 - size).op(Op.i32_gt_u);
    else f.i32Const(1).op(Op.i32_ne);
    // to the region's one miss tail, which stores the address and kind and refunds the run
    this.missIf(write);
    f.localGet(TE).i32Const(~0xfff).op(Op.i32_and).localGet(TA).op(Op.i32_xor).localSet(TH);
  }
  /**
   * On the i32 on the stack (not 0): to the region's one miss tail, which
   * stores the address in TA and the kind for the tier's TLB refill, and
   * refunds the run; the refill goes on at this instruction when it is a
   * label. Nothing of the instruction may be done yet.
   */
  private missIf(write: boolean): void {
    const f = this.f;
    f.ifUnlikely();
    this.extra++;
    // MX: the run's instructions not done, the instruction's page offset, the
    // kind (one constant: the tail sets EIP from it, 5-6 bytes less per access)
    const off = (this.curEip - this.eipPage) | 0;
    if (off < 0 || off >= 4096 || this.runLen - this.done >= 1 << 17) throw new Error('region: an access outside the page or its run');
    f.i32Const(((this.runLen - this.done) << 14) | (off << 2) | (write ? 2 : 1)).localSet(MX);
    f.br(this.missDepth);
    this.extra--;
    f.end();
  }
  /** Push segment register s's selector (Xchg.SEL). */
  private selector(s: number): void {
    const f = this.f;
    f.inv(Layout.JIT + (Xchg.SEL + (s >> 1)) * 4);
    if (s & 1) f.i32Const(16).op(Op.i32_shr_u);
    else f.i32Const(0xffff).op(Op.i32_and);
  }
  private load(size: number): void {
    const f = this.f;
    f.localGet(TH);
    if (size === 1) f.i32Load8u(Layout.RAM);
    else if (size === 2) f.i32Load16u(Layout.RAM);
    else f.i32Load(Layout.RAM);
  }
  /** Store the value in local `src` at TH. */
  private store(size: number, src: number): void {
    const f = this.f;
    f.localGet(TH).localGet(src);
    if (size === 1) f.i32Store8(Layout.RAM);
    else if (size === 2) f.i32Store16(Layout.RAM);
    else f.i32Store(Layout.RAM);
  }
  /** Read the r/m operand (register or memory at host offset o) of width `size` into local `dst`; for memory, TH stays set (write: checked for a store too). */
  private readRm(o: number, size: number, dst: number, write: boolean): void {
    const m = this.mem[o];
    const f = this.f;
    if (m >> 6 === 3) {
      if (size === 4) f.localGet(R0 + (m & 7));
      else if (size === 1) this.reg8Get(m & 7);
      else f.localGet(R0 + (m & 7)).i32Const(0xffff).op(Op.i32_and);
      f.localSet(dst);
      return;
    }
    this.ea(o);
    f.localSet(TA);
    this.lookup(size, write);
    this.load(size);
    f.localSet(dst);
  }
  /** Write local `src` to the r/m operand read by readRm (memory: at TH). */
  private writeRm(o: number, size: number, src: number): void {
    const m = this.mem[o];
    if (m >> 6 === 3) {
      this.regSet(m & 7, size, src);
      return;
    }
    this.store(size, src);
  }

  // ---- flags ----
  private lazy(op: number, a: number | null, b: number | null, top: number, mask: number = F.ARITH): void {
    const f = this.f;
    if (this.flagsDead) return;
    f.i32Const(0).i32Const(op | (top << 8) | (mask << 16)).i32Store(LKIND_AT);
    if (a !== null) f.localGet(a).localSet(LA);
    else f.i32Const(0).localSet(LA);
    if (b !== null) f.localGet(b).localSet(LB);
    else f.i32Const(0).localSet(LB);
    f.localGet(R).localSet(LRES);
  }
  /** The flag producer is the instruction just emitted: kind k at width `top`. */
  private known(k: number, top: number): void {
    this.fk = k;
    this.fkTop = top;
  }
  /** Push local l shifted so that bit `top` is the sign bit (a no-op at 32 bits). */
  private signed(l: number): void {
    this.f.localGetRaw(l);
    if (this.fkTop !== 31) this.f.i32Const(31 - this.fkTop).op(Op.i32_shl);
  }
  /** Push CF (0 or 1), straight from the known producer where there is one. */
  private pushCF(): void {
    const f = this.f;
    const fk = this.fk;
    if (fk === Fk.LOGIC) f.i32Const(0);
    else if (fk === Fk.SUB) f.localGetRaw(LA).localGetRaw(LB).op(Op.i32_lt_u);
    else if (fk === Fk.ADD) {
      if (this.fkTop === 31) f.localGetRaw(LRES).localGetRaw(LA).op(Op.i32_lt_u);
      else f.localGetRaw(LRES).i32Const(this.fkTop + 1).op(Op.i32_shr_u);
    } else if (fk === Fk.INC || fk === Fk.DEC) f.localGet(FL).i32Const(F.CF).op(Op.i32_and);
    // else from the lazy state, inline (a call makes Liftoff spill every cached
    // local around it, and an INC at a label, a loop's counter, needs CF on every pass)
    else pushFlag(f, REGION_LAZY, F.CF);
  }
  /** Push ZF: from the known producer, else inline from the lazy state. */
  private pushZF(): void {
    const f = this.f;
    if (this.fk !== Fk.UNKNOWN) {
      this.signed(LRES);
      f.op(Op.i32_eqz);
      return;
    }
    pushFlag(f, REGION_LAZY, F.ZF);
  }
  /** Push SF, as pushZF. */
  private pushSF(): void {
    const f = this.f;
    if (this.fk !== Fk.UNKNOWN) {
      this.signed(LRES);
      f.i32Const(31).op(Op.i32_shr_u);
      return;
    }
    pushFlag(f, REGION_LAZY, F.SF);
  }
  /** Push OF from the known producer, else from the lazy state inline. */
  private pushOF(): void {
    const f = this.f;
    const fk = this.fk;
    if (fk === Fk.LOGIC) f.i32Const(0);
    else if (fk === Fk.SUB || fk === Fk.DEC) {
      // ((a ^ b) & (a ^ r)) >>> top & 1
      f.localGetRaw(LA).localGetRaw(LB).op(Op.i32_xor).localGetRaw(LA).localGetRaw(LRES).op(Op.i32_xor).op(Op.i32_and);
      f.i32Const(this.fkTop).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    } else if (fk === Fk.ADD || fk === Fk.INC) {
      // ((a ^ r) & (b ^ r)) >>> top & 1
      f.localGetRaw(LA).localGetRaw(LRES).op(Op.i32_xor).localGetRaw(LB).localGetRaw(LRES).op(Op.i32_xor).op(Op.i32_and);
      f.i32Const(this.fkTop).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
    } else pushFlag(f, REGION_LAZY, F.OF);
  }
  /** setResultFlags(R, top, cf (local), of (local), af=0). */
  private resultFlags(top: number, cf: number, of: number): void {
    const f = this.f;
    if (this.flagsDead) return;
    f.i32Const(0).i32Const((top << 8) | ((F.ZF | F.SF | F.PF) << 16)).i32Store(LKIND_AT);
    f.localGet(R).localSet(LRES);
    f.localGet(FL).i32Const(~(F.CF | F.OF | F.AF)).op(Op.i32_and);
    f.localGet(cf).op(Op.i32_or);
    f.localGet(of).i32Const(11).op(Op.i32_shl).op(Op.i32_or).localSet(FL);
  }
  /** R = ALU op k of X and Y at width top+1, with the flags alu() sets. */
  private alu(k: number, top: number): void {
    const f = this.f;
    f.localGet(X).localGet(Y);
    switch (k) {
      case 0:
        f.op(Op.i32_add).localSet(R);
        this.lazy(1, X, Y, top);
        break;
      case 1:
        f.op(Op.i32_or).localSet(R);
        this.lazy(0, null, null, top);
        break;
      case 2:
        f.op(Op.i32_add);
        this.pushCF();
        f.op(Op.i32_add).localSet(R);
        this.lazy(1, X, Y, top);
        break;
      case 3:
        f.op(Op.i32_sub);
        this.pushCF();
        f.op(Op.i32_sub).localSet(R);
        this.lazy(2, X, Y, top);
        break;
      case 4:
        f.op(Op.i32_and).localSet(R);
        this.lazy(0, null, null, top);
        break;
      case 6:
        f.op(Op.i32_xor).localSet(R);
        this.lazy(0, null, null, top);
        break;
      default:
        f.op(Op.i32_sub).localSet(R);
        this.lazy(2, X, Y, top);
    }
    if (k === 0) this.known(Fk.ADD, top);
    else if (k === 5 || k === 7) this.known(Fk.SUB, top);
    else if (k === 1 || k === 4 || k === 6) this.known(Fk.LOGIC, top);
    else this.fk = Fk.UNKNOWN;
  }
  /** Push condition cc (0..15) as 0/1. */
  private cond(cc: number): void {
    const f = this.f;
    const c = cc >> 1;
    const fk = this.fk;
    switch (c) {
      case 0:
        this.pushOF();
        break;
      case 1:
        this.pushCF();
        break;
      case 2:
        this.pushZF();
        break;
      case 3:
        if (fk === Fk.SUB) f.localGetRaw(LA).localGetRaw(LB).op(Op.i32_le_u);
        else {
          this.pushCF();
          this.pushZF();
          f.op(Op.i32_or);
        }
        break;
      case 4:
        this.pushSF();
        break;
      case 5:
        pushFlag(f, REGION_LAZY, F.PF);
        break;
      case 6:
        if (fk === Fk.SUB) {
          this.signed(LA);
          this.signed(LB);
          f.op(Op.i32_lt_s);
        } else {
          this.pushSF();
          this.pushOF();
          f.op(Op.i32_xor);
        }
        break;
      default:
        if (fk === Fk.SUB) {
          this.signed(LA);
          this.signed(LB);
          f.op(Op.i32_le_s);
        } else {
          this.pushZF();
          this.pushSF();
          this.pushOF();
          f.op(Op.i32_xor).op(Op.i32_or);
        }
    }
    if (cc & 1) f.op(Op.i32_eqz);
  }

  // ---- instructions ----
  /** The current instruction's segment-override prefix, or -1. */
  private segOvr = -1;

  insn(ins: Insn): void {
    const f = this.f;
    this.segOvr = ins.seg;
    const eip = (this.eipPage + ins.off) | 0;
    this.curEip = eip;
    if (ins.key < 0) {
      f.i32Const(eip).localSet(EIP);
      this.refund();
      this.exit();
      return;
    }
    if (ins.off + ins.len > 4096) this.crossCheck(ins.off + ins.len - 4096);
    const next = (eip + ins.len) | 0;
    const key = ins.key;
    const o = ins.at;
    const mem = this.mem;
    const m = mem[o];
    const reg = (m >> 3) & 7;
    const mod = m >> 6;
    /** Size of a word/dword operand. */
    const v = ins.o16 ? 2 : 4;
    if (key < 0x40 && (key & 7) < 6) {
      const k = key >> 3;
      const lo = key & 7;
      const size = lo & 1 ? v : 1;
      const top = size * 8 - 1;
      const store = k !== 7;
      if (lo < 2) {
        this.readRm(o, size, X, store);
        this.regGet(reg, size);
        f.localSet(Y);
        this.alu(k, top);
        if (store) this.writeRm(o, size, R);
      } else if (lo < 4) {
        this.regGet(reg, size);
        f.localSet(X);
        this.readRm(o, size, Y, false);
        this.alu(k, top);
        if (store) this.regSet(reg, size, R);
      } else {
        this.regGet(0, size);
        f.localSet(X).i32Const(immN(mem, o, size)).localSet(Y);
        this.alu(k, top);
        if (store) this.regSet(0, size, R);
      }
    } else if (key === 0x80 || key === 0x81 || key === 0x83) {
      const size = key === 0x80 ? 1 : v;
      const store = reg !== 7;
      const io = o + modrmLen(mem, o);
      const imm = key === 0x80 ? mem[io] : key === 0x81 ? immN(mem, io, v) : v === 2 ? imm8s(mem, io) & 0xffff : imm8s(mem, io);
      this.readRm(o, size, X, store);
      f.i32Const(imm).localSet(Y);
      this.alu(reg, size * 8 - 1);
      if (store) this.writeRm(o, size, R);
    } else if (key === 0x84 || key === 0x85 || key === 0xa8 || key === 0xa9) {
      const size = key & 1 ? v : 1;
      if (key >= 0xa8) {
        this.regGet(0, size);
        f.i32Const(immN(mem, o, size)).op(Op.i32_and).localSet(R);
      } else {
        this.readRm(o, size, X, false);
        this.regGet(reg, size);
        f.localGet(X).op(Op.i32_and).localSet(R);
      }
      this.lazy(0, null, null, size * 8 - 1);
      this.known(Fk.LOGIC, size * 8 - 1);
    } else if (key === 0x86 || key === 0x87) {
      // XCHG r/m, reg
      const size = key === 0x87 ? v : 1;
      this.readRm(o, size, V, true);
      this.regGet(reg, size);
      f.localSet(Y);
      this.writeRm(o, size, Y);
      this.regSet(reg, size, V);
    } else if (key >= 0x91 && key <= 0x97) {
      this.regGet(0, v);
      f.localSet(V);
      this.regGet(key & 7, v);
      f.localSet(Y);
      this.regSet(0, v, Y);
      this.regSet(key & 7, v, V);
    } else if (key >= 0x88 && key <= 0x8b) {
      const size = key & 1 ? v : 1;
      if (key < 0x8a) {
        // r/m <- reg
        this.rmForStore(o, size);
        this.regGet(reg, size);
        f.localSet(V);
        this.writeRm(o, size, V);
      } else {
        this.readRm(o, size, V, false);
        this.regSet(reg, size, V);
      }
    } else if (key >= 0xa0 && key <= 0xa3) {
      // MOV AL/eAX <-> moffs
      const size = key & 1 ? v : 1;
      f.i32Const(imm32(mem, o)).inv(this.segOvr >= 0 ? SEG_BASE_AT[this.segOvr] : DSB).op(Op.i32_add).localSet(TA);
      this.lookup(size, key >= 0xa2);
      if (key < 0xa2) {
        this.load(size);
        f.localSet(V);
        this.regSet(0, size, V);
      } else {
        this.regGet(0, size);
        f.localSet(V);
        this.store(size, V);
      }
    } else if (key === 0x8d) {
      this.ea(o, false);
      f.localSet(V);
      this.regSet(reg, v, V);
    } else if (key === 0xc6 || key === 0xc7) {
      const size = key === 0xc7 ? v : 1;
      const io = o + modrmLen(mem, o);
      this.rmForStore(o, size);
      f.i32Const(immN(mem, io, size)).localSet(V);
      this.writeRm(o, size, V);
    } else if (key >= 0xb0 && key <= 0xb7) {
      f.i32Const(mem[o]).localSet(V);
      this.reg8Set(key & 7, V);
    } else if (key >= 0xb8 && key <= 0xbf) {
      f.i32Const(immN(mem, o, v)).localSet(V);
      this.regSet(key & 7, v, V);
    } else if (key >= 0x40 && key <= 0x4f) {
      // INC/DEC r: CF kept (materialised into the flags), the rest lazy
      this.regGet(key & 7, v);
      f.localSet(X);
      this.incDec(key >= 0x48, v);
      this.regSet(key & 7, v, R);
    } else if (key === 0xfe || (key === 0xff && reg < 2)) {
      const size = key === 0xff ? v : 1;
      this.readRm(o, size, X, true);
      this.incDec(reg === 1, size);
      this.writeRm(o, size, R);
    } else if (key >= 0x50 && key <= 0x57) {
      f.localGet(R0 + (key & 7)).localSet(V);
      this.push();
    } else if (key >= 0x58 && key <= 0x5f) {
      this.pop();
      f.localGet(V).localSet(R0 + (key & 7));
    } else if (key === 0x68 || key === 0x6a) {
      f.i32Const(key === 0x68 ? imm32(mem, o) : imm8s(mem, o)).localSet(V);
      this.push();
    } else if (key === 0x06 || key === 0x0e || key === 0x16 || key === 0x1e || key === 0x1a0 || key === 0x1a8) {
      // PUSH Sreg: ESP moves by 4 (the dword checked for the store), and only
      // the low 16 bits are written, as P6 and QEMU do (move.ts pushSeg)
      this.selector(key === 0x1a0 ? Seg.FS : key === 0x1a8 ? Seg.GS : key >> 3);
      f.localSet(V);
      this.push(2);
    } else if (key === 0x8c) {
      // MOV r/m,Sreg: a register gets the selector zero-extended, memory its 16 bits
      if (mem[o] >> 6 === 3) {
        this.selector(reg);
        f.localSet(R0 + (mem[o] & 7));
      } else {
        this.rmForStore(o, 2);
        this.selector(reg);
        f.localSet(V);
        this.writeRm(o, 2, V);
      }
    } else if (key === 0xff && reg === 6) {
      this.readRm(o, 4, V, false);
      this.push();
    } else if (key === 0x8f) {
      // POP r/m: read the stack, check the destination, then store and move ESP
      f.localGet(R0 + 4).inv(SSB).op(Op.i32_add).localSet(TA);
      this.lookup(4, false);
      this.load(4);
      f.localSet(V);
      if (mod !== 3) {
        this.ea(o);
        f.localSet(TA);
        this.lookup(4, true);
        this.store(4, V);
        f.localGet(R0 + 4).i32Const(4).op(Op.i32_add).localSet(R0 + 4);
      } else {
        f.localGet(R0 + 4).i32Const(4).op(Op.i32_add).localSet(R0 + 4);
        f.localGet(V).localSet(R0 + (m & 7));
      }
    } else if (key === 0xc9) {
      // LEAVE: ESP = EBP, then pop EBP
      f.localGet(R0 + 5).inv(SSB).op(Op.i32_add).localSet(TA);
      this.lookup(4, false);
      this.load(4);
      f.localSet(V);
      f.localGet(R0 + 5).i32Const(4).op(Op.i32_add).localSet(R0 + 4);
      f.localGet(V).localSet(R0 + 5);
    } else if (key === 0x90) {
      if (ins.rep === 0xf3) {
        this.pause(next);
        return;
      }
      // NOP
    } else if (key === 0x9c) {
      // PUSHFD (32-bit protected mode, not v8086: VM and RF are not pushed)
      this.flagsValue();
      f.i32Const(0x00fcffff).op(Op.i32_and).localSet(V);
      this.push();
    } else if (key === 0x98) {
      if (v === 4) f.localGet(R0).op(Op.i32_extend16_s).localSet(R0);
      else {
        f.localGet(R0).op(Op.i32_extend8_s).localSet(V);
        this.regSet(0, 2, V);
      }
    } else if (key === 0x99) {
      if (v === 4) f.localGet(R0).i32Const(31).op(Op.i32_shr_s).localSet(R0 + 2);
      else {
        f.localGet(R0).i32Const(16).op(Op.i32_shl).i32Const(31).op(Op.i32_shr_s).localSet(V);
        this.regSet(2, 2, V);
      }
    } else if (key === 0x69 || key === 0x6b || key === 0x1af) {
      this.readRm(o, v, X, false);
      const io = o + modrmLen(mem, o);
      if (key === 0x1af) this.regGet(reg, v);
      else f.i32Const(key === 0x69 ? immN(mem, io, v) : imm8s(mem, io));
      f.localSet(Y);
      this.imul(v);
      if (v === 4) f.localGet(R).localSet(R0 + reg);
      else this.regSet(reg, 2, R);
    } else if (key === 0xf6 || key === 0xf7) {
      // TEST r/m,imm (/0, /1), NOT (/2), NEG (/3), MUL IMUL DIV IDIV (/4../7)
      const size = key === 0xf7 ? v : 1;
      const top = size * 8 - 1;
      if (reg < 2) {
        const io = o + modrmLen(mem, o);
        this.readRm(o, size, X, false);
        f.localGet(X).i32Const(immN(mem, io, size)).op(Op.i32_and).localSet(R);
        this.lazy(0, null, null, top);
        this.known(Fk.LOGIC, size * 8 - 1);
      } else if (reg === 2) {
        this.readRm(o, size, V, true);
        f.localGet(V).i32Const(-1).op(Op.i32_xor).localSet(V);
        this.writeRm(o, size, V);
      } else if (reg === 3) {
        this.readRm(o, size, Y, true);
        f.i32Const(0).localSet(X);
        this.alu(5, top); // R = 0 - v, flags as SUB(0, v)
        this.writeRm(o, size, R);
      } else {
        this.readRm(o, size, V, false);
        this.mulDiv(reg, size);
      }
    } else if (key >= 0x140 && key <= 0x14f) {
      // CMOVcc r, r/m: the source is read whatever the condition
      this.readRm(o, v, V, false);
      this.cond(key & 15);
      f.if();
      this.regSet(reg, v, V);
      f.end();
    } else if (key >= 0x190 && key <= 0x19f) {
      // SETcc r/m8
      this.rmForStore(o, 1);
      this.cond(key & 15);
      f.localSet(V);
      this.writeRm(o, 1, V);
    } else if (key === 0x1b6 || key === 0x1b7 || key === 0x1be || key === 0x1bf) {
      const size = key === 0x1b6 || key === 0x1be ? 1 : 2;
      this.readRm(o, size, V, false);
      f.localGet(V);
      if (key === 0x1be) f.op(Op.i32_extend8_s);
      else if (key === 0x1bf) f.op(Op.i32_extend16_s);
      f.localSet(V);
      this.regSet(reg, v, V);
    } else if (key === 0xc0 || key === 0xc1 || (key >= 0xd0 && key <= 0xd3)) {
      // shifts and rotates: C0/C1 imm8, D0/D1 by 1, D2/D3 by CL
      const size = key & 1 ? v : 1;
      const io = o + modrmLen(mem, o);
      this.readRm(o, size, V, true);
      if (key <= 0xc1) this.shift(reg, size, mem[io] & 31);
      else if (key <= 0xd1) this.shift(reg, size, 1);
      else this.shift(reg, size, -1);
      this.writeRm(o, size, V);
    } else if (key === 0x1a4 || key === 0x1a5 || key === 0x1ac || key === 0x1ad) {
      // SHLD/SHRD r/m32, r32, imm8/CL
      this.readRm(o, 4, V, true);
      if (key === 0x1a4 || key === 0x1ac) f.i32Const(mem[o + modrmLen(mem, o)] & 31);
      else f.localGet(R0 + 1).i32Const(31).op(Op.i32_and);
      f.localTee(A1).if();
      this.extra++;
      this.shiftDouble(key < 0x1a8, R0 + reg);
      this.extra--;
      f.end();
      this.writeRm(o, 4, V);
    } else if (key === 0x1a3 || key === 0x1ab || key === 0x1b3 || key === 0x1bb || key === 0x1ba) {
      this.bitTest(key, o, v);
    } else if (key === 0x1bc || key === 0x1bd) {
      // BSF/BSR: a zero source leaves the destination alone and sets ZF
      this.readRm(o, v, V, false);
      f.localGet(V).if();
      if (key === 0x1bc) f.localGet(V).op(Op.i32_ctz);
      else f.i32Const(31).localGet(V).op(Op.i32_clz).op(Op.i32_sub);
      f.localSet(Y);
      this.regSet(reg, v, Y);
      f.end();
      f.localGet(V).localSet(R);
      this.lazy(0, null, null, v * 8 - 1);
      this.fk = Fk.UNKNOWN;
    } else if (key >= 0x1c8 && key <= 0x1cf) {
      const r = R0 + (key & 7);
      if (v === 2) f.localGet(r).i32Const(~0xffff).op(Op.i32_and).localSet(r);
      else {
        f.localGet(r).i32Const(24).op(Op.i32_shl);
        f.localGet(r).i32Const(0xff00).op(Op.i32_and).i32Const(8).op(Op.i32_shl).op(Op.i32_or);
        f.localGet(r).i32Const(8).op(Op.i32_shr_u).i32Const(0xff00).op(Op.i32_and).op(Op.i32_or);
        f.localGet(r).i32Const(24).op(Op.i32_shr_u).op(Op.i32_or).localSet(r);
      }
    } else if (key === 0x1c0 || key === 0x1c1) {
      // XADD r/m, reg: reg gets the old value first (XADD r, r leaves the sum)
      const size = key === 0x1c1 ? v : 1;
      this.readRm(o, size, X, true);
      this.regGet(reg, size);
      f.localSet(Y);
      this.alu(0, size * 8 - 1);
      this.regSet(reg, size, X);
      this.writeRm(o, size, R);
    } else if (key === 0x1b0 || key === 0x1b1) {
      // CMPXCHG r/m, reg
      const size = key === 0x1b1 ? v : 1;
      this.readRm(o, size, Y, true);
      this.regGet(0, size);
      f.localSet(X);
      this.alu(7, size * 8 - 1);
      f.localGet(X).localGet(Y).op(Op.i32_eq).if();
      this.regGet(reg, size);
      f.localSet(V);
      this.writeRm(o, size, V);
      f.else();
      this.writeRm(o, size, Y);
      this.regSet(0, size, Y);
      f.end();
    } else if (key === 0x1c7) {
      // CMPXCHG8B m64: EDX:EAX against the quadword; equal: ECX:EBX stored,
      // ZF set; else the quadword into EDX:EAX, ZF clear (the write back of
      // the old value changes nothing here: the lookup already checked that
      // a store is allowed, as the interpreter's probeWrite does first). The
      // other flags stay (setFlagBits: materialised).
      this.ea(o);
      f.localSet(TA);
      this.lookup(8, true);
      f.localGet(TH).i32Load(Layout.RAM).localSet(X);
      f.localGet(TH).i32Load(Layout.RAM + 4).localSet(Y);
      this.materialise();
      f.localGet(X).localGet(R0).op(Op.i32_eq).localGet(Y).localGet(R0 + 2).op(Op.i32_eq).op(Op.i32_and).if();
      f.localGet(TH).localGet(R0 + 3).i32Store(Layout.RAM);
      f.localGet(TH).localGet(R0 + 1).i32Store(Layout.RAM + 4);
      f.localGet(FL).i32Const(F.ZF).op(Op.i32_or).localSet(FL);
      f.else();
      f.localGet(X).localSet(R0);
      f.localGet(Y).localSet(R0 + 2);
      f.localGet(FL).i32Const(~F.ZF).op(Op.i32_and).localSet(FL);
      f.end();
    } else if (key === 0xf5 || key === 0xf8 || key === 0xf9) {
      // CMC CLC STC (setFlagBits: the flags materialised)
      if (key === 0xf5) {
        this.pushCF();
        f.localSet(X);
      }
      this.materialise();
      f.localGet(FL).i32Const(~F.CF).op(Op.i32_and);
      if (key === 0xf5) f.localGet(X).i32Const(1).op(Op.i32_xor).op(Op.i32_or);
      else if (key === 0xf9) f.i32Const(F.CF).op(Op.i32_or);
      f.localSet(FL);
      this.fk = Fk.UNKNOWN;
    } else if (key === 0xfc || key === 0xfd) {
      f.localGet(FL);
      if (key === 0xfc) f.i32Const(~F.DF).op(Op.i32_and);
      else f.i32Const(F.DF).op(Op.i32_or);
      f.localSet(FL);
    } else if (key === 0xfa || key === 0xfb) {
      // CLI/STI: CPL <= IOPL, else the interpreter raises #GP (regions run no v8086 code, and PVI's VIF is for CPL 3 code there too)
      this.ioplCheck();
      if (key === 0xfa) f.localGet(FL).i32Const(~F.IF).op(Op.i32_and).localSet(FL);
      else {
        f.localGet(FL).i32Const(F.IF).op(Op.i32_and).op(Op.i32_eqz).if();
        this.extra++;
        f.localGet(FL).i32Const(F.IF).op(Op.i32_or).localSet(FL);
        this.count();
        // the shadow: `left` right after the STI (see Xchg.SHADOW)
        f.i32Const(0).localGet(LEFT).i32Const(this.runLen - this.done).op(Op.i32_add).i32Store(Layout.JIT + Xchg.SHADOW * 4);
        this.leaveIfIntr(next);
        this.done--;
        this.extra--;
        f.end();
      }
    } else if (key === 0x9d) {
      // POPF (cpu.setFlags with the mask of ops/move.ts at CPL 0, CPL <= IOPL, or else)
      this.pop();
      this.materialise();
      const base = F.ARITH | F.TF | F.DF | F.NT | F.AC | F.ID;
      // A1 = mask
      f.i32Const(base | F.IOPL | F.IF).i32Const(base | F.IF).i32Const(base);
      f.localGet(FL).i32Const(12).op(Op.i32_shr_u).i32Const(3).op(Op.i32_and);
      f.i32Const(0).i32Load(Layout.JIT + Xchg.CPL * 4).localTee(A2).op(Op.i32_ge_u).op(Op.select);
      f.localGet(A2).op(Op.i32_eqz).op(Op.select).localSet(A1);
      f.localGet(FL).localGet(A1).i32Const(-1).op(Op.i32_xor).op(Op.i32_and);
      f.localGet(V).localGet(A1).op(Op.i32_and).op(Op.i32_or).i32Const(F.R1).op(Op.i32_or);
      f.i32Const(~(0x8 | 0x20 | 0x8000 | 0xffc00000)).op(Op.i32_and).localSet(FL);
      this.count();
      // TF set: the trap comes after the next instruction, which the interpreter's slow step runs
      f.localGet(FL).i32Const(F.TF).op(Op.i32_and);
      this.exitAfterIf(next, false);
      this.leaveIfIntr(next);
      return;
    } else if (key === 0x131) {
      // RDTSC: the TSC is cpu.readTsc() at the instruction, i.e. (TSC + left at the call) - left now
      f.i32Const(0).i32Load(Layout.JIT + Xchg.TSC_OK * 4).op(Op.i32_eqz);
      this.exitIf();
      f.i32Const(0).i32Load(Layout.JIT + Xchg.TSC_HI * 4).op(Op.i64_extend_i32_u).i64Const(32n).op(Op.i64_shl);
      f.i32Const(0).i32Load(Layout.JIT + Xchg.TSC_LO * 4).op(Op.i64_extend_i32_u).op(Op.i64_or);
      f.localGet(LEFT).i32Const(this.runLen - this.done).op(Op.i32_add).op(Op.i64_extend_i32_u).op(Op.i64_sub).localTee(P64);
      f.op(Op.i32_wrap_i64).localSet(R0);
      f.localGet(P64).i64Const(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64).localSet(R0 + 2);
    } else if (key === 0x9e) {
      // SAHF
      this.materialise();
      const m5 = F.SF | F.ZF | F.AF | F.PF | F.CF;
      f.localGet(FL).i32Const(~m5).op(Op.i32_and);
      this.reg8Get(4);
      f.i32Const(m5).op(Op.i32_and).op(Op.i32_or).localSet(FL);
      this.fk = Fk.UNKNOWN;
    } else if (key === 0x9f) {
      // LAHF
      this.flagsValue();
      f.i32Const(0xd5).op(Op.i32_and).i32Const(2).op(Op.i32_or).localSet(V);
      this.reg8Set(4, V);
    } else if ((key >= 0xd8 && key <= 0xdf) || key === 0x1ae) {
      this.fpu(ins, next);
      return;
    } else if (key === 0x8e) {
      this.segLoad(o, reg, next);
      return;
    } else if (key === 0x122) {
      f.localGet(R0 + (m & 7)).i32Const(this.curEip).call(this.cr3Func);
      this.afterCall(next);
      return;
    } else if (isString(key)) {
      this.string(ins, v);
      if (ins.rep !== 0) return; // counted (and looped) there
    } else if ((key >= 0x70 && key <= 0x7f) || (key >= 0x180 && key <= 0x18f)) {
      this.count();
      this.cond(key & 15);
      f.if();
      this.extra++;
      this.goTo(ins.target);
      this.extra--;
      f.end();
      return;
    } else if (key === 0xeb || key === 0xe9) {
      this.count();
      this.goTo(ins.target);
      return;
    } else if (key === 0xe8) {
      f.i32Const(next).localSet(V);
      this.push();
      this.count();
      this.goTo(ins.target);
      return;
    } else if (key === 0xff) {
      // CALL r/m32 (/2), JMP r/m32 (/4): leave for the target (a label of this region is entered again from there)
      this.readRm(o, 4, Y, false);
      if (reg === 2) {
        f.i32Const(next).localSet(V);
        this.push();
      }
      this.count();
      this.refund();
      this.dispatch(Y);
      return;
    } else if (key === 0xc3 || key === 0xc2) {
      this.pop();
      if (key === 0xc2) f.localGet(R0 + 4).i32Const(mem[o] | (mem[o + 1] << 8)).op(Op.i32_add).localSet(R0 + 4);
      this.count();
      this.refund();
      this.dispatch(V);
      return;
    }
    this.count();
  }

  // ---- operand helpers for every size ----
  /** Push register n at `size` bytes (zero-extended). */
  private regGet(n: number, size: number): void {
    const f = this.f;
    if (size === 4) f.localGet(R0 + n);
    else if (size === 2) f.localGet(R0 + n).i32Const(0xffff).op(Op.i32_and);
    else this.reg8Get(n);
  }
  /** Register n at `size` bytes = local `src` (the bits above `size` kept). */
  private regSet(n: number, size: number, src: number): void {
    const f = this.f;
    if (size === 4) f.localGet(src).localSet(R0 + n);
    else if (size === 2) f.localGet(R0 + n).i32Const(~0xffff).op(Op.i32_and).localGet(src).i32Const(0xffff).op(Op.i32_and).op(Op.i32_or).localSet(R0 + n);
    else this.reg8Set(n, src);
  }
  /** For a memory r/m operand about to be written (not read): its address checked for a store (TH set). */
  private rmForStore(o: number, size: number): void {
    if (this.mem[o] >> 6 === 3) return;
    this.ea(o);
    this.f.localSet(TA);
    this.lookup(size, true);
  }
  /** The whole EFLAGS value from the flag state (cpu.getFlags). */
  private flagsValue(): void {
    pushEflags(this.f, REGION_LAZY);
  }
  /** Flags materialised into FL, nothing lazy (as cpu.setFlagBits does before changing bits). */
  private materialise(): void {
    const f = this.f;
    pushEflags(f, REGION_LAZY);
    f.i32Const(F.R1).op(Op.i32_or).localSet(FL);
    // the mask to 0, op and width kept (as cpu.ts leaves them)
    f.i32Const(0).inv(LKIND_AT).i32Const(0xffff).op(Op.i32_and).i32Store(LKIND_AT);
    this.fk = Fk.UNKNOWN;
  }
  /** INC (dec false) / DEC of local X at `size`: R = result, CF kept (materialised), the rest lazy. */
  private incDec(dec: boolean, size: number): void {
    const f = this.f;
    if (!this.flagsDead) {
      f.localGet(FL).i32Const(~F.CF).op(Op.i32_and);
      this.pushCF();
      f.op(Op.i32_or).localSet(FL);
    }
    f.i32Const(1).localSet(Y);
    f.localGet(X).i32Const(1).op(dec ? Op.i32_sub : Op.i32_add).localSet(R);
    this.lazy(dec ? 2 : 1, X, Y, size * 8 - 1, F.ARITH & ~F.CF);
    this.known(dec ? Fk.DEC : Fk.INC, size * 8 - 1);
  }
  /** Two-operand IMUL of locals X and Y at `size` (2 or 4): R = the product's low part, CF = OF = it does not fit. */
  private imul(size: number): void {
    const f = this.f;
    if (size === 4) {
      f.localGet(X).op(Op.i64_extend_i32_s).localGet(Y).op(Op.i64_extend_i32_s).op(Op.i64_mul).localTee(P64);
      f.op(Op.i32_wrap_i64).localSet(R);
      f.localGet(P64).localGet(R).op(Op.i64_extend_i32_s).op(Op.i64_ne).localSet(Y);
    } else {
      f.localGet(X).op(Op.i32_extend16_s).localGet(Y).op(Op.i32_extend16_s).op(Op.i32_mul).localTee(V);
      f.localGet(V).op(Op.i32_extend16_s).op(Op.i32_ne).localSet(Y);
      f.localGet(V).i32Const(0xffff).op(Op.i32_and).localSet(R);
    }
    this.resultFlags(size * 8 - 1, Y, Y);
    this.fk = Fk.UNKNOWN;
  }
  /** CF and OF set as cpu.setFlagBits(CF|OF, ...) does: the flags materialised first. cf, of: locals holding 0/1. */
  private setCfOf(cf: number, of: number): void {
    const f = this.f;
    this.materialise();
    f.localGet(FL).i32Const(~(F.CF | F.OF)).op(Op.i32_and).localGet(cf).op(Op.i32_or);
    f.localGet(of).i32Const(11).op(Op.i32_shl).op(Op.i32_or).localSet(FL);
  }
  /** CF = local `cf` (0/1), as cpu.setFlagBits(CF, ...). */
  private setCf(cf: number): void {
    const f = this.f;
    this.materialise();
    f.localGet(FL).i32Const(~F.CF).op(Op.i32_and).localGet(cf).op(Op.i32_or).localSet(FL);
  }

  /**
   * Shift or rotate k (the ModRM reg field) of local V at `size`, by `count`
   * (a constant 0..31, or -1: CL & 31), as arith.ts shift(): V = the result.
   * A count of 0 changes nothing.
   */
  private shift(k: number, size: number, count: number): void {
    const f = this.f;
    if (count === 0) return;
    const bits = size * 8;
    const top = bits - 1;
    const mask = bits === 32 ? -1 : (1 << bits) - 1;
    if (count < 0) {
      f.localGet(R0 + 1).i32Const(31).op(Op.i32_and).localTee(A1).if();
    } else f.i32Const(count).localSet(A1);
    const c = (): void => {
      if (count > 0) f.i32Const(count);
      else f.localGet(A1);
    };
    // V holds x (already masked to the width)
    if (k === 0 || k === 1) {
      // ROL/ROR by c & top: R, then CF/OF
      if (count > 0) f.i32Const(count & top);
      else f.localGet(A1).i32Const(top).op(Op.i32_and);
      f.localSet(A2);
      // two shifts and an OR, not i32.rotl/rotr: V8's baseline compiler
      // calls out to C for those (the optimiser makes this a rotate again).
      // Wasm takes shift counts mod 32, so a count of 0 gives x | x = x
      if (bits === 32) {
        // the count in A2, or its negation (32 - count, mod 32)
        const by = (negated: boolean): void => {
          if (count > 0) f.i32Const(negated ? -count & 31 : count & 31);
          else if (negated) f.i32Const(0).localGet(A2).op(Op.i32_sub);
          else f.localGet(A2);
        };
        f.localGet(V);
        by(k === 1);
        f.op(Op.i32_shl).localGet(V);
        by(k === 0);
        f.op(Op.i32_shr_u).op(Op.i32_or).localSet(R);
      }
      else {
        // c & top may be 0: then r = x (the shifts below give x | x)
        f.localGet(V).localGet(A2).op(k === 0 ? Op.i32_shl : Op.i32_shr_u);
        f.localGet(V).i32Const(bits).localGet(A2).op(Op.i32_sub).op(k === 0 ? Op.i32_shr_u : Op.i32_shl).op(Op.i32_or);
        f.i32Const(mask).op(Op.i32_and).localSet(R);
      }
      if (!this.flagsDead) {
        if (k === 0) {
          f.localGet(R).i32Const(1).op(Op.i32_and).localSet(X);
          f.localGet(R).i32Const(top).op(Op.i32_shr_u).localGet(X).op(Op.i32_xor).i32Const(1).op(Op.i32_and).localSet(Y);
        } else {
          f.localGet(R).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(X);
          f.localGet(R).i32Const(top - 1).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localGet(X).op(Op.i32_xor).localSet(Y);
        }
        this.setCfOf(X, Y);
      }
      f.localGet(R).localSet(V);
    } else if (k === 2 || k === 3) {
      // RCL/RCR: count mod (bits + 1) below 32 bits; 0 changes nothing
      c();
      if (bits !== 32) f.i32Const(bits + 1).op(Op.i32_rem_u);
      f.localTee(A2).if();
      this.pushCF();
      f.localSet(X);
      f.localGet(V).localSet(R);
      f.loop();
      if (k === 2) {
        f.localGet(R).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(A3);
        f.localGet(R).i32Const(1).op(Op.i32_shl).localGet(X).op(Op.i32_or).i32Const(mask).op(Op.i32_and).localSet(R);
      } else {
        f.localGet(R).i32Const(1).op(Op.i32_and).localSet(A3);
        f.localGet(R).i32Const(1).op(Op.i32_shr_u).localGet(X).i32Const(top).op(Op.i32_shl).op(Op.i32_or).i32Const(mask).op(Op.i32_and).localSet(R);
      }
      f.localGet(A3).localSet(X);
      f.localGet(A2).i32Const(1).op(Op.i32_sub).localTee(A2).brIf(0);
      f.end();
      f.localGet(V).localGet(R).op(Op.i32_xor).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(Y);
      this.setCfOf(X, Y);
      f.localGet(R).localSet(V);
      f.end();
    } else {
      if (k === 7) {
        // SAR: sign-extended to 32 bits first
        f.localGet(V).i32Const(31 - top).op(Op.i32_shl).i32Const(31 - top).op(Op.i32_shr_s);
      } else f.localGet(V);
      c();
      f.i32Const(1).op(Op.i32_sub).op(k === 5 ? Op.i32_shr_u : k === 7 ? Op.i32_shr_s : Op.i32_shl).localSet(A3); // src
      f.localGet(A3).i32Const(1).op(k === 5 ? Op.i32_shr_u : k === 7 ? Op.i32_shr_s : Op.i32_shl).i32Const(mask).op(Op.i32_and).localSet(R);
      if (!this.flagsDead) {
        if (k === 5 || k === 7) f.localGet(A3).i32Const(1).op(Op.i32_and).localSet(X);
        else f.localGet(A3).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(X);
        if (k === 7) f.i32Const(0).localSet(Y);
        else if (k === 5) f.localGet(A3).localGet(R).op(Op.i32_xor).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(Y);
        else f.localGet(X).localGet(R).i32Const(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).op(Op.i32_xor).localSet(Y);
        this.resultFlags(top, X, Y);
      }
      f.localGet(R).localSet(V);
    }
    if (count < 0) f.end();
    this.fk = Fk.UNKNOWN;
  }

  /**
   * PAUSE (F3 90) takes PAUSE_CYCLES instruction times but never past the
   * slice end (cpu.ts pause()): `left` as the interpreter sees it here is
   * LEFT plus what the run paid ahead, this instruction included. If the
   * slice ends with it, leave after it.
   */
  private pause(next: number): void {
    const f = this.f;
    const ahead = this.runLen - this.done; // this instruction and the rest of the run
    // extra = min(PAUSE_CYCLES - 1, left - 1)
    f.localGet(LEFT).i32Const(ahead - 1).op(Op.i32_add).localTee(A1);
    f.i32Const(PAUSE_CYCLES - 1).localGet(A1).i32Const(PAUSE_CYCLES - 1).op(Op.i32_lt_s).op(Op.select).localTee(A1);
    f.i32Const(0).op(Op.i32_gt_s).if();
    f.localGet(LEFT).localGet(A1).op(Op.i32_sub).localSet(LEFT);
    f.end();
    this.count();
    f.localGet(LEFT).i32Const(0).op(Op.i32_lt_s);
    this.exitAfterIf(next, false);
  }

  /**
   * An x87 instruction or FXSAVE/FXRSTOR: the tier's imported FPU
   * (src/jit/fpu-call.ts) runs it with the operand's segment and offset, and
   * says how to go on: FPU_ON, FPU_BEFORE (the interpreter runs it: a fault,
   * CR0.EM or TS, a pending x87 error, an encoding it refuses), FPU_AFTER (it
   * wrote a page holding compiled code); with FPU_OUT, what FCOMI puts in
   * EFLAGS or FNSTSW in AX.
   */
  private fpu(ins: Insn, next: number): void {
    const f = this.f;
    const m = this.mem[ins.at];
    const flags = fpuSetsFlags(ins.key, m);
    // the flags FCOMI leaves alone are the current ones, not a lazy state
    if (flags) this.materialise();
    if (m >> 6 !== 3) this.ea(ins.at, false);
    else f.i32Const(0);
    f.localSet(A2);
    const seg = m >> 6 !== 3 ? this.eaSeg : 0;
    f.i32Const(ins.key | (seg << FPU_SEG_SHIFT) | (ins.o16 ? FPU_O16 : 0)).i32Const(m).localGet(A2).i32Const(this.curEip);
    f.call(this.fpuFunc);
    this.afterCall(next, () => {
      if (flags) {
        f.localGet(A1).i32Const(FPU_OUT).op(Op.i32_and).if();
        f.localGet(FL).i32Const(~(F.ZF | F.PF | F.CF)).op(Op.i32_and);
        f.localGet(A1).i32Const(16).op(Op.i32_shr_u).i32Const(F.ZF | F.PF | F.CF).op(Op.i32_and).op(Op.i32_or).localSet(FL);
        f.end();
        this.fk = Fk.UNKNOWN;
      } else if (ins.key === 0xdf && m === 0xe0) {
        // FNSTSW AX
        f.localGet(A1).i32Const(FPU_OUT).op(Op.i32_and).if();
        f.localGet(R0).i32Const(~0xffff).op(Op.i32_and).localGet(A1).i32Const(16).op(Op.i32_shr_u).op(Op.i32_or).localSet(R0);
        f.end();
      }
    });
  }

  /**
   * MOV ES/DS/FS/GS, r/m16: the tier's imported segment load
   * (src/jit/sys-call.ts) loads it as the interpreter does and answers
   * FPU_ON, FPU_BEFORE (a fault: the interpreter runs it and raises it) or
   * FPU_AFTER (what the regions assume of the segments changed, or the
   * descriptor's accessed bit was written into a page holding code).
   */
  private segLoad(o: number, sreg: number, next: number): void {
    const f = this.f;
    this.readRm(o, 2, V, false);
    f.i32Const(sreg).localGet(V).call(this.segFunc);
    this.afterCall(next);
  }

  /**
   * After an import's call (its answer on the stack, kept in A1): FPU_BEFORE
   * leaves before the instruction, FPU_AFTER after it, FPU_ON goes on;
   * `done` takes the answer's FPU_OUT part once the instruction is done.
   */
  private afterCall(next: number, done?: () => void): void {
    const f = this.f;
    f.localTee(A1).i32Const(3).op(Op.i32_and).i32Const(FPU_BEFORE).op(Op.i32_eq);
    this.exitIf();
    done?.();
    this.count();
    f.localGet(A1).i32Const(FPU_AFTER).op(Op.i32_and);
    this.exitAfterIf(next);
  }

  /** CLI/STI: leave before the instruction unless CPL <= IOPL. */
  private ioplCheck(): void {
    const f = this.f;
    f.localGet(FL).i32Const(12).op(Op.i32_shr_u).i32Const(3).op(Op.i32_and);
    f.i32Const(0).i32Load(Layout.JIT + Xchg.CPL * 4).op(Op.i32_lt_u);
    this.exitIf();
  }

  /**
   * After an instruction that may have set IF (counted): leave for `next` if
   * IF is set and an interrupt is pending, so the interpreter delivers it
   * (after the STI's shadow: JS sets cpu.inhibitIrq from Xchg.SHADOW).
   */
  private leaveIfIntr(next: number): void {
    const f = this.f;
    f.localGet(FL).i32Const(9).op(Op.i32_shr_u).i32Const(0).i32Load(Layout.JIT + Xchg.INTR * 4).op(Op.i32_and).i32Const(1).op(Op.i32_and);
    this.exitAfterIf(next, false);
  }

  /** Leave for `next` (the current instruction done and counted) when the condition on the stack is true. */
  private exitAfterIf(next: number, unlikely = true): void {
    const f = this.f;
    if (unlikely) f.ifUnlikely();
    else f.if();
    this.extra++;
    f.i32Const(next).localSet(EIP);
    this.refund();
    this.exit();
    this.extra--;
    f.end();
  }

  /** SHLD (left) / SHRD of local V by local A1 (1..31) with bits from local `src`: V = the result. */
  private shiftDouble(left: boolean, src: number): void {
    const f = this.f;
    if (left) {
      f.localGet(V).localGet(A1).op(Op.i32_shl).localGet(src).i32Const(32).localGet(A1).op(Op.i32_sub).op(Op.i32_shr_u).op(Op.i32_or).localSet(R);
      f.localGet(V).i32Const(32).localGet(A1).op(Op.i32_sub).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(X);
    } else {
      f.localGet(V).localGet(A1).op(Op.i32_shr_u).localGet(src).i32Const(32).localGet(A1).op(Op.i32_sub).op(Op.i32_shl).op(Op.i32_or).localSet(R);
      f.localGet(V).localGet(A1).i32Const(1).op(Op.i32_sub).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(X);
    }
    f.localGet(V).localGet(R).op(Op.i32_xor).i32Const(31).op(Op.i32_shr_u).localSet(Y);
    this.resultFlags(31, X, Y);
    f.localGet(R).localSet(V);
    this.fk = Fk.UNKNOWN;
  }

  /** BT/BTS/BTR/BTC: 0F A3/AB/B3/BB (bit offset in a register) and 0F BA /4../7 (immediate). */
  private bitTest(key: number, o: number, size: number): void {
    const f = this.f;
    const mem = this.mem;
    const m = mem[o];
    const reg = (m >> 3) & 7;
    const kind = key === 0x1ba ? reg - 4 : key === 0x1a3 ? 0 : key === 0x1ab ? 1 : key === 0x1b3 ? 2 : 3;
    const bits = size * 8;
    if (key === 0x1ba || m >> 6 === 3) {
      this.readRm(o, size, V, kind !== 0);
      if (key === 0x1ba) f.i32Const(mem[o + modrmLen(mem, o)] & (bits - 1));
      else {
        this.regGet(reg, size);
        f.i32Const(bits - 1).op(Op.i32_and);
      }
      f.localSet(A1);
    } else {
      // memory addressed by the full signed bit offset
      this.ea(o);
      if (size === 4) f.localGet(R0 + reg).i32Const(5).op(Op.i32_shr_s).i32Const(2).op(Op.i32_shl);
      else f.localGet(R0 + reg).op(Op.i32_extend16_s).i32Const(4).op(Op.i32_shr_s).i32Const(1).op(Op.i32_shl);
      f.op(Op.i32_add).localSet(TA);
      this.lookup(size, kind !== 0);
      this.load(size);
      f.localSet(V);
      f.localGet(R0 + reg).i32Const(bits - 1).op(Op.i32_and).localSet(A1);
    }
    f.localGet(V).localGet(A1).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).localSet(X);
    this.setCf(X);
    if (kind === 0) return;
    f.i32Const(1).localGet(A1).op(Op.i32_shl).localSet(Y);
    if (kind === 1) f.localGet(V).localGet(Y).op(Op.i32_or);
    else if (kind === 2) f.localGet(V).localGet(Y).i32Const(-1).op(Op.i32_xor).op(Op.i32_and);
    else f.localGet(V).localGet(Y).op(Op.i32_xor);
    f.localSet(V);
    this.writeRm(o, size, V);
  }

  /** MUL IMUL DIV IDIV (F6/F7 /4../7) of local V at `size`; a divide error exits before anything changes. */
  private mulDiv(k: number, size: number): void {
    const f = this.f;
    if (k === 4 || k === 5) {
      if (size === 1) {
        this.reg8Get(0);
        if (k === 5) f.op(Op.i32_extend8_s);
        f.localGet(V);
        if (k === 5) f.op(Op.i32_extend8_s);
        f.op(Op.i32_mul).localSet(A1);
        this.regSet(0, 2, A1);
        if (k === 4) f.localGet(A1).i32Const(0xff).op(Op.i32_gt_u).localSet(Y);
        else f.localGet(A1).localGet(A1).op(Op.i32_extend8_s).op(Op.i32_ne).localSet(Y);
        f.localGet(A1).i32Const(0xff).op(Op.i32_and).localSet(R);
        this.resultFlags(7, Y, Y);
      } else if (size === 2) {
        this.regGet(0, 2);
        if (k === 5) f.op(Op.i32_extend16_s);
        f.localGet(V);
        if (k === 5) f.op(Op.i32_extend16_s);
        f.op(Op.i32_mul).localSet(A1);
        this.regSet(0, 2, A1);
        f.localGet(A1).i32Const(16).op(Op.i32_shr_u).localSet(A2);
        this.regSet(2, 2, A2);
        if (k === 4) f.localGet(A1).i32Const(0xffff).op(Op.i32_gt_u).localSet(Y);
        else f.localGet(A1).localGet(A1).op(Op.i32_extend16_s).op(Op.i32_ne).localSet(Y);
        f.localGet(A1).i32Const(0xffff).op(Op.i32_and).localSet(R);
        this.resultFlags(15, Y, Y);
      } else {
        const ext = k === 4 ? Op.i64_extend_i32_u : Op.i64_extend_i32_s;
        f.localGet(R0).op(ext).localGet(V).op(ext).op(Op.i64_mul).localTee(P64).op(Op.i32_wrap_i64).localSet(R0);
        f.localGet(P64).i64Const(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64).localSet(R0 + 2);
        if (k === 4) f.localGet(R0 + 2).i32Const(0).op(Op.i32_ne).localSet(Y);
        else f.localGet(R0 + 2).localGet(R0).i32Const(31).op(Op.i32_shr_s).op(Op.i32_ne).localSet(Y);
        f.localGet(R0).localSet(R);
        this.resultFlags(31, Y, Y);
      }
      this.fk = Fk.UNKNOWN;
      return;
    }
    // DIV (6) / IDIV (7): the flags are left alone
    const signed = k === 7;
    if (size === 1 || size === 2) {
      const ext = size === 1 ? Op.i32_extend8_s : Op.i32_extend16_s;
      // A1 = divisor, A2 = dividend
      f.localGet(V);
      if (signed) f.op(ext);
      f.localTee(A1).op(Op.i32_eqz);
      this.exitIf();
      if (size === 1) {
        this.regGet(0, 2);
        if (signed) f.op(Op.i32_extend16_s);
      } else {
        f.localGet(R0 + 2).i32Const(16).op(Op.i32_shl).localGet(R0).i32Const(0xffff).op(Op.i32_and).op(Op.i32_or);
      }
      f.localSet(A2);
      if (signed && size === 2) {
        // INT32_MIN / -1 would trap in Wasm (and overflows the quotient anyway)
        f.localGet(A2).i32Const(-0x80000000).op(Op.i32_eq).localGet(A1).i32Const(-1).op(Op.i32_eq).op(Op.i32_and);
        this.exitIf();
      }
      f.localGet(A2).localGet(A1).op(signed ? Op.i32_div_s : Op.i32_div_u).localTee(A3);
      if (signed) f.localGet(A3).op(ext).op(Op.i32_ne);
      else f.i32Const(size === 1 ? 0xff : 0xffff).op(Op.i32_gt_u);
      this.exitIf();
      f.localGet(A2).localGet(A1).op(signed ? Op.i32_rem_s : Op.i32_rem_u).localSet(Y);
      if (size === 1) {
        f.localGet(A3).i32Const(0xff).op(Op.i32_and).localGet(Y).i32Const(0xff).op(Op.i32_and).i32Const(8).op(Op.i32_shl).op(Op.i32_or).localSet(A3);
        this.regSet(0, 2, A3);
      } else {
        this.regSet(0, 2, A3);
        this.regSet(2, 2, Y);
      }
      return;
    }
    f.localGet(V).op(Op.i32_eqz);
    this.exitIf();
    // P64 = EDX:EAX
    f.localGet(R0 + 2).op(Op.i64_extend_i32_u).i64Const(32n).op(Op.i64_shl).localGet(R0).op(Op.i64_extend_i32_u).op(Op.i64_or).localSet(P64);
    if (!signed) {
      // the quotient fits in 32 bits iff EDX < divisor
      f.localGet(R0 + 2).localGet(V).op(Op.i32_ge_u);
      this.exitIf();
      f.localGet(P64).localGet(V).op(Op.i64_extend_i32_u).op(Op.i64_div_u).op(Op.i32_wrap_i64).localSet(A3);
      f.localGet(P64).localGet(V).op(Op.i64_extend_i32_u).op(Op.i64_rem_u).op(Op.i32_wrap_i64).localSet(R0 + 2);
      f.localGet(A3).localSet(R0);
      return;
    }
    // INT64_MIN / -1 traps in Wasm (and overflows the quotient)
    f.localGet(V).i32Const(-1).op(Op.i32_eq).localGet(P64).i64Const(-0x8000000000000000n).op(Op.i64_eq).op(Op.i32_and);
    this.exitIf();
    f.localGet(P64).localGet(V).op(Op.i64_extend_i32_s).op(Op.i64_div_s).localTee(Q64);
    f.op(Op.i32_wrap_i64).op(Op.i64_extend_i32_s).localGet(Q64).op(Op.i64_ne);
    this.exitIf();
    f.localGet(P64).localGet(V).op(Op.i64_extend_i32_s).op(Op.i64_rem_s).op(Op.i32_wrap_i64).localSet(R0 + 2);
    f.localGet(Q64).op(Op.i32_wrap_i64).localSet(R0);
  }

  /** String instructions: one element, or (REP MOVS/STOS/LODS) a chunk of up to REP_CHUNK elements counted as one instruction. */
  private string(ins: Insn, v: number): void {
    const f = this.f;
    const key = ins.key;
    const size = key & 1 ? v : 1;
    const kind = (key & ~1) - 0xa4; // 0 MOVS, 2 CMPS, 6 STOS, 8 LODS, 10 SCAS
    const srcB = this.segOvr >= 0 ? SEG_BASE_AT[this.segOvr] : DSB;
    const useSrc = kind === 0 || kind === 2 || kind === 8;
    const useDst = kind !== 8;
    // A3 = the step: -size with DF set
    f.i32Const(-size).i32Const(size).localGet(FL).i32Const(F.DF).op(Op.i32_and).op(Op.select).localSet(A3);
    const step = (r: number): void => {
      f.localGet(R0 + r).localGet(A3).op(Op.i32_add).localSet(R0 + r);
    };
    if (ins.rep === 0) {
      if (useSrc) {
        f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localSet(TA);
        this.lookup(size, false);
        this.load(size);
        f.localSet(kind === 2 ? X : V);
      }
      if (useDst) {
        f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localSet(TA);
        this.lookup(size, kind === 0 || kind === 6);
      }
      if (kind === 0) this.store(size, V);
      else if (kind === 6) {
        this.regGet(0, size);
        f.localSet(V);
        this.store(size, V);
      } else if (kind === 8) this.regSet(0, size, V);
      else {
        if (kind === 10) {
          this.regGet(0, size);
          f.localSet(X);
        }
        this.load(size);
        f.localSet(Y);
        this.alu(7, size * 8 - 1);
      }
      if (useSrc) step(6);
      if (useDst) step(7);
      return;
    }
    if (kind === 2 || kind === 10) {
      this.repCompare(ins, size, srcB, step);
      return;
    }
    // REP MOVS/STOS/LODS: as string.ts, one execution does min(ECX, REP_CHUNK) elements and
    // counts as one instruction; with ECX left it runs again. All pages are checked first.
    f.localGet(R0 + 1).if();
    this.extra++;
    f.localGet(R0 + 1).i32Const(REP_CHUNK).localGet(R0 + 1).i32Const(REP_CHUNK).op(Op.i32_lt_u).op(Op.select).localSet(A1);
    if (useSrc) {
      f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localSet(B1);
      this.checkRange(size, false);
    }
    if (useDst) {
      f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localSet(B1);
      this.checkRange(size, true);
    }
    const xlate = (): void => {
      f.localGet(TA).i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB);
      f.i32Const(~0xfff).op(Op.i32_and).localGet(TA).op(Op.i32_xor).localSet(TH);
    };
    if (kind !== 8) {
      // forwards (DF = 0), and for STOS a value that is one byte repeated
      // (zeroing above all): a page's part of the chunk at a time with
      // memory.copy / memory.fill; backwards, other values and LODS go
      // element by element below
      f.localGet(FL).i32Const(F.DF).op(Op.i32_and).op(Op.i32_eqz);
      if (kind === 6) {
        this.regGet(0, size);
        f.localSet(V);
        if (size > 1) {
          f.localGet(V).i32Const(0xff).op(Op.i32_and).i32Const(size === 2 ? 0x101 : 0x01010101).op(Op.i32_mul).localGet(V).op(Op.i32_eq).op(Op.i32_and);
        }
      }
      f.if();
      this.extra++;
      f.localGet(A1).i32Const(size === 1 ? 0 : size === 2 ? 1 : 2).op(Op.i32_shl).localSet(A2); // bytes left
      f.loop();
      // R = the bytes up to the first page end of the destination (and source)
      f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localTee(TA).localSet(B2);
      xlate();
      f.localGet(TH).localSet(Y);
      f.i32Const(4096).localGet(B2).i32Const(0xfff).op(Op.i32_and).op(Op.i32_sub).localSet(R);
      if (kind === 0) {
        f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localTee(TA).localSet(B1);
        xlate();
        f.localGet(TH).localSet(X);
        f.i32Const(4096).localGet(B1).i32Const(0xfff).op(Op.i32_and).op(Op.i32_sub).localTee(C1);
        f.localGet(R).localGet(C1).localGet(R).op(Op.i32_lt_u).op(Op.select).localSet(R);
      }
      f.localGet(A2).localGet(R).localGet(A2).localGet(R).op(Op.i32_lt_u).op(Op.select).localSet(R);
      if (kind === 0) {
        // a destination ahead of the source within the part: the CPU's
        // element-by-element copy replicates, memory.copy would not
        f.localGet(Y).localGet(X).op(Op.i32_sub).localGet(R).op(Op.i32_lt_u).localGet(Y).localGet(X).op(Op.i32_ne).op(Op.i32_and);
        f.if();
        f.i32Const(0).localSet(C1);
        f.loop();
        f.localGet(X).localGet(C1).op(Op.i32_add).localSet(TH);
        this.load(size);
        f.localSet(V);
        f.localGet(Y).localGet(C1).op(Op.i32_add).localSet(TH);
        this.store(size, V);
        f.localGet(C1).i32Const(size).op(Op.i32_add).localTee(C1).localGet(R).op(Op.i32_lt_u).brIf(0);
        f.end();
        f.else();
        f.localGet(Y).i32Const(Layout.RAM).op(Op.i32_add).localGet(X).i32Const(Layout.RAM).op(Op.i32_add).localGet(R).memoryCopy();
        f.end();
        f.localGet(R0 + 6).localGet(R).op(Op.i32_add).localSet(R0 + 6);
      } else {
        f.localGet(Y).i32Const(Layout.RAM).op(Op.i32_add).localGet(V).localGet(R).memoryFill();
      }
      f.localGet(R0 + 7).localGet(R).op(Op.i32_add).localSet(R0 + 7);
      f.localGet(A2).localGet(R).op(Op.i32_sub).localTee(A2).brIf(0);
      f.end(); // loop
      f.else();
    }
    f.localGet(A1).localSet(A2);
    f.loop();
    if (useSrc) {
      f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localSet(TA);
      xlate();
      this.load(size);
      f.localSet(V);
    } else {
      this.regGet(0, size);
      f.localSet(V);
    }
    if (useDst) {
      f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localSet(TA);
      xlate();
      this.store(size, V);
    } else this.regSet(0, size, V);
    if (useSrc) step(6);
    if (useDst) step(7);
    f.localGet(A2).i32Const(1).op(Op.i32_sub).localTee(A2).brIf(0);
    f.end();
    if (kind !== 8) {
      this.extra--;
      f.end(); // if forwards
    }
    f.localGet(R0 + 1).localGet(A1).op(Op.i32_sub).localSet(R0 + 1);
    this.extra--;
    f.end();
    this.count();
    // elements left: this instruction again (a label of the region)
    f.localGet(R0 + 1).if();
    this.extra++;
    this.goTo(this.curEip);
    this.extra--;
    f.end();
  }

  /**
   * REPE/REPNE CMPS/SCAS: as string.ts, up to min(ECX, REP_CHUNK) elements
   * per execution (one instruction), stopping after the element whose ZF
   * ends the repeat; run again while ECX is not 0 and it did not stop. The
   * pages of the whole chunk are checked first (one the interpreter would
   * not reach only sends the instruction to the interpreter).
   */
  private repCompare(ins: Insn, size: number, srcB: number, step: (r: number) => void): void {
    const f = this.f;
    const cmps = ins.key < 0xae;
    const top = size * 8 - 1;
    f.i32Const(0).localSet(C1); // 1: stopped by ZF
    f.localGet(R0 + 1).if();
    this.extra++;
    f.localGet(R0 + 1).i32Const(REP_CHUNK).localGet(R0 + 1).i32Const(REP_CHUNK).op(Op.i32_lt_u).op(Op.select).localSet(A1);
    if (cmps) {
      f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localSet(B1);
      this.checkRange(size, false);
    }
    f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localSet(B1);
    this.checkRange(size, false);
    f.localGet(A1).localSet(A2);
    const xlate = (): void => {
      f.localGet(TA).i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB);
      f.i32Const(~0xfff).op(Op.i32_and).localGet(TA).op(Op.i32_xor).localSet(TH);
    };
    f.block().loop();
    if (cmps) {
      f.inv(srcB).localGet(R0 + 6).op(Op.i32_add).localSet(TA);
      xlate();
      this.load(size);
      f.localSet(X);
    } else {
      this.regGet(0, size);
      f.localSet(X);
    }
    f.inv(ESB).localGet(R0 + 7).op(Op.i32_add).localSet(TA);
    xlate();
    this.load(size);
    f.localSet(Y);
    this.alu(7, top);
    if (cmps) step(6);
    step(7);
    f.localGet(R0 + 1).i32Const(1).op(Op.i32_sub).localSet(R0 + 1);
    // REPE (F3) stops when ZF = 0, REPNE (F2) when ZF = 1
    f.localGet(R).i32Const(31 - top).op(Op.i32_shl);
    if (ins.rep === 0xf3) f.i32Const(0).op(Op.i32_ne);
    else f.op(Op.i32_eqz);
    f.if().i32Const(1).localSet(C1).br(2).end();
    f.localGet(A2).i32Const(1).op(Op.i32_sub).localTee(A2).brIf(0);
    f.end().end();
    this.extra--;
    f.end();
    this.count();
    this.fk = Fk.UNKNOWN; // ECX = 0 leaves the flags as they were
    f.localGet(R0 + 1).i32Const(0).op(Op.i32_ne).localGet(C1).op(Op.i32_eqz).op(Op.i32_and).if();
    this.extra++;
    this.goTo(this.curEip);
    this.extra--;
    f.end();
  }

  /**
   * Exit (before anything changes) unless all A1 elements of `size` bytes
   * from the linear address in B1, stepping by A3, are in pages the TLB
   * allows (for a store when `write`), none crosses a page, and the range
   * does not wrap.
   */
  private checkRange(size: number, write: boolean): void {
    const f = this.f;
    // B1 = lowest byte, B2 = highest byte
    f.localGet(A3).i32Const(0).op(Op.i32_lt_s).if();
    f.localGet(B1).localGet(A1).i32Const(1).op(Op.i32_sub).i32Const(size).op(Op.i32_mul).op(Op.i32_sub).localSet(B1);
    f.end();
    f.localGet(B1).localGet(A1).i32Const(size).op(Op.i32_mul).op(Op.i32_add).i32Const(1).op(Op.i32_sub).localTee(B2);
    f.localGet(B1).op(Op.i32_lt_u);
    if (size > 1) {
      // misaligned elements may straddle a page when the range spans pages
      f.localGet(B1).i32Const(size - 1).op(Op.i32_and).i32Const(0).op(Op.i32_ne);
      f.localGet(B1).localGet(B2).op(Op.i32_xor).i32Const(~0xfff).op(Op.i32_and).i32Const(0).op(Op.i32_ne).op(Op.i32_and).op(Op.i32_or);
    }
    this.exitIf();
    f.localGet(B1).i32Const(~0xfff).op(Op.i32_and).localSet(TA);
    f.block().loop();
    this.extra += 2;
    f.localGet(TA).i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB);
    f.inv(write ? WMASK : RMASK).op(Op.i32_and).i32Const(1).op(Op.i32_ne);
    // a page the TLB does not allow: through the miss tail, so that an empty
    // entry (a user buffer after a CR3 load) is refilled and the instruction
    // runs here again instead of element by element in the interpreter
    this.missIf(write);
    f.localGet(TA).localGet(B2).i32Const(~0xfff).op(Op.i32_and).op(Op.i32_eq).brIf(1);
    f.localGet(TA).i32Const(4096).op(Op.i32_add).localSet(TA).br(0);
    this.extra -= 2;
    f.end().end();
  }

  /**
   * Push local V: ESP -= 4, the dword at SS:ESP = V (exits first if the
   * store cannot be done here); `bytes` 2 writes only its low word (PUSH Sreg).
   */
  private push(bytes: 2 | 4 = 4): void {
    const f = this.f;
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_sub).inv(SSB).op(Op.i32_add).localSet(TA);
    this.lookup(4, true);
    this.store(bytes, V);
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_sub).localSet(R0 + 4);
  }

  /** V = the dword at SS:ESP, ESP += 4 (exits first if the read cannot be done here). */
  private pop(): void {
    const f = this.f;
    f.localGet(R0 + 4).inv(SSB).op(Op.i32_add).localSet(TA);
    this.lookup(4, false);
    this.load(4);
    f.localSet(V);
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_add).localSet(R0 + 4);
  }
}
