/**
 * The region compiler of the wasm tier: the code reachable from a set of entry
 * points on one guest page (32-bit code, flat segments) becomes one
 * WebAssembly function
 *
 *   run(pc, left) -> left
 *
 * over the machine's state memory (bus/layout.ts). Layout of the function:
 *
 *   prologue: guest registers and the flag state into locals
 *   block $exit
 *     loop $top
 *       block ... block            ; one per label (entry or branch target)
 *         br_table pc              ; dispatch to label `pc`
 *       end  <code of label 0>     ; falls through into label 1's code
 *       end  <code of label 1> ...
 *     end
 *   end
 *   epilogue: locals back to memory, EIP to the exchange area, return `left`
 *
 * A branch to a label in the region sets `pc` and branches to $top; anything
 * else (a branch off the page, RET to an unknown address, an instruction this
 * compiler does not take, a TLB miss or a page-crossing access, a store to a
 * page holding compiled code, `left` reaching 0) stores the EIP of the
 * instruction to run next and branches to $exit: the interpreter goes on from
 * there. Every exit happens before the instruction changes any state, so the
 * interpreter redoes it completely (and raises its faults itself).
 */
import { Layout } from '../../bus/layout.js';
import { F } from '../../cpu/consts.js';
import { FuncBuilder, I32, I64, ModuleBuilder, Op } from './encoder.js';

/** Int32 slots of the exchange area (Layout.JIT). */
export const enum Xchg {
  EIP = 0,
  FLAGS = 1,
  LOP = 2,
  LA = 3,
  LB = 4,
  LRES = 5,
  LTOP = 6,
  LMASK = 7,
  RMASK = 8,
  WMASK = 9,
  /** DS and SS bases (read-only for the region: it runs no segment loads). */
  DSB = 10,
  SSB = 11,
  /** ES, FS, GS bases, for segment-override prefixes (the region's `segs` says which it uses). */
  ESB = 12,
  FSB = 13,
  GSB = 14,
}

/** Most instructions in one region (a page holds at most 4096). */
const MAX_INSNS = 1500;

// locals of run()
const PC = 0,
  LEFT = 1,
  R0 = 2, // R0..R7: EAX..EDI
  FL = 10,
  LOP = 11,
  LA = 12,
  LB = 13,
  LRES = 14,
  LTOP = 15,
  LMASK = 16,
  RMASK = 17,
  WMASK = 18,
  EIP = 19,
  TA = 20,
  TE = 21,
  TH = 22,
  X = 23,
  Y = 24,
  R = 25,
  V = 26,
  DSB = 27,
  SSB = 28,
  ESB = 29,
  FSB = 30,
  GSB = 31,
  P64 = 32;
const N_I32_LOCALS = 30; // 2..31
/** The local holding each segment's base, by Seg (ES CS SS DS FS GS); CS is never used. */
const SEG_BASE_LOCAL = [ESB, -1, SSB, DSB, FSB, GSB];
/** Segment-override prefixes the regions take (CS is not one: reads through CS need its type checked). */
const SEG_PREFIX: Record<number, number> = { 0x26: 0, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5 };
/** The seven locals of the flag state, in helper-function parameter order. */
const FLAG_STATE = [FL, LOP, LA, LB, LRES, LTOP, LMASK];

// helper functions (indices in the module): flag bits from the lazy state
const GET_CF = 0,
  GET_ZF = 1,
  GET_SF = 2,
  GET_OF = 3,
  GET_PF = 4;

/** What the code knows at compile time about the flag state (as in blocks.ts). */
const enum Fk {
  UNKNOWN = 0,
  SUB32 = 1,
  LOGIC32 = 2,
  ADD32 = 3,
  INCDEC32 = 4,
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
}

