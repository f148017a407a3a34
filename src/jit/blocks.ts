/**
 * Basic-block cache: straight runs of ordinary instructions are compiled into
 * one JS function each (`new Function`), which sets the per-instruction state
 * the interpreter would (instrStart, EIP after the opcode, prefix state) and
 * calls the interpreter's own handler at a call site of its own. V8 then sees
 * one monomorphic call per instruction, which it can inline, instead of the
 * interpreter's megamorphic table dispatch and prefix decoding.
 *
 * The interpreter stays the reference: blocks run the same handlers, so they
 * compute the same thing; what the block adds is only the decoding it did
 * ahead of time, and each of those decisions is checked or made safe:
 *
 *  - Blocks are keyed by host offset of their first byte, EIP and CS.D, and
 *    never cross a page. A page's blocks carry the page's generation; every
 *    write to a page holding blocks (CPU stores through TLB entries marked
 *    Tlb.CODE, the slow physical path, page-table A/D updates, DMA) bumps it,
 *    so a stale block is never entered and a block that writes into its own
 *    page stops after that instruction (self-modifying code).
 *  - After each instruction the block returns unless EIP is where the decoder
 *    expected it (a REP chunk restarting, a taken branch) and nothing asks the
 *    loop to look (intrLine, NMI, stop): interrupts stay between instructions.
 *  - Only instructions that cannot change CS, the mode, paging, EFLAGS.TF/IF
 *    or interrupt inhibition are compiled; a near branch ends the block; the
 *    rest always go through the interpreter.
 *  - Each instruction decrements `left` and stores instrStart before running,
 *    so a fault mid-block leaves the same state as the interpreter.
 *  - A block runs only when `left` covers all of it.
 */
import type { Cpu, CodeCache } from '../cpu/cpu.js';
import { OPS, OPS_0F } from '../cpu/ops/index.js';
import { ud, type Op } from '../cpu/ops/table.js';
import { alu, shift } from '../cpu/ops/arith.js';
import { F, Seg, Tlb } from '../cpu/consts.js';
import { DEFAULT_THRESHOLD } from './accel.js';
import { compileClock } from './wasm/host.js';

export type BlockFn = (cpu: Cpu) => void;
/** The CPU's register arrays, bound into compiled blocks as constants. */
export interface BlockRegs {
  readonly reg32: Int32Array;
  readonly reg16: Uint16Array;
  readonly reg8: Uint8Array;
  readonly segBase: Int32Array;
}

const CACHE_BITS = 16;
/** Compiled functions kept for reuse after their cache slot is taken (see BlockCache.spare). */
const SPARE_MAX = 1 << 15;
const CACHE_SIZE = 1 << CACHE_BITS;
const MAX_INSTR = 32;

// Per opcode (0x000-0x0ff one byte, 0x100-0x1ff after 0F): class | modrm flag | immediate kind.
const enum K {
  NO = 0, // never compiled
  PLAIN = 1, // runs inside a block
  BRANCH = 2, // near control transfer: ends the block
  CLASS = 3,
  MODRM = 4,
  REGONLY = 8, // touches neither memory nor I/O (any form)
  IMM_SHIFT = 4,
}
const enum Imm {
  NONE = 0,
  B = 1, // imm8
  V = 2, // imm16/32 by operand size
  W = 3, // imm16
  MOFFS = 4, // offset by address size
  GRP3 = 5, // F6/F7: TEST (reg 0/1) has an immediate of the operand's width
  ENTER = 6, // imm16 + imm8
}