export interface CompiledRegion {
  bytes: Uint8Array;
  /** Per page offset: label index + 1 where the region can be entered, 0 elsewhere. */
  entries: Int16Array;
  /** Instructions compiled (not counting the ones that only exit). */
  instructions: number;
  /** Bit per Seg of the segment-override prefixes used (the segments whose checks the region needs at entry). */
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

/**
 * Decode the instruction at page offset `off`. Returns the instruction with
 * key -1 when this compiler does not take it (prefixes, system instructions,
 * forms not written below, or one that crosses the page end).
 */
function decode(mem: Uint8Array, page: number, off: number, eipPage: number): Insn {
  const stop: Insn = { off, len: 0, key: -1, at: 0, target: 0, ends: true, seg: -1 };
  let o = page + off;
  const end = page + 4096;
  // enough bytes for the longest form compiled here (opcode 2 + ModRM/SIB/disp 6 + imm 4)
  if (end - o < 13) return stop;
  let seg = -1;
  const pfx = SEG_PREFIX[mem[o]];
  if (pfx !== undefined) {
    seg = pfx;
    o++;
  }
  let key = mem[o++];
  if (key === 0x0f) key = 0x100 | mem[o++];
  const at = o;
  let len = 0;
  let target = 0;
  let ends = false;
  const m = mem[o];
  const reg = (m >> 3) & 7;
  const mod = m >> 6;
  const next = (): number => (eipPage + (at - page) + len) | 0;
  if (key < 0x40 && (key & 7) < 6) {
    // ALU: r/m8,r8 r/m32,r32 r8,r/m8 r32,r/m32 AL,imm8 EAX,imm32
    const lo = key & 7;
    len = lo < 4 ? modrmLen(mem, o) : lo === 4 ? 1 : 4;
  } else if (key === 0x80 || key === 0x83) len = modrmLen(mem, o) + 1;
  else if (key === 0x81) len = modrmLen(mem, o) + 4;
  else if (key === 0x84 || key === 0x85 || (key >= 0x88 && key <= 0x8b)) len = modrmLen(mem, o);
  else if (key === 0x8d) {
    if (mod === 3) return stop;
    len = modrmLen(mem, o);
  } else if (key === 0xa8) len = 1;
  else if (key === 0xa9) len = 4;
  else if (key >= 0x40 && key <= 0x5f) len = 0;
  else if (key === 0x90 || key === 0x98 || key === 0x99) len = 0;
  else if (key >= 0xb0 && key <= 0xb7) len = 1;
  else if (key >= 0xb8 && key <= 0xbf) len = 4;
  else if (key === 0xc6 && reg === 0) len = modrmLen(mem, o) + 1;
  else if (key === 0xc7 && reg === 0) len = modrmLen(mem, o) + 4;
  else if (key === 0x69) len = modrmLen(mem, o) + 4;
  else if (key === 0x6b) len = modrmLen(mem, o) + 1;
  else if ((key >= 0x140 && key <= 0x14f) || (key >= 0x190 && key <= 0x19f)) len = modrmLen(mem, o);
  else if ((key === 0xf6 || key === 0xf7) && reg < 4) len = modrmLen(mem, o) + (reg < 2 ? (key === 0xf6 ? 1 : 4) : 0);
  else if (key === 0x1af || key === 0x1b6 || key === 0x1b7 || key === 0x1be || key === 0x1bf) len = modrmLen(mem, o);
  else if ((key === 0xc1 || key === 0xd1) && mod === 3 && (reg === 4 || reg === 5 || reg === 7)) {
    len = key === 0xc1 ? 2 : 1;
    if (key === 0xc1 && (mem[o + 1] & 31) === 0) return stop;
  } else if (key >= 0x70 && key <= 0x7f) {
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
  else return stop;
  const total = at - page - off + len;
  if (off + total > 4096 || total > 15) return stop;
  return { off, len: total, key, at, target, ends, seg };
}

/**
 * Compile the code reachable on page `page` (host offset) from the given
 * entry offsets. `eipPage` is the EIP of the page's first byte; `memPages` the
 * size of the state memory in 64 KiB pages.
 */
export function compileRegion(mem: Uint8Array, page: number, eipPage: number, entryOffsets: readonly number[], memPages: number): CompiledRegion | null {
  // ---- pass 1: decode everything reachable on the page ----
  const insns = new Map<number, Insn>();
  const labels = new Set<number>(entryOffsets);
  const work = [...entryOffsets];
  const inPage = (eip: number): number => {
    const d = (eip - eipPage) | 0;
    return d >= 0 && d < 4096 ? d : -1;
  };
  while (work.length > 0 && insns.size < MAX_INSNS) {
    const off = work.pop()!;
    if (insns.has(off)) continue;
    const ins = decode(mem, page, off, eipPage);
    insns.set(off, ins);
    if (ins.key < 0) continue;
    if (isBranch(ins.key)) {
      const t = inPage(ins.target);
      if (t >= 0) {
        labels.add(t);
        work.push(t);
      }
    }
    if (ins.key === 0xe8) {
      // the return address is where RET comes back to: a label
      const r = ins.off + ins.len;
      if (r < 4096) {
        labels.add(r);
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
      continue;
    }
    const p = insns.get(order[i - 1])!;
    if (p.key < 0 || p.ends || p.off + p.len !== off) labels.add(off);
  }
  const labelList = order.filter((o) => labels.has(o));
  const labelIndex = new Map<number, number>();
  labelList.forEach((o, i) => labelIndex.set(o, i));
  const nLabels = labelList.length;
  if (nLabels === 0) return null;
  const retLabels: [number, number][] = []; // [EIP, label] of each CALL's return address in the region
  for (const ins of insns.values()) {
    if (ins.key === 0xe8) {
      const r = ins.off + ins.len;
      const li = labelIndex.get(r);
      if (li !== undefined && !retLabels.some((x) => x[1] === li)) retLabels.push([(eipPage + r) | 0, li]);
    }
  }

  // ---- pass 2: emit ----
  const mb = new ModuleBuilder();
  mb.importMemory('env', 'mem', memPages, memPages);
  emitFlagHelpers(mb);
  const f = mb.func([I32, I32], [I32]);
  for (let i = 0; i < N_I32_LOCALS; i++) f.local(I32);
  f.local(I64);
  mb.export('run', f);
  // prologue
  for (let r = 0; r < 8; r++) f.i32Const(0).i32Load(Layout.REGS + r * 4).localSet(R0 + r);
  const xo = (slot: number): number => Layout.JIT + slot * 4;
  const xl: [number, number][] = [
    [Xchg.FLAGS, FL],
    [Xchg.LOP, LOP],
    [Xchg.LA, LA],
    [Xchg.LB, LB],
    [Xchg.LRES, LRES],
    [Xchg.LTOP, LTOP],
    [Xchg.LMASK, LMASK],
    [Xchg.RMASK, RMASK],
    [Xchg.WMASK, WMASK],
    [Xchg.DSB, DSB],
    [Xchg.SSB, SSB],
    [Xchg.ESB, ESB],
    [Xchg.FSB, FSB],
    [Xchg.GSB, GSB],
  ];
  for (const [slot, l] of xl) f.i32Const(0).i32Load(xo(slot)).localSet(l);
  f.block().loop();
  for (let i = 0; i < nLabels; i++) f.block();
  f.localGet(PC).brTable(
    labelList.map((_, i) => i),
    nLabels + 1,
  );
  const e = new Emitter(f, mem, nLabels, labelIndex, eipPage, retLabels);
  // compiled instructions from each label to the next
  const runLen = new Array<number>(nLabels).fill(0);
  {
    let l = -1;
    for (const off of order) {
      if (labels.has(off)) l++;
      if (insns.get(off)!.key >= 0) runLen[l]++;
    }
  }
  let compiled = 0;
  let li = -1;
  for (let i = 0; i < order.length; i++) {
    const ins = insns.get(order[i])!;
    if (labels.has(ins.off)) {
      li++;
      f.end();
      e.startLabel(li, runLen[li], (eipPage + ins.off) | 0);
    }
    if (ins.key >= 0) compiled++;
    e.insn(ins);
    // falling through into an instruction that is not next in address order (or not decoded)
    if (!ins.ends && ins.key >= 0) {
      const nxt = ins.off + ins.len;
      const following = order[i + 1];
      if (following !== nxt) e.goTo((eipPage + nxt) | 0);
    }
  }
  f.end(); // loop
  f.end(); // block $exit
  // epilogue
  for (let r = 0; r < 8; r++) f.i32Const(0).localGet(R0 + r).i32Store(Layout.REGS + r * 4);
  f.i32Const(0).localGet(EIP).i32Store(xo(Xchg.EIP));
  for (const [slot, l] of xl.slice(0, 7)) f.i32Const(0).localGet(l).i32Store(xo(slot));
  f.localGet(LEFT);
  const entries = new Int16Array(4096);
  for (const o of entryOffsets) {
    const i = labelIndex.get(o);
    if (i !== undefined && insns.get(o)!.key >= 0) entries[o] = i + 1;
  }
  for (const [, i] of retLabels) entries[labelList[i]] = i + 1;
  let segs = 0;
  for (const ins of insns.values()) if (ins.key >= 0 && ins.seg >= 0) segs |= 1 << ins.seg;
  return { bytes: mb.encode(), entries, instructions: compiled, segs };
}

function isBranch(key: number): boolean {
  return (key >= 0x70 && key <= 0x7f) || (key >= 0x180 && key <= 0x18f) || key === 0xeb || key === 0xe9 || key === 0xe8;
}

/** getCF/getZF/getSF/getOF/getPF(flags, lop, la, lb, lres, ltop, lmask) -> 0 or 1, as cpu.ts computes them. */
function emitFlagHelpers(mb: ModuleBuilder): void {
  const P = [I32, I32, I32, I32, I32, I32, I32] as const;
  const [fl, lop, a, b, r, top, mask] = [0, 1, 2, 3, 4, 5, 6];
  const fixed = (h: FuncBuilder, bit: number, shift: number): void => {
    // if the bit is not lazy: (flags >> shift) & 1
    h.localGet(mask).i32Const(bit).op(Op.i32_and).op(Op.i32_eqz).if();
    h.localGet(fl).i32Const(shift).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).return();
    h.end();
  };
  // CF
  let h = mb.func(P, [I32]);
  fixed(h, F.CF, 0);
  h.localGet(lop).i32Const(1).op(Op.i32_eq).if();
  // ((a & b) | ((a | b) & ~r)) >>> top & 1
  h.localGet(a).localGet(b).op(Op.i32_and).localGet(a).localGet(b).op(Op.i32_or).localGet(r).i32Const(-1).op(Op.i32_xor).op(Op.i32_and).op(Op.i32_or);
  h.localGet(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).return();
  h.end();
  h.localGet(lop).i32Const(2).op(Op.i32_eq).if();
  // ((~a & b) | ((~a | b) & r)) >>> top & 1
  h.localGet(a).i32Const(-1).op(Op.i32_xor).localGet(b).op(Op.i32_and);
  h.localGet(a).i32Const(-1).op(Op.i32_xor).localGet(b).op(Op.i32_or).localGet(r).op(Op.i32_and).op(Op.i32_or);
  h.localGet(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).return();
  h.end();
  h.i32Const(0);
  // ZF: (r << (31 - top)) == 0
  h = mb.func(P, [I32]);
  fixed(h, F.ZF, 6);
  h.localGet(r).i32Const(31).localGet(top).op(Op.i32_sub).op(Op.i32_shl).op(Op.i32_eqz);
  // SF: (r >>> top) & 1
  h = mb.func(P, [I32]);
  fixed(h, F.SF, 7);
  h.localGet(r).localGet(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and);
  // OF
  h = mb.func(P, [I32]);
  fixed(h, F.OF, 11);
  h.localGet(lop).i32Const(1).op(Op.i32_eq).if();
  h.localGet(a).localGet(r).op(Op.i32_xor).localGet(b).localGet(r).op(Op.i32_xor).op(Op.i32_and);
  h.localGet(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).return();
  h.end();
  h.localGet(lop).i32Const(2).op(Op.i32_eq).if();
  h.localGet(a).localGet(b).op(Op.i32_xor).localGet(a).localGet(r).op(Op.i32_xor).op(Op.i32_and);
  h.localGet(top).op(Op.i32_shr_u).i32Const(1).op(Op.i32_and).return();
  h.end();
  h.i32Const(0);
  // PF: even number of ones in the low byte
  h = mb.func(P, [I32]);
  fixed(h, F.PF, 2);
  h.localGet(r).i32Const(0xff).op(Op.i32_and).op(Op.i32_popcnt).i32Const(1).op(Op.i32_and).i32Const(1).op(Op.i32_xor);
}

/** Emits the code of the instructions, keeping track of the block depth for branches. */
class Emitter {
  private label = 0;
  /** Structured blocks opened inside the current instruction. */
  private extra = 0;
  private fk: number = Fk.UNKNOWN;

  constructor(
    private readonly f: FuncBuilder,
    private readonly mem: Uint8Array,
    private readonly nLabels: number,
    private readonly labelIndex: Map<number, number>,
    private readonly eipPage: number,
    private readonly retLabels: [number, number][],
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
    f.i32Const(eip).localSet(EIP);
    f.localGet(LEFT).i32Const(runLen).op(Op.i32_lt_s);
    this.f.brIf(this.exitDepth);
    f.localGet(LEFT).i32Const(runLen).op(Op.i32_sub).localSet(LEFT);
  }

  /** Give back the instructions of the run not executed so far. */
  private refund(): void {
    const k = this.runLen - this.done;
    if (k !== 0) this.f.localGet(LEFT).i32Const(k).op(Op.i32_add).localSet(LEFT);
  }

  private get exitDepth(): number {
    return this.nLabels - 1 - this.label + 1 + this.extra;
  }
  private get topDepth(): number {
    return this.nLabels - 1 - this.label + this.extra;
  }
  /** Leave with EIP as it is in the EIP local (the run's count already settled). */
  private exit(): void {
    this.f.br(this.exitDepth);
  }
  /** Leave before the current instruction when the condition on the stack is true. */
  private exitIf(): void {
    const f = this.f;
    f.if();
    this.extra++;
    f.i32Const(this.curEip).localSet(EIP);
    this.refund();
    this.exit();
    this.extra--;
    f.end();
  }
  private jumpLabel(i: number): void {
    this.f.i32Const(i).localSet(PC).br(this.topDepth);
  }
  /** The current instruction has completed. */
  private count(): void {
    this.done++;
  }
  /** Continue at `eip`: a label of the region, or leave (after the current instruction, counted). */
  goTo(eip: number): void {
    this.refund();
    const d = (eip - this.eipPage) | 0;
    const i = d >= 0 && d < 4096 ? this.labelIndex.get(d) : undefined;
    if (i !== undefined) this.jumpLabel(i);
    else {
      this.f.i32Const(eip).localSet(EIP);
      this.exit();
    }
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
    if (seg) f.localGet(this.segOvr >= 0 ? SEG_BASE_LOCAL[this.segOvr] : ss ? SSB : DSB).op(Op.i32_add);
  }
  /**
   * TLB lookup of the address in TA for an access of `size` bytes: leaves the
   * host offset in TH, or exits (miss, no permission, page crossing, a store
   * to a page holding compiled code).
   */
  private lookup(size: number, write: boolean): void {
    const f = this.f;
    f.localGet(TA).i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB).localTee(TE);
    f.localGet(write ? WMASK : RMASK).op(Op.i32_and).i32Const(1).op(Op.i32_ne);
    if (size > 1) f.localGet(TA).i32Const(0xfff).op(Op.i32_and).i32Const(4096 - size).op(Op.i32_gt_u).op(Op.i32_or);
    this.exitIf();
    f.localGet(TE).i32Const(~0xfff).op(Op.i32_and).localGet(TA).op(Op.i32_xor).localSet(TH);
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
      if (size === 4) this.f.localGet(src).localSet(R0 + (m & 7));
      else this.reg8Set(m & 7, src);
      return;
    }
    this.store(size, src);
  }

  // ---- flags ----
  private lazy(op: number, a: number | null, b: number | null, top: number, mask: number = F.ARITH): void {
    const f = this.f;
    f.i32Const(op).localSet(LOP);
    if (a !== null) f.localGet(a).localSet(LA);
    else f.i32Const(0).localSet(LA);
    if (b !== null) f.localGet(b).localSet(LB);
    else f.i32Const(0).localSet(LB);
    f.localGet(R).localSet(LRES);
    f.i32Const(top).localSet(LTOP);
    f.i32Const(mask).localSet(LMASK);
  }
  /** Push CF (0 or 1), straight from the known producer where there is one. */
  private pushCF(): void {
    const f = this.f;
    if (this.fk === Fk.LOGIC32) f.i32Const(0);
    else if (this.fk === Fk.SUB32) f.localGet(LA).localGet(LB).op(Op.i32_lt_u);
    else if (this.fk === Fk.ADD32) f.localGet(LRES).localGet(LA).op(Op.i32_lt_u);
    else if (this.fk === Fk.INCDEC32) f.localGet(FL).i32Const(F.CF).op(Op.i32_and);
    else this.callFlag(GET_CF);
  }
  private callFlag(fn: number): void {
    for (const l of FLAG_STATE) this.f.localGet(l);
    this.f.call(fn);
  }
  /** setResultFlags(R, top, cf (local), of (local), af=0). */
  private resultFlags(top: number, cf: number, of: number): void {
    const f = this.f;
    f.i32Const(0).localSet(LOP);
    f.localGet(R).localSet(LRES);
    f.i32Const(top).localSet(LTOP);
    f.i32Const(F.ZF | F.SF | F.PF).localSet(LMASK);
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
    if (top !== 31) this.fk = Fk.UNKNOWN;
    else if (k === 0) this.fk = Fk.ADD32;
    else if (k === 5 || k === 7) this.fk = Fk.SUB32;
    else if (k === 1 || k === 4 || k === 6) this.fk = Fk.LOGIC32;
    else this.fk = Fk.UNKNOWN;
  }
  /** Push condition cc (0..15) as 0/1. */
  private cond(cc: number): void {
    const f = this.f;
    const c = cc >> 1;
    const fk = this.fk;
    let done = true;
    if (fk === Fk.SUB32 && c !== 0 && c !== 5) {
      if (c === 1) f.localGet(LA).localGet(LB).op(Op.i32_lt_u);
      else if (c === 2) f.localGet(LRES).op(Op.i32_eqz);
      else if (c === 3) f.localGet(LA).localGet(LB).op(Op.i32_le_u);
      else if (c === 4) f.localGet(LRES).i32Const(0).op(Op.i32_lt_s);
      else if (c === 6) f.localGet(LA).localGet(LB).op(Op.i32_lt_s);
      else f.localGet(LA).localGet(LB).op(Op.i32_le_s);
    } else if (fk === Fk.LOGIC32 && c !== 3 && c !== 5) {
      if (c === 0 || c === 1) f.i32Const(0);
      else if (c === 2) f.localGet(LRES).op(Op.i32_eqz);
      else if (c === 4 || c === 6) f.localGet(LRES).i32Const(0).op(Op.i32_lt_s);
      else f.localGet(LRES).i32Const(0).op(Op.i32_le_s);
    } else if ((fk === Fk.ADD32 || fk === Fk.INCDEC32) && (c === 2 || c === 4)) {
      if (c === 2) f.localGet(LRES).op(Op.i32_eqz);
      else f.localGet(LRES).i32Const(0).op(Op.i32_lt_s);
    } else done = false;
    if (!done) {
      switch (c) {
        case 0:
          this.callFlag(GET_OF);
          break;
        case 1:
          this.callFlag(GET_CF);
          break;
        case 2:
          this.callFlag(GET_ZF);
          break;
        case 3:
          this.callFlag(GET_CF);
          this.callFlag(GET_ZF);
          f.op(Op.i32_or);
          break;
        case 4:
          this.callFlag(GET_SF);
          break;
        case 5:
          this.callFlag(GET_PF);
          break;
        case 6:
          this.callFlag(GET_SF);
          this.callFlag(GET_OF);
          f.op(Op.i32_xor);
          break;
        default:
          this.callFlag(GET_ZF);
          this.callFlag(GET_SF);
          this.callFlag(GET_OF);
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
    const next = (eip + ins.len) | 0;
    const key = ins.key;
    const o = ins.at;
    const mem = this.mem;
    const m = mem[o];
    const reg = (m >> 3) & 7;
    if (key < 0x40) {
      const k = key >> 3;
      const lo = key & 7;
      const size = lo & 1 ? 4 : 1;
      const top = size === 4 ? 31 : 7;
      const store = k !== 7;
      if (lo < 2) {
        this.readRm(o, size, X, store);
        if (size === 4) f.localGet(R0 + reg).localSet(Y);
        else {
          this.reg8Get(reg);
          f.localSet(Y);
        }
        this.alu(k, top);
        if (store) this.writeRm(o, size, R);
      } else if (lo < 4) {
        if (size === 4) f.localGet(R0 + reg).localSet(X);
        else {
          this.reg8Get(reg);
          f.localSet(X);
        }
        this.readRm(o, size, Y, false);
        this.alu(k, top);
        if (store) {
          if (size === 4) f.localGet(R).localSet(R0 + reg);
          else this.reg8Set(reg, R);
        }
      } else {
        if (size === 4) f.localGet(R0).localSet(X).i32Const(imm32(mem, o)).localSet(Y);
        else {
          this.reg8Get(0);
          f.localSet(X).i32Const(mem[o]).localSet(Y);
        }
        this.alu(k, top);
        if (store) {
          if (size === 4) f.localGet(R).localSet(R0);
          else this.reg8Set(0, R);
        }
      }
    } else if (key === 0x80 || key === 0x81 || key === 0x83) {
      const size = key === 0x80 ? 1 : 4;
      const store = reg !== 7;
      const io = o + modrmLen(mem, o);
      const imm = key === 0x80 ? mem[io] : key === 0x81 ? imm32(mem, io) : imm8s(mem, io);
      this.readRm(o, size, X, store);
      f.i32Const(imm).localSet(Y);
      this.alu(reg, size === 4 ? 31 : 7);
      if (store) this.writeRm(o, size, R);
    } else if (key === 0x84 || key === 0x85 || key === 0xa8 || key === 0xa9) {
      const size = key & 1 ? 4 : 1;
      if (key >= 0xa8) {
        if (size === 4) f.localGet(R0).i32Const(imm32(mem, o)).op(Op.i32_and).localSet(R);
        else {
          this.reg8Get(0);
          f.i32Const(mem[o]).op(Op.i32_and).localSet(R);
        }
      } else {
        this.readRm(o, size, X, false);
        if (size === 4) f.localGet(R0 + reg);
        else this.reg8Get(reg);
        f.localGet(X).op(Op.i32_and).localSet(R);
      }
      this.lazy(0, null, null, size === 4 ? 31 : 7);
      this.fk = size === 4 ? Fk.LOGIC32 : Fk.UNKNOWN;
    } else if (key >= 0x88 && key <= 0x8b) {
      const size = key & 1 ? 4 : 1;
      if (key < 0x8a) {
        // r/m <- reg
        if (m >> 6 !== 3) {
          this.ea(o);
          f.localSet(TA);
          this.lookup(size, true);
        }
        if (size === 4) f.localGet(R0 + reg).localSet(V);
        else {
          this.reg8Get(reg);
          f.localSet(V);
        }
        this.writeRm(o, size, V);
      } else {
        this.readRm(o, size, V, false);
        if (size === 4) f.localGet(V).localSet(R0 + reg);
        else this.reg8Set(reg, V);
      }
    } else if (key === 0x8d) {
      this.ea(o, false);
      f.localSet(R0 + reg);
    } else if (key === 0xc6 || key === 0xc7) {
      const size = key === 0xc7 ? 4 : 1;
      const io = o + modrmLen(mem, o);
      f.i32Const(size === 4 ? imm32(mem, io) : mem[io]).localSet(V);
      if (m >> 6 !== 3) {
        this.ea(o);
        f.localSet(TA);
        this.lookup(size, true);
      }
      this.writeRm(o, size, V);
    } else if (key >= 0xb0 && key <= 0xb7) {
      f.i32Const(mem[o]).localSet(V);
      this.reg8Set(key & 7, V);
    } else if (key >= 0xb8 && key <= 0xbf) {
      f.i32Const(imm32(mem, o)).localSet(R0 + (key & 7));
    } else if (key >= 0x40 && key <= 0x4f) {
      // INC/DEC r32: CF kept (materialised into the flags), the rest lazy
      const r = R0 + (key & 7);
      f.localGet(FL).i32Const(~F.CF).op(Op.i32_and);
      this.pushCF();
      f.op(Op.i32_or).localSet(FL);
      f.localGet(r).localSet(X).i32Const(1).localSet(Y);
      f.localGet(X).i32Const(1).op(key < 0x48 ? Op.i32_add : Op.i32_sub).localTee(R).localSet(r);
      this.lazy(key < 0x48 ? 1 : 2, X, Y, 31, F.ARITH & ~F.CF);
      this.fk = Fk.INCDEC32;
    } else if (key >= 0x50 && key <= 0x57) {
      f.localGet(R0 + (key & 7)).localSet(V);
      this.push();
    } else if (key >= 0x58 && key <= 0x5f) {
      this.pop();
      f.localGet(V).localSet(R0 + (key & 7));
    } else if (key === 0x90) {
      // NOP
    } else if (key === 0x98) {
      f.localGet(R0).op(Op.i32_extend16_s).localSet(R0);
    } else if (key === 0x99) {
      f.localGet(R0).i32Const(31).op(Op.i32_shr_s).localSet(R0 + 2);
    } else if (key === 0x69 || key === 0x6b || key === 0x1af) {
      this.readRm(o, 4, X, false);
      const io = o + modrmLen(mem, o);
      if (key === 0x1af) f.localGet(R0 + reg);
      else f.i32Const(key === 0x69 ? imm32(mem, io) : imm8s(mem, io));
      f.op(Op.i64_extend_i32_s).localGet(X).op(Op.i64_extend_i32_s).op(Op.i64_mul).localTee(P64);
      f.op(Op.i32_wrap_i64).localTee(R).localSet(R0 + reg);
      // CF = OF = the product does not fit in 32 bits
      f.localGet(P64).localGet(R).op(Op.i64_extend_i32_s).op(Op.i64_ne).localSet(Y);
      this.resultFlags(31, Y, Y);
      this.fk = Fk.UNKNOWN;
    } else if (key === 0xf6 || key === 0xf7) {
      // TEST r/m,imm (/0, /1), NOT (/2), NEG (/3)
      const size = key === 0xf7 ? 4 : 1;
      const top = size === 4 ? 31 : 7;
      if (reg < 2) {
        const io = o + modrmLen(mem, o);
        this.readRm(o, size, X, false);
        f.localGet(X).i32Const(size === 4 ? imm32(mem, io) : mem[io]).op(Op.i32_and).localSet(R);
        this.lazy(0, null, null, top);
        this.fk = size === 4 ? Fk.LOGIC32 : Fk.UNKNOWN;
      } else if (reg === 2) {
        this.readRm(o, size, V, true);
        f.localGet(V).i32Const(-1).op(Op.i32_xor).localSet(V);
        this.writeRm(o, size, V);
      } else {
        this.readRm(o, size, Y, true);
        f.i32Const(0).localSet(X);
        this.alu(5, top); // R = 0 - v, flags as SUB(0, v)
        this.writeRm(o, size, R);
      }
    } else if (key >= 0x140 && key <= 0x14f) {
      // CMOVcc r32, r/m32: the source is read whatever the condition
      this.readRm(o, 4, V, false);
      this.cond(key & 15);
      f.if().localGet(V).localSet(R0 + reg).end();
    } else if (key >= 0x190 && key <= 0x19f) {
      // SETcc r/m8
      if (m >> 6 !== 3) {
        this.ea(o);
        f.localSet(TA);
        this.lookup(1, true);
      }
      this.cond(key & 15);
      f.localSet(V);
      this.writeRm(o, 1, V);
    } else if (key === 0x1b6 || key === 0x1b7 || key === 0x1be || key === 0x1bf) {
      const size = key === 0x1b6 || key === 0x1be ? 1 : 2;
      this.readRm(o, size, V, false);
      f.localGet(V);
      if (key === 0x1be) f.op(Op.i32_extend8_s);
      else if (key === 0x1bf) f.op(Op.i32_extend16_s);
      f.localSet(R0 + reg);
    } else if (key === 0xc1 || key === 0xd1) {
      const c = key === 0xd1 ? 1 : mem[o + 1] & 31;
      const r = R0 + (m & 7);
      // s = v shifted by c-1; r = s shifted by one more (as makeShift32 / blocks.ts)
      f.localGet(r).i32Const(c - 1).op(reg === 4 ? Op.i32_shl : reg === 5 ? Op.i32_shr_u : Op.i32_shr_s).localTee(V);
      f.i32Const(1).op(reg === 4 ? Op.i32_shl : reg === 5 ? Op.i32_shr_u : Op.i32_shr_s).localSet(R);
      if (reg === 4) {
        f.localGet(V).i32Const(31).op(Op.i32_shr_u).localSet(X); // cf
        f.localGet(X).localGet(R).i32Const(31).op(Op.i32_shr_u).op(Op.i32_xor).localSet(Y); // of
      } else {
        f.localGet(V).i32Const(1).op(Op.i32_and).localSet(X);
        if (reg === 5) f.localGet(V).localGet(R).op(Op.i32_xor).i32Const(31).op(Op.i32_shr_u).localSet(Y);
        else f.i32Const(0).localSet(Y);
      }
      this.resultFlags(31, X, Y);
      f.localGet(R).localSet(r);
      this.fk = Fk.UNKNOWN;
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
    } else if (key === 0xc3) {
      this.pop();
      this.count();
      this.refund();
      for (const [reip, li] of this.retLabels) {
        f.localGet(V).i32Const(reip).op(Op.i32_eq).if();
        this.extra++;
        this.jumpLabel(li);
        this.extra--;
        f.end();
      }
      f.localGet(V).localSet(EIP);
      this.exit();
      return;
    }
    this.count();
  }

  /** Push local V: ESP -= 4, the dword at SS:ESP = V (exits first if the store cannot be done here). */
  private push(): void {
    const f = this.f;
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_sub).localGet(SSB).op(Op.i32_add).localSet(TA);
    this.lookup(4, true);
    this.store(4, V);
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_sub).localSet(R0 + 4);
  }

  /** V = the dword at SS:ESP, ESP += 4 (exits first if the read cannot be done here). */
  private pop(): void {
    const f = this.f;
    f.localGet(R0 + 4).localGet(SSB).op(Op.i32_add).localSet(TA);
    this.lookup(4, false);
    this.load(4);
    f.localSet(V);
    f.localGet(R0 + 4).i32Const(4).op(Op.i32_add).localSet(R0 + 4);
  }
}