const INFO = new Uint8Array(0x200);
function def(codes: number[], cls: number, modrm: boolean, imm: number, regOnly = false): void {
  for (const c of codes) INFO[c] = cls | (modrm ? K.MODRM : 0) | (regOnly ? K.REGONLY : 0) | (imm << K.IMM_SHIFT);
}
function range(a: number, b: number): number[] {
  const r: number[] = [];
  for (let i = a; i <= b; i++) r.push(i);
  return r;
}
for (let k = 0; k < 8; k++) {
  const b = k << 3;
  def([b, b + 1, b + 2, b + 3], K.PLAIN, true, Imm.NONE);
  def([b + 4], K.PLAIN, false, Imm.B, true);
  def([b + 5], K.PLAIN, false, Imm.V, true);
}
def([0x06, 0x0e, 0x16, 0x1e], K.PLAIN, false, Imm.NONE); // PUSH sreg
def([0x27, 0x2f, 0x37, 0x3f], K.PLAIN, false, Imm.NONE, true); // DAA DAS AAA AAS
def(range(0x40, 0x4f), K.PLAIN, false, Imm.NONE, true); // INC/DEC r
def(range(0x50, 0x5f), K.PLAIN, false, Imm.NONE); // PUSH/POP r
def([0x60, 0x61], K.PLAIN, false, Imm.NONE); // PUSHA POPA
def([0x68], K.PLAIN, false, Imm.V);
def([0x69], K.PLAIN, true, Imm.V);
def([0x6a], K.PLAIN, false, Imm.B);
def([0x6b], K.PLAIN, true, Imm.B);
def(range(0x70, 0x7f), K.BRANCH, false, Imm.B, true);
def([0x80, 0x82, 0x83], K.PLAIN, true, Imm.B);
def([0x81], K.PLAIN, true, Imm.V);
def(range(0x84, 0x8d), K.PLAIN, true, Imm.NONE); // TEST XCHG MOV, MOV r/m,sreg, LEA
def([0x8f], K.PLAIN, true, Imm.NONE); // POP r/m
def(range(0x90, 0x99), K.PLAIN, false, Imm.NONE, true); // XCHG, CBW, CWD
def([0x9c], K.PLAIN, false, Imm.NONE); // PUSHF
def([0x9e, 0x9f], K.PLAIN, false, Imm.NONE, true); // SAHF LAHF
def(range(0xa0, 0xa3), K.PLAIN, false, Imm.MOFFS);
def([0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf], K.PLAIN, false, Imm.NONE); // string ops
def([0xa8], K.PLAIN, false, Imm.B, true);
def([0xa9], K.PLAIN, false, Imm.V, true);
def(range(0xb0, 0xb7), K.PLAIN, false, Imm.B, true);
def(range(0xb8, 0xbf), K.PLAIN, false, Imm.V, true);
def([0xc0, 0xc1, 0xc6], K.PLAIN, true, Imm.B);
def([0xc7], K.PLAIN, true, Imm.V);
def([0xc2], K.BRANCH, false, Imm.W);
def([0xc3], K.BRANCH, false, Imm.NONE);
def([0xc8], K.PLAIN, false, Imm.ENTER);
def([0xc9], K.PLAIN, false, Imm.NONE); // LEAVE
def(range(0xd0, 0xd3), K.PLAIN, true, Imm.NONE);
def([0xd4, 0xd5], K.PLAIN, false, Imm.B, true); // AAM AAD
def([0xd7], K.PLAIN, false, Imm.NONE); // XLAT
def(range(0xe0, 0xe3), K.BRANCH, false, Imm.B, true); // LOOPcc JCXZ
def([0xe8, 0xe9], K.BRANCH, false, Imm.V);
def([0xeb], K.BRANCH, false, Imm.B, true);
def([0xf5, 0xf8, 0xf9, 0xfc, 0xfd], K.PLAIN, false, Imm.NONE, true); // CMC CLC STC CLD STD
def([0xf6, 0xf7], K.PLAIN, true, Imm.GRP3);
def([0xfe, 0xff], K.PLAIN, true, Imm.NONE); // the reg field is checked below
def(range(0x140, 0x14f), K.PLAIN, true, Imm.NONE); // CMOVcc
def(range(0x180, 0x18f), K.BRANCH, false, Imm.V, true); // Jcc rel16/32
def(range(0x190, 0x19f), K.PLAIN, true, Imm.NONE); // SETcc
def([0x1a3, 0x1ab, 0x1b3, 0x1bb, 0x1a5, 0x1ad, 0x1af, 0x1b0, 0x1b1, 0x1b6, 0x1b7, 0x1be, 0x1bf, 0x1bc, 0x1bd, 0x1c0, 0x1c1], K.PLAIN, true, Imm.NONE);
def([0x1ba, 0x1a4, 0x1ac], K.PLAIN, true, Imm.B);
def(range(0x1c8, 0x1cf), K.PLAIN, false, Imm.NONE, true); // BSWAP

/** The cpu.segSlow bits (read and write) of segment s. */
function segBits(s: number): number {
  return (1 << s) | (1 << (s + 8));
}

function isPrefix(b: number): boolean {
  return b === 0x66 || b === 0x67 || b === 0xf0 || b === 0xf2 || b === 0xf3 || b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65;
}
const SEG_OF_PREFIX: Record<number, number> = { 0x26: 0, 0x2e: 1, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5 };

/**
 * Compiled blocks, a direct-mapped cache keyed by (host offset, EIP, CS.D): the
 * CPU's code cache (cpu.ts CodeCache) for the `blocks` tier.
 */
export class BlockCache implements CodeCache {
  /**
   * Four int32 per slot, so a lookup touches one cache line:
   * [4i] host offset * 2 + CS.D (-1: empty), [4i+1] EIP, [4i+2] the generation
   * of the block's page when it was compiled (or last counted), [4i+3] the
   * instructions in the block: 0 while still counting entries, -1 when nothing
   * there compiles.
   */
  readonly slots = new Int32Array(CACHE_SIZE * 4).fill(-1);
  readonly hits = new Int32Array(CACHE_SIZE);
  readonly fns: BlockFn[] = new Array<BlockFn>(CACHE_SIZE).fill(noBlock);
  /**
   * Per slot: the cpu.segSlow bits of the segments whose accesses the block makes
   * inline, without segment checks; it runs only while none of them is set.
   */
  readonly flatMask = new Uint16Array(CACHE_SIZE);
  /** Per host page: bumped by every write to a page that holds blocks. */
  readonly pageGen: Int32Array;
  /** Per host page: 1 while blocks compiled from it may be live (shared with PhysicalMemory). */
  readonly codePages: Uint8Array;
  readonly threshold: number;
  compiled = 0;
  /** Blocks found in `spare` instead of being compiled again. */
  reused = 0;
  /** Guest instructions run in blocks, host milliseconds spent compiling them, and page writes that made blocks stale (`info jit`). */
  instructionsRun = 0;
  compileMs = 0;
  invalidations = 0;
  /**
   * Compiled blocks by start (host offset * 2 + CS.D), kept after their slot in
   * the direct-mapped `slots` goes to another address, so a block that comes
   * back is not compiled again (compiling dominated Linux boots when evicted
   * blocks were recompiled). Consulted only when a slot reaches the compile
   * threshold; an entry is used only while its page generation is current.
   * Bounded: the oldest entries go first.
   */
  readonly spare = new Map<number, SpareBlock>();

  private readonly cpu: Cpu;

  constructor(cpu: Cpu, threshold = DEFAULT_THRESHOLD) {
    this.cpu = cpu;
    this.codePages = cpu.mem.codePages;
    this.pageGen = new Int32Array(this.codePages.length);
    this.threshold = threshold;
  }

  /**
   * Run the compiled block at CS:EIP if there is one (and `left` covers it);
   * count entries to addresses without one and compile past the threshold.
   * Returns true when a block ran.
   */
  enter(cpu: Cpu): boolean {
    const eip = cpu.eip;
    const lin = (cpu.segBase[Seg.CS] + eip) | 0;
    const e = cpu.tlb[lin >>> 12];
    if ((e & cpu.tlbReadMask) !== Tlb.VALID) return false;
    const host = (e & ~0xfff) ^ lin;
    const i = BlockCache.index(host, eip);
    const k = i << 2;
    const slots = this.slots;
    const hk = (host << 1) | (cpu.code32 ? 1 : 0);
    const gen = this.pageGen[host >>> 12];
    if (slots[k] === hk && slots[k + 1] === eip && slots[k + 2] === gen) {
      const n = slots[k + 3];
      if (n > 0) {
        const left = cpu.left;
        if (left < n || (cpu.segSlow & this.flatMask[i]) !== 0) return false;
        this.fns[i](cpu);
        this.instructionsRun += left - cpu.left;
        return true;
      }
      if (n < 0 || ++this.hits[i] < this.threshold) return false;
    } else {
      slots[k] = hk;
      slots[k + 1] = eip;
      slots[k + 2] = gen;
      slots[k + 3] = 0;
      this.hits[i] = 1;
      if (this.threshold > 1) return false;
    }
    return this.compileAndRun(i, host, eip);
  }

  private compileAndRun(i: number, host: number, eip: number): boolean {
    const cpu = this.cpu;
    const mode = cpu.code32 ? 1 : 0;
    let b: { fn: BlockFn; count: number; flatMask: number } | null = this.findSpare(host, eip, mode);
    if (b !== null && (b.flatMask & cpu.segSlow) !== 0) b = null;
    if (b !== null) this.reused++;
    else {
      const gen = this.pageGen[host >>> 12];
      const t0 = compileClock.now();
      b = compileBlock(cpu.mem8, host, eip, cpu.code32, this.pageGen, cpu, cpu.segSlow);
      this.compileMs += compileClock.now() - t0;
      if (b === null) {
        this.slots[(i << 2) + 3] = -1;
        return false;
      }
      this.compiled++;
      this.keepSpare(host, eip, mode, gen, b.fn, b.count, b.flatMask);
    }
    this.slots[(i << 2) + 3] = b.count;
    this.fns[i] = b.fn;
    this.flatMask[i] = b.flatMask;
    const hp = host >>> 12;
    if (this.codePages[hp] === 0) {
      this.codePages[hp] = 1;
      cpu.markCodePage(hp);
    }
    const left = cpu.left;
    if (left < b.count) return false;
    b.fn(cpu);
    this.instructionsRun += left - cpu.left;
    return true;
  }

  static index(host: number, eip: number): number {
    return Math.imul(host ^ (eip << 7), 0x9e3779b1 | 0) >>> (32 - CACHE_BITS);
  }

  /** A write reached host page `hp`, which holds blocks: they are stale from now on. */
  pageWritten(hp: number): void {
    this.invalidations++;
    this.pageGen[hp] = (this.pageGen[hp] + 1) | 0;
    this.codePages[hp] = 0;
  }

  /** A compiled block for (host, eip, mode) whose page is unchanged since it was compiled, or null. */
  findSpare(host: number, eip: number, mode: number): SpareBlock | null {
    const k = host * 2 + mode;
    const s = this.spare.get(k);
    if (s === undefined) return null;
    if (s.eip !== eip) return null;
    if (s.gen !== this.pageGen[host >>> 12]) {
      this.spare.delete(k);
      return null;
    }
    return s;
  }

  keepSpare(host: number, eip: number, mode: number, gen: number, fn: BlockFn, count: number, flatMask: number): void {
    const k = host * 2 + mode;
    const sp = this.spare;
    sp.delete(k);
    if (sp.size >= SPARE_MAX) sp.delete(sp.keys().next().value as number);
    sp.set(k, { eip, gen, fn, count, flatMask });
  }

  /** Drop every block (RAM replaced wholesale: reset, state load). */
  clear(): void {
    this.spare.clear();
    this.slots.fill(-1);
    this.fns.fill(noBlock);
    this.codePages.fill(0);
    for (let i = 0; i < this.pageGen.length; i++) this.pageGen[i] = (this.pageGen[i] + 1) | 0;
  }
}

function noBlock(_cpu: Cpu): void {}

/** A compiled block kept in BlockCache.spare. */
export interface SpareBlock {
  eip: number;
  /** The generation of its page when it was compiled. */
  gen: number;
  fn: BlockFn;
  count: number;
  /** The segSlow bits its inline memory accesses need clear (see compileBlock's `segSlow`). */
  flatMask: number;
}

/**
 * Decode a block starting at host offset `host` (EIP `eip`) and compile it.
 * Returns the function and its instruction count, or null when the first
 * instruction is not one that blocks run.
 */
export function compileBlock(
  mem: Uint8Array,
  host: number,
  eip: number,
  code32: boolean,
  pageGen: Int32Array,
  regs: BlockRegs,
  segSlow: number,
): { fn: BlockFn; count: number; flatMask: number } | null {
  const pageEnd = (host | 0xfff) + 1;
  const hp = host >>> 12;
  const gen = pageGen[hp];
  const handlers: Op[] = [];
  let src = '';
  let off = host;
  let n = 0;
  let pend = 0; // instructions done but not yet taken off cpu.left
  let tailEip = -1;
  let fk: number = Fk.UNKNOWN;
  let flatMask = 0;
  const visited: number[] = [];
  // prefix state as last stored by the block (undefined: not stored yet)
  let curO32 = -1,
    curA32 = -1,
    curSeg = -2,
    curRep = -1,
    curLock = -1;
  while (n < MAX_INSTR) {
    const start = off;
    let o32 = code32,
      a32 = code32,
      seg = -1,
      rep = 0,
      lock = false;
    let b = 0;
    let p = 0;
    for (; p < 14 && off < pageEnd; p++) {
      b = mem[off];
      if (!isPrefix(b)) break;
      off++;
      if (b === 0x66) o32 = !code32;
      else if (b === 0x67) a32 = !code32;
      else if (b === 0xf0) lock = true;
      else if (b === 0xf2 || b === 0xf3) rep = b;
      else seg = SEG_OF_PREFIX[b];
    }
    if (p >= 14 || off >= pageEnd || lock) break;
    off++;
    let key = b;
    if (b === 0x0f) {
      if (off >= pageEnd) break;
      key = 0x100 | mem[off++];
    }
    if (key === 0x90 && rep === 0xf3) break; // PAUSE takes time (cpu.pause): the interpreter runs it
    const info = INFO[key];
    let cls = info & K.CLASS;
    if (cls === K.NO) break;
    const handler = key < 0x100 ? OPS[key | (o32 ? 0x100 : 0)] : OPS_0F[(key & 0xff) | (o32 ? 0x100 : 0)];
    if (handler === ud) break;
    const afterOp = off;
    let len = 0; // bytes after the opcode
    let regOnly = (info & K.REGONLY) !== 0;
    if (info & K.MODRM) {
      if (off >= pageEnd) break;
      const m = mem[off];
      const mod = m >> 6;
      const rm = m & 7;
      const reg = (m >> 3) & 7;
      len = 1;
      if (mod === 3) regOnly = key !== 0x8f && key !== 0xff; // POP r/m and FF /6 use the stack
      if (mod !== 3) {
        if (a32) {
          if (rm === 4) {
            if (off + 1 >= pageEnd) break;
            len++;
            if (mod === 0 && (mem[off + 1] & 7) === 5) len += 4;
          } else if (mod === 0 && rm === 5) len += 4;
          if (mod === 1) len += 1;
          else if (mod === 2) len += 4;
        } else {
          if (mod === 0 && rm === 6) len += 2;
          else if (mod === 1) len += 1;
          else if (mod === 2) len += 2;
        }
      }
      if (key === 0xfe && reg > 1) break;
      if (key === 0xff) {
        if (reg === 2 || reg === 4) cls = K.BRANCH;
        else if (reg === 3 || reg === 5 || reg === 7) break;
      }
      if (key === 0x8c && reg > 5) break;
      const imm = info >> K.IMM_SHIFT;
      if (imm === Imm.GRP3 && reg < 2) len += key === 0xf6 ? 1 : o32 ? 4 : 2;
    }
    switch (info >> K.IMM_SHIFT) {
      case Imm.B:
        len += 1;
        break;
      case Imm.V:
        len += o32 ? 4 : 2;
        break;
      case Imm.W:
        len += 2;
        break;
      case Imm.MOFFS:
        len += a32 ? 4 : 2;
        break;
      case Imm.ENTER:
        len += 3;
        break;
    }
    const next = afterOp + len;
    if (next > pageEnd || next - start > 15) break;
    const sEip = (eip + (start - host)) | 0;
    const nEip = (eip + (next - host)) | 0;
    if (!code32 && nEip > 0xffff) break; // IP wraps inside: leave it to the interpreter
    let spec = code32 && o32 && a32 ? specialize(mem, key, afterOp, seg, rep, nEip) : null;
    // Inline loads and stores skip the segment limit/type checks (seglimit.ts): they are
    // emitted only for segments that are flat now (the override, or DS and SS, which
    // an operand or the stack may use), and the block then runs only while those stay
    // flat (BlockCache.flatMask). A CS override (never writable in protected mode,
    // maybe execute-only) always goes to the handler, which checks.
    if (spec !== null && spec.mem) {
      const need = seg >= 0 ? segBits(seg) : segBits(Seg.DS) | segBits(Seg.SS);
      if (seg === Seg.CS || (segSlow & need) !== 0) spec = null;
      else flatMask |= need;
    }
    visited.push(start);
    if (spec !== null && spec.branch && !spec.mem) {
      // Jcc ends the block (going on with the fall-through in the same block
      // measured slower: longer, overlapping blocks cost more to compile than
      // the dispatches they save); JMP to a new place on this page is followed
      n++;
      pend++;
      const th = host + (spec.target - eip);
      if (spec.cc >= 0) {
        src += `cpu.eip=${condCode(spec.cc, fk)}?${spec.target}:${nEip};`;
        tailEip = -1;
        break;
      }
      if (th >= (host & ~0xfff) && th < pageEnd && visited.indexOf(th) < 0) {
        off = th;
        tailEip = spec.target;
      } else {
        src += spec.code;
        tailEip = -1;
        break;
      }
      if (n === MAX_INSTR || off >= pageEnd) break;
      continue;
    }
    fk = spec === null ? Fk.UNKNOWN : spec.flags === Fk.KEEP ? fk : spec.flags;
    if (spec !== null && !spec.mem && !spec.branch) {
      // register-only: cannot fault, so instrStart and `left` can wait
      src += spec.code + '\n';
      pend++;
    } else if (spec !== null) {
      if (pend !== 0) src += `cpu.left-=${pend};`;
      src += `cpu.instrStart=${sEip};${spec.code}\n`;
      pend = 1;
    } else {
      const hi = handlers.length;
      handlers.push(handler);
      if (pend !== 0) src += `cpu.left-=${pend};`;
      src += `cpu.instrStart=${sEip};cpu.eip=${(eip + (afterOp - host)) | 0};`;
      if (curO32 !== +o32) src += `cpu.o32=${o32};`;
      if (curA32 !== +a32) src += `cpu.a32=${a32};`;
      if (curSeg !== seg) src += `cpu.segOvr=${seg};`;
      if (curRep !== rep) src += `cpu.rep=${rep};`;
      if (curLock !== 0) src += `cpu.lock=false;`;
      curO32 = +o32;
      curA32 = +a32;
      curSeg = seg;
      curRep = rep;
      curLock = 0;
      src += `h${hi}(cpu);\n`;
      pend = 1;
    }
    n++;
    off = next;
    // after specialised code cpu.eip is stale until an exit stores it
    tailEip = spec !== null && !spec.branch ? nEip : -1;
    if (cls === K.BRANCH || n === MAX_INSTR || off >= pageEnd) break;
    // stop here unless EIP is where decoding says, and (for instructions that may
    // reach memory or a device) nothing needs the loop and the code is unchanged
    const exit = `{${spec !== null ? `cpu.eip=${nEip};` : ''}cpu.left-=${pend};return;}`;
    // a device or a write to this page is reached only through translate(), which sets slowAccess
    const ioCheck = `cpu.slowAccess&&(cpu.slowAccess=false,cpu.intrLine||cpu.nmiPending||cpu.stopRequested||pg[${hp}]!==${gen})`;
    if (spec === null) src += `if(cpu.eip!==${nEip}${regOnly ? '' : '||' + ioCheck})${exit}\n`;
    else if (spec.mem) src += `if(${ioCheck})${exit}\n`;
  }
  if (tailEip !== -1) src += `cpu.eip=${tailEip};`;
  if (pend !== 0) src += `cpu.left-=${pend};`;
  if (n === 0) return null;
  let pre = '';
  for (let i = 0; i < handlers.length; i++) pre += `const h${i}=H[${i}];`;
  const name = `blk_${host.toString(16)}_${code32 ? 32 : 16}`;
  const fn = new Function('H', 'pg', 'r32', 'r8', 'r16', 'sb', 'alu', 'shift', `${pre}\nreturn function ${name}(cpu){\n${src}};`)(
    handlers,
    pageGen,
    regs.reg32,
    regs.reg8,
    regs.reg16,
    regs.segBase,
    alu,
    shift,
  ) as BlockFn;
  return { fn, count: n, flatMask };
}

// ---- specialised code for the commonest 32-bit forms ----------------------------

interface Spec {
  code: string;
  /** Reads or writes memory (may fault, may reach a device). */
  mem: boolean;
  /** Sets EIP itself (ends the block). */
  branch: boolean;
  /** What the instruction leaves in the lazy flags (Fk), or Fk.KEEP. */
  flags: number;
  /** Jcc: condition code, -1 otherwise. */
  cc: number;
  /** Jcc or JMP: the target EIP. */
  target: number;
}

/** What the block knows, at compile time, about the lazy flags state. */
const enum Fk {
  UNKNOWN = 0,
  SUB32 = 1, // SUB/CMP at 32 bits: lazyA - lazyB
  LOGIC32 = 2, // AND/OR/XOR/TEST at 32 bits
  ADD32 = 3, // ADD at 32 bits
  INCDEC32 = 4, // INC/DEC at 32 bits (ZF, SF from lazyRes)
  KEEP = 5, // the instruction leaves the flags alone
}

/** A condition evaluated straight from the lazy operands when the flag-setting op is known. */
function condCode(cc: number, fk: number): string {
  let e: string | null = null;
  const c = cc >> 1;
  if (fk === Fk.SUB32) {
    if (c === 1) e = '(cpu.lazyA>>>0)<(cpu.lazyB>>>0)';
    else if (c === 2) e = 'cpu.lazyRes===0';
    else if (c === 3) e = '(cpu.lazyA>>>0)<=(cpu.lazyB>>>0)';
    else if (c === 4) e = 'cpu.lazyRes<0';
    else if (c === 6) e = 'cpu.lazyA<cpu.lazyB';
    else if (c === 7) e = 'cpu.lazyA<=cpu.lazyB';
  } else if (fk === Fk.LOGIC32) {
    if (c === 0 || c === 1) e = 'false';
    else if (c === 2 || c === 3) e = 'cpu.lazyRes===0';
    else if (c === 4 || c === 6) e = 'cpu.lazyRes<0';
    else if (c === 7) e = 'cpu.lazyRes<=0';
  } else if (fk === Fk.ADD32) {
    if (c === 1) e = '(cpu.lazyRes>>>0)<(cpu.lazyA>>>0)';
    else if (c === 2) e = 'cpu.lazyRes===0';
    else if (c === 4) e = 'cpu.lazyRes<0';
  } else if (fk === Fk.INCDEC32) {
    if (c === 2) e = 'cpu.lazyRes===0';
    else if (c === 4) e = 'cpu.lazyRes<0';
  }
  if (e === null) return `cpu.cond(${cc})`;
  return (cc & 1) !== 0 ? `!(${e})` : `(${e})`;
}

/**
 * Code computing `r` from `v` shifted by the constant count c (1..31) at 32 bits, with
 * the flags shift() sets; SHL/SHR/SAR inline, the rotates through shift().
 */
function shiftCode(k: number, c: number): string {
  switch (k) {
    case 4:
    case 6:
      return `const s=v<<${c - 1};const r=s<<1;const cf=(s>>>31)&1;cpu.setResultFlags(r,31,cf,cf^((r>>>31)&1),0);`;
    case 5:
      return `const s=v>>>${c - 1};const r=(s>>>1)|0;cpu.setResultFlags(r,31,s&1,((s^r)>>>31)&1,0);`;
    case 7:
      return `const s=v>>${c - 1};const r=s>>1;cpu.setResultFlags(r,31,s&1,0,0);`;
    default:
      return `const r=shift(cpu,${k},v,${c},32);`;
  }
}

/** The Fk an ALU operation k leaves at width top+1 (ADC/SBB and 8-bit ones are not tracked). */
function aluFk(k: number, top: number): number {
  if (top !== 31) return Fk.UNKNOWN;
  if (k === 0) return Fk.ADD32;
  if (k === 5 || k === 7) return Fk.SUB32;
  if (k === 1 || k === 4 || k === 6) return Fk.LOGIC32;
  return Fk.UNKNOWN;
}

function imm8s(mem: Uint8Array, o: number): number {
  return (mem[o] << 24) >> 24;
}
function imm32(mem: Uint8Array, o: number): number {
  return mem[o] | (mem[o + 1] << 8) | (mem[o + 2] << 16) | (mem[o + 3] << 24);
}
/** reg8 index of 8-bit register number n (AL CL DL BL AH CH DH BH). */
function r8i(n: number): number {
  return ((n & 3) << 2) | (n >> 2);
}

/** The linear-address expression of a 32-bit ModRM memory operand at `o`; its length in `eaLen`. */
let eaLen = 0;
function ea32(mem: Uint8Array, o: number, segOvr: number, withBase: boolean): string {
  const m = mem[o];
  const mod = m >> 6;
  const rm = m & 7;
  let p = o + 1;
  const terms: string[] = [];
  let disp = 0;
  let seg = Seg.DS;
  if (rm === 4) {
    const sib = mem[p++];
    const base = sib & 7;
    const idx = (sib >> 3) & 7;
    if (base === 5 && mod === 0) {
      disp = imm32(mem, p);
      p += 4;
    } else {
      terms.push(`r32[${base}]`);
      if (base === 4 || base === 5) seg = Seg.SS;
    }
    if (idx !== 4) terms.push((sib >> 6) === 0 ? `r32[${idx}]` : `(r32[${idx}]<<${sib >> 6})`);
  } else if (rm === 5 && mod === 0) {
    disp = imm32(mem, p);
    p += 4;
  } else {
    terms.push(`r32[${rm}]`);
    if (rm === 5) seg = Seg.SS;
  }
  if (mod === 1) disp = imm8s(mem, p++);
  else if (mod === 2) {
    disp = imm32(mem, p);
    p += 4;
  }
  eaLen = p - o;
  if (disp !== 0 || terms.length === 0) terms.push(String(disp));
  const off = terms.length === 1 && disp === 0 ? terms[0] : `((${terms.join('+')})|0)`;
  if (!withBase) return off;
  return `((sb[${segOvr >= 0 ? segOvr : seg}]+${off})|0)`;
}

function lazy(op: number, a: string, b: string, top: number): string {
  return `cpu.lazyOp=${op};cpu.lazyA=${a};cpu.lazyB=${b};cpu.lazyRes=r;cpu.lazyTop=${top};cpu.lazyMask=${F.ARITH};`;
}
/** Code computing `r` = ALU op k of x and y at width top+1 and setting flags as alu() does. */
function aluCode(k: number, x: string, y: string, top: number): string {
  switch (k) {
    case 0:
      return `const r=(${x}+${y})|0;${lazy(1, 'x', 'y', top)}`;
    case 1:
      return `const r=${x}|${y};${lazy(0, '0', '0', top)}`;
    case 4:
      return `const r=${x}&${y};${lazy(0, '0', '0', top)}`;
    case 6:
      return `const r=${x}^${y};${lazy(0, '0', '0', top)}`;
    case 5:
    case 7:
      return `const r=(${x}-${y})|0;${lazy(2, 'x', 'y', top)}`;
    default:
      return `const r=alu(cpu,${k},${x},${y},${top});`;
  }
}

/**
 * Straight-line code for one instruction with 32-bit operand and address size,
 * equivalent to its interpreter handler, or null to call the handler instead.
 * `o` is the offset just after the opcode; `next` the EIP of the next instruction.
 */
function specialize(mem: Uint8Array, key: number, o: number, segOvr: number, rep: number, next: number): Spec | null {
  const m = mem[o];
  const mod = m >> 6;
  const reg = (m >> 3) & 7;
  const rm = m & 7;
  const R: Spec = { code: '', mem: false, branch: false, flags: Fk.KEEP, cc: -1, target: 0 };
  const done = (code: string, isMem: boolean, flags: number = Fk.KEEP): Spec => {
    R.code = `{${code}}`;
    R.mem = isMem;
    R.flags = flags;
    return R;
  };
  const jump = (code: string): Spec => {
    R.code = `{${code}}`;
    R.branch = true;
    R.mem = false;
    return R;
  };
  if (rep !== 0 && key !== 0xc3 && (key < 0x70 || key > 0x7f) && key !== 0xe8 && key !== 0xe9 && key !== 0xeb) {
    // REP is ignored by these forms; keep the rare combinations on the handler
    return null;
  }
  if (key < 0x40 && (key & 7) < 6) {
    const k = key >> 3;
    const store = k !== 7;
    switch (key & 7) {
      case 0: // r/m8, r8
      case 1: {
        // r/m32, r32
        const w8 = (key & 7) === 0;
        const src = w8 ? `r8[${r8i(reg)}]` : `r32[${reg}]`;
        const top = w8 ? 7 : 31;
        if (mod === 3) {
          const dst = w8 ? `r8[${r8i(rm)}]` : `r32[${rm}]`;
          return done(`const x=${dst},y=${src};${aluCode(k, 'x', 'y', top)}${store ? `${dst}=r;` : ''}`, false, aluFk(k, top));
        }
        const a = ea32(mem, o, segOvr, true);
        const rd = w8 ? 'cpu.rd8' : 'cpu.rd32';
        const wr = w8 ? 'cpu.wr8' : 'cpu.wr32';
        // as the handler: read, then check the store (rmwCheck) before the flags change
        const probe = store ? `cpu.probeWrite(a,${w8 ? 1 : 4});` : '';
        return done(`const a=${a};const x=${rd}(a);${probe}const y=${src};${aluCode(k, 'x', 'y', top)}${store ? `${wr}(a,r);` : ''}`, true, aluFk(k, top));
      }
      case 2: // r8, r/m8
      case 3: {
        const w8 = (key & 7) === 2;
        const dst = w8 ? `r8[${r8i(reg)}]` : `r32[${reg}]`;
        const top = w8 ? 7 : 31;
        if (mod === 3) {
          const src = w8 ? `r8[${r8i(rm)}]` : `r32[${rm}]`;
          return done(`const x=${dst},y=${src};${aluCode(k, 'x', 'y', top)}${store ? `${dst}=r;` : ''}`, false, aluFk(k, top));
        }
        const a = ea32(mem, o, segOvr, true);
        const rd = w8 ? 'cpu.rd8' : 'cpu.rd32';
        return done(`const x=${dst},y=${rd}(${a});${aluCode(k, 'x', 'y', top)}${store ? `${dst}=r;` : ''}`, true, aluFk(k, top));
      }
      case 4:
        return done(`const x=r8[0],y=${mem[o]};${aluCode(k, 'x', 'y', 7)}${store ? 'r8[0]=r;' : ''}`, false, Fk.UNKNOWN);
      default:
        return done(`const x=r32[0],y=${imm32(mem, o)};${aluCode(k, 'x', 'y', 31)}${store ? 'r32[0]=r;' : ''}`, false, aluFk(k, 31));
    }
  }
  if (key === 0x80 || key === 0x81 || key === 0x83) {
    const w8 = key === 0x80;
    const top = w8 ? 7 : 31;
    const store = reg !== 7;
    if (mod === 3) {
      const immOff = o + 1;
      const imm = w8 ? mem[immOff] : key === 0x81 ? imm32(mem, immOff) : imm8s(mem, immOff);
      const dst = w8 ? `r8[${r8i(rm)}]` : `r32[${rm}]`;
      return done(`const x=${dst},y=${imm};${aluCode(reg, 'x', 'y', top)}${store ? `${dst}=r;` : ''}`, false, aluFk(reg, top));
    }
    const a = ea32(mem, o, segOvr, true);
    const immOff = o + eaLen;
    const imm = w8 ? mem[immOff] : key === 0x81 ? imm32(mem, immOff) : imm8s(mem, immOff);
    const rd = w8 ? 'cpu.rd8' : 'cpu.rd32';
    const wr = w8 ? 'cpu.wr8' : 'cpu.wr32';
    const probe = store ? `cpu.probeWrite(a,${w8 ? 1 : 4});` : '';
    return done(`const a=${a};const x=${rd}(a);${probe}const y=${imm};${aluCode(reg, 'x', 'y', top)}${store ? `${wr}(a,r);` : ''}`, true, aluFk(reg, top));
  }
  if (key === 0x84 || key === 0x85) {
    const w8 = key === 0x84;
    const src = w8 ? `r8[${r8i(reg)}]` : `r32[${reg}]`;
    const top = w8 ? 7 : 31;
    const fk = w8 ? Fk.UNKNOWN : Fk.LOGIC32;
    if (mod === 3) return done(`const r=${w8 ? `r8[${r8i(rm)}]` : `r32[${rm}]`}&${src};${lazy(0, '0', '0', top)}`, false, fk);
    return done(`const r=${w8 ? 'cpu.rd8' : 'cpu.rd32'}(${ea32(mem, o, segOvr, true)})&${src};${lazy(0, '0', '0', top)}`, true, fk);
  }
  if (key === 0xa8) return done(`const r=r8[0]&${mem[o]};${lazy(0, '0', '0', 7)}`, false, Fk.UNKNOWN);
  if (key === 0xa9) return done(`const r=r32[0]&${imm32(mem, o)};${lazy(0, '0', '0', 31)}`, false, Fk.LOGIC32);
  if (key >= 0x88 && key <= 0x8b) {
    const w8 = (key & 1) === 0;
    const r = w8 ? `r8[${r8i(reg)}]` : `r32[${reg}]`;
    const toRm = key < 0x8a;
    if (mod === 3) {
      const x = w8 ? `r8[${r8i(rm)}]` : `r32[${rm}]`;
      return done(toRm ? `${x}=${r};` : `${r}=${x};`, false);
    }
    const a = ea32(mem, o, segOvr, true);
    if (toRm) return done(`${w8 ? 'cpu.wr8' : 'cpu.wr32'}(${a},${r});`, true);
    return done(`${r}=${w8 ? 'cpu.rd8' : 'cpu.rd32'}(${a});`, true);
  }
  if (key === 0x8d) {
    if (mod === 3) return null;
    return done(`r32[${reg}]=${ea32(mem, o, segOvr, false)};`, false);
  }
  if ((key === 0xc6 || key === 0xc7) && reg === 0) {
    const w8 = key === 0xc6;
    if (mod === 3) return done(w8 ? `r8[${r8i(rm)}]=${mem[o + 1]};` : `r32[${rm}]=${imm32(mem, o + 1)};`, false);
    const a = ea32(mem, o, segOvr, true);
    const immOff = o + eaLen;
    return done(w8 ? `cpu.wr8(${a},${mem[immOff]});` : `cpu.wr32(${a},${imm32(mem, immOff)});`, true);
  }
  if (key >= 0xb0 && key <= 0xb7) return done(`r8[${r8i(key & 7)}]=${mem[o]};`, false);
  if (key >= 0xb8 && key <= 0xbf) return done(`r32[${key & 7}]=${imm32(mem, o)};`, false);
  if (key >= 0x40 && key <= 0x4f) {
    const r = key & 7;
    const inc = key < 0x48;
    return done(`const x=r32[${r}];const r=(x${inc ? '+' : '-'}1)|0;r32[${r}]=r;cpu.setLazyKeepCF(${inc ? 1 : 2},x,1,r,31);`, false, Fk.INCDEC32);
  }
  if (key >= 0x50 && key <= 0x57) return done(`cpu.pushFlat32(r32[${key & 7}]);`, true);
  if (key >= 0x58 && key <= 0x5f) return done(`const v=cpu.popFlat32();r32[${key & 7}]=v;`, true);
  if (key === 0x90) return done('', false);
  if (key === 0x1b6 || key === 0x1be || key === 0x1b7 || key === 0x1bf) {
    const w8 = key === 0x1b6 || key === 0x1be;
    const sx = key === 0x1be || key === 0x1bf;
    let v: string;
    if (mod === 3) v = w8 ? `r8[${r8i(rm)}]` : `r16[${rm << 1}]`;
    else v = `${w8 ? 'cpu.rd8' : 'cpu.rd16'}(${ea32(mem, o, segOvr, true)})`;
    const val = sx ? (w8 ? `((${v})<<24)>>24` : `((${v})<<16)>>16`) : v;
    return done(`r32[${reg}]=${val};`, mod !== 3);
  }
  if (key === 0xc1 || key === 0xd1 || key === 0xd3) {
    // as makeShift32: read, then the store is probed (even for a zero count, which changes nothing else)
    const a = mod === 3 ? '' : ea32(mem, o, segOvr, true);
    const rd = mod === 3 ? `const v=r32[${rm}];` : `const a=${a};const v=cpu.rd32(a);cpu.probeWrite(a,4);`;
    const wr = mod === 3 ? `r32[${rm}]=r;` : 'cpu.wr32(a,r);';
    if (key === 0xd3) return done(`${rd}const c=r8[4];if((c&31)!==0){const r=shift(cpu,${reg},v,c,32);${wr}}`, mod !== 3, Fk.UNKNOWN);
    const c = (key === 0xc1 ? mem[o + (mod === 3 ? 1 : eaLen)] : 1) & 31;
    if (c === 0) return null;
    return done(`${rd}${shiftCode(reg, c)}${wr}`, mod !== 3, Fk.UNKNOWN);
  }
  // branches: EIP of the next instruction is `next`
  if ((key >= 0x70 && key <= 0x7f) || (key >= 0x180 && key <= 0x18f)) {
    R.cc = key & 15;
    R.target = key < 0x100 ? next + imm8s(mem, o) : (next + imm32(mem, o)) | 0;
    return jump('');
  }
  if (key === 0xeb || key === 0xe9) {
    R.target = key === 0xeb ? next + imm8s(mem, o) : (next + imm32(mem, o)) | 0;
    return jump(`cpu.eip=${R.target};`);
  }
  if (key === 0xe8) {
    R.code = `{cpu.pushFlat32(${next});cpu.eip=${(next + imm32(mem, o)) | 0};}`;
    R.branch = true;
    R.mem = true;
    return R;
  }
  if (key === 0xc3) {
    R.code = `{cpu.eip=cpu.popFlat32();}`;
    R.branch = true;
    R.mem = true;
    return R;
  }
  return null;
}
