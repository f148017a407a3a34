/**
 * The IA-32 CPU: architectural state, the fetch/decode/execute loop, lazy
 * flags, and linear memory access through a software TLB.
 *
 * Instruction semantics live in ops/*.ts (one handler per opcode, dispatched
 * from a dense table), segmentation and protected-mode control transfers in
 * segments.ts / interrupts.ts / tasks.ts, paging in this file's translate().
 *
 * Resources: Intel SDM vol. 2 (instructions) and vol. 3 (system programming).
 */
import type { IoPorts } from '../bus/ports.js';
import { PageFlag, type PhysicalMemory } from '../bus/memory.js';
import { Layout } from '../bus/layout.js';
import { CpuFault, TripleFault } from './fault.js';
import { ApicBase, Attr, CR0, CR4, F, Seg, Tlb, Vec } from './consts.js';
import { OPS } from './ops/index.js';
import { deliverInterrupt } from './interrupts.js';
import { codeBreakpoint, dataBreakpoint, DR6, isDataBpPage, takeDebugTrap } from './debug.js';
import type { FpuBus, FpuUnit } from './fpu-api.js';
import { eaCheck, segCheck, SEG_WRITE, SS_READ, SS_WRITE, updateSegChecks } from './seglimit.js';

/** Cycles (instruction times, 20 ns each on the board's nominal clock) one PAUSE takes: 1 us. */
export const PAUSE_CYCLES = 50;

/** Parity of each byte value (PF is set when the low byte has an even number of ones). */
const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  PARITY[i] = (b & 1) === 0 ? F.PF : 0;
}

/** Kind of the last flag-setting operation, for lazy flag evaluation. */
export const enum Lazy {
  LOGIC = 0, // CF=OF=AF=0; SF/ZF/PF from the result
  ADD = 1, // add/adc/inc: flags from a, b, result
  SUB = 2, // sub/sbb/cmp/dec/neg
}

/** Prefix bytes (0 = not a prefix). */
const IS_PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) IS_PREFIX[p] = 1;

const TLB_LIST_SIZE = 8192;
/** How many string-instruction iterations run before the loop checks for interrupts. */
export const REP_CHUNK = 4096;

/** Where an interrupt request comes from (the PIC or APIC, wired by the board). */
export interface InterruptController {
  /** The vector of the highest-priority pending interrupt, acknowledged (INTA cycle). */
  acknowledge(): number;
}

/** The board's local APIC as the CPU sees it: told when the guest writes IA32_APIC_BASE. */
export interface ApicBaseListener {
  /** The MSR changed (already stored in cpu.apicBase): remap or unmap the APIC page, enable or disable the APIC. */
  apicBaseChanged(value: number): void;
}

/**
 * A tier above the interpreter (src/jit), attached by the board. The run loop
 * offers it every instruction boundary on the fast path; it runs compiled code
 * for CS:EIP, leaving the CPU exactly as the interpreter would (instrStart,
 * `left`, registers, lazy flags) after each instruction it completes, and
 * returns false when it has nothing to run there.
 */
export interface CodeCache {
  /** Run compiled code at CS:EIP if there is some (and `left` covers it); true when it ran. */
  enter(cpu: Cpu): boolean;
  /** Host page `hp`, marked in PhysicalMemory.codePages, was written: its code is stale. */
  pageWritten(hp: number): void;
  /** Drop all compiled code (RAM replaced wholesale: reset, state load). */
  clear(): void;
}

export class Cpu {
  // ---- registers -------------------------------------------------------
  /** Views of the 32 bytes at Layout.REGS of the state buffer (or of a buffer of their own). */
  readonly reg32: Int32Array;
  readonly reg16: Uint16Array;
  readonly reg8: Uint8Array;
  eip = 0;
  /** EIP of the first byte (prefixes included) of the instruction being executed. */
  instrStart = 0;

  // segment registers: selector and descriptor cache (base, limit, attributes)
  readonly sreg = new Uint16Array(8);
  readonly segBase = new Int32Array(8);
  readonly segLimit = new Int32Array(8);
  readonly segAttr = new Int32Array(8);
  /**
   * Segments whose accesses need limit/type checks (seglimit.ts): bit s for
   * reads through segment s, bit 8 + s for writes. Recomputed by
   * updateSegChecks whenever a segment cache or the mode changes.
   */
  segSlow = 0;
  gdtBase = 0;
  gdtLimit = 0;
  idtBase = 0;
  idtLimit = 0;

  cr0 = 0;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  cpl = 0;

  // EFLAGS: `flags` holds every bit except those named in lazyMask, which
  // are computed on demand from the last arithmetic operation.
  flags = F.R1;
  lazyMask = 0;
  lazyOp = 0;
  lazyA = 0;
  lazyB = 0;
  lazyRes = 0;
  lazyTop = 31;

  // MSRs
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  /** IA32_APIC_BASE; meaningful only when `apic` is attached. */
  apicBase = ApicBase.RESET | 0;
  /** The local APIC wired by the board, or null: then CPUID clears the APIC flag and IA32_APIC_BASE raises #GP. */
  apic: ApicBaseListener | null = null;
  /** TSC = tscOffset + instructions executed (one cycle per instruction). */
  tscOffset = 0;

  // ---- per-instruction decode state ------------------------------------
  o32 = false; // operand size is 32-bit
  a32 = false; // address size is 32-bit
  segOvr = -1; // segment override or -1
  rep = 0; // 0, 0xf2 (REPNE) or 0xf3 (REP/REPE)
  lock = false;
  modrm = 0;
  /** Linear address of the memory operand decoded from ModRM. */
  ea = 0;
  /** Offset (before adding the segment base) of that operand. */
  eaOff = 0;
  /** Segment of that operand. */
  eaSeg = 0;

  // ---- mode caches ------------------------------------------------------
  code32 = false; // CS.D
  stack32 = false; // SS.B
  ssMask = 0xffff;
  ipMask = 0xffff;
  protectedMode = false; // CR0.PE
  vm86 = false; // EFLAGS.VM

  // ---- memory -----------------------------------------------------------
  readonly mem: PhysicalMemory;
  readonly mem8: Uint8Array;
  readonly mem16: Uint16Array;
  readonly mem32: Int32Array;
  readonly io: IoPorts;
  /** Software TLB over all 2^20 linear pages: (hostPage ^ linPage) | Tlb flags; 0 = empty. */
  readonly tlb: Int32Array;
  /**
   * The pages with a TLB entry, kept to flush them without clearing all 2^20:
   * non-global entries in `_tlbList`, global ones in `_tlbGList`, so that a CR3
   * load (a process switch) walks only the first (Linux keeps some thousand
   * kernel pages global, and walking them at every switch cost about 2.5% of
   * a pipe-heavy workload). A page whose entry changes between the two kinds
   * is added to the other list as well: every non-global entry is in
   * `_tlbList`, and a stale copy in either list only costs a visit. Either
   * list full: the next flush clears the whole array.
   */
  private readonly _tlbList = new Int32Array(TLB_LIST_SIZE);
  private _tlbCount = 0;
  private readonly _tlbGList = new Int32Array(TLB_LIST_SIZE);
  private _tlbGCount = 0;
  private _tlbOverflow = false;
  /** Masks that a TLB entry is tested against: the result must equal Tlb.VALID. */
  tlbReadMask = Tlb.VALID;
  tlbWriteMask = Tlb.VALID | Tlb.NO_WRITE_SUPER | Tlb.CODE;
  /**
   * Fetch window: EIP values in [fetchLo, fetchHi) lie on one readable RAM page
   * whose host offset is `eip + fetchAdj`, so a fetch is one compare and one
   * load. Emptied (emptyFetchWindow) whenever the TLB, CS, CPL or the IP width changes.
   */
  fetchLo = 1;
  fetchHi = 0;
  fetchAdj = 0;
  /** The compiled tier (src/jit), or null: every instruction goes through the interpreter loop. */
  codeCache: CodeCache | null = null;
  /**
   * Set by every translate(): the only way an access reaches a device (MMIO is
   * never in the TLB) or a page holding blocks. Compiled blocks test it after
   * memory instructions and only then look at intrLine, NMI, stop and their page.
   */
  slowAccess = false;

  // ---- interrupts and run state ----------------------------------------
  readonly fault = new CpuFault();
  /** SS:ESP read from the TSS by readTssStack (work registers). */
  tssSs = 0;
  tssEsp = 0;
  intrLine = false;
  pic: InterruptController | null = null;
  nmiPending = false;
  halted = false;
  /** Interrupts are inhibited until after the next instruction (STI, MOV SS, POP SS). */
  inhibitIrq = false;
  /** Instructions executed since reset (float64; updated at the end of each run() call). */
  instructionsRun = 0;
  /** Instructions left in the current run() call (a small integer, counted down per instruction). */
  left = 0;
  private _leftAtStart = 0;
  /** Debug registers or a queued debug trap need the slow step (see debug.ts updateDebugActive). */
  debugActive = false;
  /** DR6 bits of a debug trap to deliver before the next instruction (the TSS T bit), 0 when none. */
  debugTrap = 0;
  /** An enabled data breakpoint exists: the memory slow paths check accesses (debug.ts dataBreakpoint). */
  dataBpArmed = false;
  /** An enabled I/O breakpoint exists (CR4.DE=1): I/O instructions check their ports. */
  ioBpArmed = false;
  /** Linear page of each armed data breakpoint, -1 for none: translate() never caches these pages. */
  readonly dataBpPage = new Int32Array(4).fill(-1);
  /** DR6 B0-B3 of the data/I/O breakpoints the current instruction hit (a trap after it). */
  debugHits = 0;
  /**
   * The last instruction loaded SS (MOV SS, POP SS) in the slow step: debug traps wait
   * one more instruction (SDM vol. 3, 6.8.3). Holds the DR6 bits held back (with SHADOW set).
   */
  ssShadow = 0;
  /** Counts interrupt and exception deliveries (an instruction that raised one is not single-stepped). */
  interruptCount = 0;
  /** Exception being delivered (for double/triple fault detection), -1 when none. */
  deliveringVector = -1;
  /** Human-readable chain of the exceptions that led to a triple fault. */
  faultChain = '';
  /** The machine asked the run loop to return early (e.g. a device stopped the VM). */
  stopRequested = false;
  /** Called with 13 when the FPU reports an error through the external FERR#/IRQ 13 path. */
  onFpuIrq: () => void = () => {};
  /**
   * -1, or (armed with a value above 0xffff by the compiled tier running an
   * x87 instruction, src/jit/fpu-call.ts) where what FCOMI/FUCOMI set in
   * EFLAGS or FNSTSW AX stores is left instead, since the region holds those.
   */
  fpuOut = -1;
  /** The x87 unit, attached by the board; without one, ESC opcodes raise #NM as on an FPU-less CPU. */
  fpu: FpuUnit | null = null;
  readonly fpuBus: FpuBus;

  /**
   * `state`: the machine's state buffer (bus/layout.ts), which then holds the
   * registers and the TLB (the buffer PhysicalMemory was given too); without one
   * they get buffers of their own.
   */
  constructor(mem: PhysicalMemory, io: IoPorts, state?: ArrayBuffer) {
    const regs = state ?? new ArrayBuffer(32);
    const regAt = state !== undefined ? Layout.REGS : 0;
    this.reg32 = new Int32Array(regs, regAt, 8);
    this.reg16 = new Uint16Array(regs, regAt, 16);
    this.reg8 = new Uint8Array(regs, regAt, 32);
    this.tlb = state !== undefined ? new Int32Array(state, Layout.TLB, 1 << 20) : new Int32Array(1 << 20);
    this.mem = mem;
    this.mem8 = mem.mem;
    this.mem16 = mem.mem16;
    this.mem32 = mem.mem32;
    this.io = io;
    mem.onMapChange = () => this.flushTlb(true);
    mem.onCodeWrite = (hp) => this.codeCache?.pageWritten(hp);
    const cpu = this;
    this.fpuBus = {
      // x87 operands lie at cpu.ea + k in segment cpu.eaSeg (seglimit.ts)
      read8: (a) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 1, false);
        return cpu.rd8(a);
      },
      read16: (a) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 2, false);
        return cpu.rd16(a);
      },
      read32: (a) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 4, false);
        return cpu.rd32(a);
      },
      write8: (a, v) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 1, true);
        cpu.wr8(a, v);
      },
      write16: (a, v) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 2, true);
        cpu.wr16(a, v);
      },
      write32: (a, v) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, a - cpu.ea, 4, true);
        cpu.wr32(a, v);
      },
      operand: (len, write) => {
        if (cpu.segSlow !== 0) eaCheck(cpu, 0, len, write);
      },
      reportError: () => cpu.fpuError(),
      setEflagsZPC: (zf, pf, cf) => {
        const v = (zf ? F.ZF : 0) | (pf ? F.PF : 0) | (cf ? F.CF : 0);
        if (cpu.fpuOut >= 0) cpu.fpuOut = v;
        else cpu.setFlagBits(F.ZF | F.PF | F.CF, v);
      },
      getEflags: () => cpu.getFlags(),
      setAx: (v) => {
        if (cpu.fpuOut >= 0) cpu.fpuOut = v & 0xffff;
        else cpu.reg16[0] = v;
      },
    };
    this.reset();
  }

  /** The RESET state (Intel SDM vol. 3, table "IA-32 Processor States Following Power-up, Reset, or INIT"). */
  reset(): void {
    this.reg32.fill(0);
    this.reg32[2] = 0x00000633; // EDX: family 6, model 3, stepping 3 (matches CPUID leaf 1)
    this.flags = F.R1;
    this.lazyMask = 0;
    this.cr0 = CR0.ET | CR0.CD | CR0.NW;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    this.debugActive = false;
    this.debugTrap = 0;
    this.dataBpArmed = this.ioBpArmed = false;
    this.dataBpPage.fill(-1);
    this.debugHits = 0;
    for (let s = 0; s < 8; s++) {
      this.sreg[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffff;
      this.segAttr[s] = Attr.P | Attr.S | Attr.RW | Attr.ACCESSED;
    }
    this.sreg[Seg.CS] = 0xf000;
    this.segBase[Seg.CS] = 0xffff0000 | 0;
    this.segAttr[Seg.CS] = Attr.P | Attr.S | Attr.CODE | Attr.RW | Attr.ACCESSED;
    this.segAttr[Seg.LDTR] = Attr.P | 0x2;
    this.segAttr[Seg.TR] = Attr.P | 0xb;
    this.gdtBase = this.idtBase = 0;
    this.gdtLimit = this.idtLimit = 0xffff;
    this.eip = 0xfff0;
    this.cpl = 0;
    this.halted = false;
    this.inhibitIrq = false;
    this.nmiPending = false;
    this.deliveringVector = -1;
    this.sysenterCs = this.sysenterEsp = this.sysenterEip = 0;
    this.apicBase = ApicBase.RESET | 0;
    this.tscOffset = -this.instructionsRun;
    if (this.fpu) this.fpu.reset();
    this.updateModes();
    this.flushTlb(true);
    this.codeCache?.clear();
  }

  // ======================================================================
  // Mode bookkeeping
  // ======================================================================

  /** Recompute cached mode bits after CR0, EFLAGS.VM, CS or SS changes. */
  updateModes(): void {
    this.protectedMode = (this.cr0 & CR0.PE) !== 0;
    this.vm86 = (this.flags & F.VM) !== 0;
    this.code32 = (this.segAttr[Seg.CS] & Attr.DB) !== 0;
    this.ipMask = this.code32 ? -1 : 0xffff;
    this.stack32 = (this.segAttr[Seg.SS] & Attr.DB) !== 0;
    this.ssMask = this.stack32 ? -1 : 0xffff;
    this.updateTlbMasks();
    this.emptyFetchWindow();
    updateSegChecks(this);
  }

  /**
   * Empty the fetch window. Both bounds must change: EIPs of 32-bit code are
   * kept as int32, so kernel addresses are negative and `fetchHi = 0` alone
   * would leave [stale fetchLo, 0) open over them.
   */
  emptyFetchWindow(): void {
    this.fetchLo = 1;
    this.fetchHi = 0;
  }

  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.updateTlbMasks();
  }

  updateTlbMasks(): void {
    this.emptyFetchWindow();
    if (this.cpl === 3) {
      this.tlbReadMask = Tlb.VALID | Tlb.NO_USER;
      this.tlbWriteMask = Tlb.VALID | Tlb.NO_USER | Tlb.NO_WRITE_USER | Tlb.CODE;
    } else {
      this.tlbReadMask = Tlb.VALID;
      this.tlbWriteMask = Tlb.VALID | Tlb.NO_WRITE_SUPER | Tlb.CODE;
    }
  }

  /** Load a segment register in real or v8086 mode: base = selector * 16, cached limit and rights kept. */
  loadSegReal(seg: number, sel: number): void {
    this.sreg[seg] = sel;
    this.segBase[seg] = sel << 4;
    if (seg === Seg.CS) this.emptyFetchWindow();
    if (this.vm86) {
      this.segLimit[seg] = 0xffff;
      this.segAttr[seg] = Attr.P | Attr.S | Attr.RW | Attr.ACCESSED | 0x60 | (seg === Seg.CS ? Attr.CODE : 0);
      if (seg === Seg.CS || seg === Seg.SS) this.updateModes();
      else updateSegChecks(this);
    }
  }

  // ======================================================================
  // Faults
  // ======================================================================

  /** Raise an exception without an error code. Never returns. */
  raise(vector: number): never {
    const f = this.fault;
    f.vector = vector;
    f.errorCode = 0;
    f.hasErrorCode = false;
    throw f;
  }

  /** Raise an exception with an error code. Never returns. */
  raiseErr(vector: number, code: number): never {
    const f = this.fault;
    f.vector = vector;
    f.errorCode = code & 0xffff;
    f.hasErrorCode = true;
    throw f;
  }

  raiseGP(code: number): never {
    return this.raiseErr(Vec.GP, code);
  }

  raiseUD(): never {
    return this.raise(Vec.UD);
  }

  fpuError(): void {
    if (this.cr0 & CR0.NE) this.raise(Vec.MF);
    this.onFpuIrq();
  }

  // ======================================================================
  // Lazy flags
  // ======================================================================

  /** Record a result whose flags (all six arithmetic ones) are evaluated lazily. */
  setLazy(op: number, a: number, b: number, res: number, top: number): void {
    this.lazyOp = op;
    this.lazyA = a;
    this.lazyB = b;
    this.lazyRes = res;
    this.lazyTop = top;
    this.lazyMask = F.ARITH;
  }

  /** As setLazy but CF keeps its current value (INC, DEC). */
  setLazyKeepCF(op: number, a: number, b: number, res: number, top: number): void {
    const cf = this.getCF();
    this.flags = (this.flags & ~F.CF) | cf;
    this.lazyOp = op;
    this.lazyA = a;
    this.lazyB = b;
    this.lazyRes = res;
    this.lazyTop = top;
    this.lazyMask = F.ARITH & ~F.CF;
  }

  /**
   * Set SF/ZF/PF lazily from `res` and CF/OF/AF to explicit values (shifts, multiplies,
   * logic ops with their own CF/OF rules).
   */
  setResultFlags(res: number, top: number, cf: number, of: number, af: number): void {
    this.lazyOp = Lazy.LOGIC;
    this.lazyRes = res;
    this.lazyTop = top;
    this.lazyMask = F.ZF | F.SF | F.PF;
    this.flags = (this.flags & ~(F.CF | F.OF | F.AF)) | (cf ? F.CF : 0) | (of ? F.OF : 0) | (af ? F.AF : 0);
  }

  getCF(): number {
    if ((this.lazyMask & F.CF) === 0) return this.flags & F.CF;
    const a = this.lazyA,
      b = this.lazyB,
      r = this.lazyRes;
    switch (this.lazyOp) {
      case Lazy.ADD:
        return (((a & b) | ((a | b) & ~r)) >>> this.lazyTop) & 1;
      case Lazy.SUB:
        return (((~a & b) | ((~a | b) & r)) >>> this.lazyTop) & 1;
      default:
        return 0;
    }
  }

  getOF(): boolean {
    if ((this.lazyMask & F.OF) === 0) return (this.flags & F.OF) !== 0;
    const a = this.lazyA,
      b = this.lazyB,
      r = this.lazyRes;
    switch (this.lazyOp) {
      case Lazy.ADD:
        return ((((a ^ r) & (b ^ r)) >>> this.lazyTop) & 1) !== 0;
      case Lazy.SUB:
        return ((((a ^ b) & (a ^ r)) >>> this.lazyTop) & 1) !== 0;
      default:
        return false;
    }
  }

  getZF(): boolean {
    if ((this.lazyMask & F.ZF) === 0) return (this.flags & F.ZF) !== 0;
    return this.lazyRes << (31 - this.lazyTop) === 0;
  }

  getSF(): boolean {
    if ((this.lazyMask & F.SF) === 0) return (this.flags & F.SF) !== 0;
    return ((this.lazyRes >>> this.lazyTop) & 1) !== 0;
  }

  getPF(): boolean {
    if ((this.lazyMask & F.PF) === 0) return (this.flags & F.PF) !== 0;
    return PARITY[this.lazyRes & 0xff] !== 0;
  }

  getAF(): boolean {
    if ((this.lazyMask & F.AF) === 0) return (this.flags & F.AF) !== 0;
    if (this.lazyOp === Lazy.LOGIC) return false;
    return ((this.lazyA ^ this.lazyB ^ this.lazyRes) & 0x10) !== 0;
  }

  /** The whole EFLAGS value. */
  getFlags(): number {
    if (this.lazyMask === 0) return this.flags;
    let f = this.flags & ~this.lazyMask;
    const m = this.lazyMask;
    if (m & F.CF) f |= this.getCF();
    if (m & F.PF && this.getPF()) f |= F.PF;
    if (m & F.AF && this.getAF()) f |= F.AF;
    if (m & F.ZF && this.getZF()) f |= F.ZF;
    if (m & F.SF && this.getSF()) f |= F.SF;
    if (m & F.OF && this.getOF()) f |= F.OF;
    return f;
  }

  /** Materialise lazy flags and replace the bits in `mask` with `value`. */
  setFlagBits(mask: number, value: number): void {
    const f = this.getFlags();
    this.flags = (f & ~mask) | (value & mask) | F.R1;
    this.lazyMask = 0;
  }

  /**
   * Write EFLAGS as POPF/IRET/task switches do: `mask` says which bits may change.
   * Updates the cached VM mode when VM changes.
   */
  setFlags(value: number, mask: number): void {
    const f = this.getFlags();
    const nf = ((f & ~mask) | (value & mask) | F.R1) & ~(0x8 | 0x20 | 0x8000 | 0xffc00000);
    this.flags = nf;
    this.lazyMask = 0;
    if (((nf ^ f) & F.VM) !== 0) this.updateModes();
  }

  /** Evaluate condition code `cc` (0..15, the low nibble of Jcc/SETcc/CMOVcc). */
  cond(cc: number): boolean {
    let r: boolean;
    switch (cc >> 1) {
      case 0:
        r = this.getOF();
        break;
      case 1:
        r = this.getCF() !== 0;
        break;
      case 2:
        r = this.getZF();
        break;
      case 3:
        r = this.getCF() !== 0 || this.getZF();
        break;
      case 4:
        r = this.getSF();
        break;
      case 5:
        r = this.getPF();
        break;
      case 6:
        r = this.getSF() !== this.getOF();
        break;
      default:
        r = this.getZF() || this.getSF() !== this.getOF();
        break;
    }
    return (cc & 1) !== 0 ? !r : r;
  }

  // ======================================================================
  // TLB and paging
  // ======================================================================

  /** MOV CR3: the page directory's base (the low flag bits PWT/PCD kept), the TLB flushed but for global pages. */
  loadCr3(v: number): void {
    this.cr3 = v & ~0xfe7;
    this.flushTlb(false);
  }

  /** Flush the TLB; global pages survive unless `all`. */
  flushTlb(all: boolean): void {
    const tlb = this.tlb;
    this.emptyFetchWindow();
    if (this._tlbOverflow) {
      tlb.fill(0);
      this._tlbCount = 0;
      this._tlbGCount = 0;
      this._tlbOverflow = false;
      return;
    }
    // non-global entries (and any that became global since: dropping one is always allowed)
    const list = this._tlbList;
    for (let i = 0; i < this._tlbCount; i++) tlb[list[i]] = 0;
    this._tlbCount = 0;
    if (!all) return;
    const glist = this._tlbGList;
    for (let i = 0; i < this._tlbGCount; i++) tlb[glist[i]] = 0;
    this._tlbGCount = 0;
  }

  /** INVLPG: drop one page's translation. */
  invalidatePage(lin: number): void {
    this.tlb[lin >>> 12] = 0;
    this.emptyFetchWindow();
  }

  private _tlbSet(page: number, entry: number): void {
    this.emptyFetchWindow();
    const old = this.tlb[page];
    // a new entry, or one that changes kind, goes into its kind's list
    if (old === 0 || ((old ^ entry) & Tlb.GLOBAL) !== 0) {
      if ((entry & Tlb.GLOBAL) === 0) {
        if (this._tlbCount < TLB_LIST_SIZE) this._tlbList[this._tlbCount++] = page;
        else this._tlbOverflow = true;
      } else if (this._tlbGCount < TLB_LIST_SIZE) this._tlbGList[this._tlbGCount++] = page;
      else this._tlbOverflow = true;
    }
    this.tlb[page] = entry;
  }

  private _physRead32(phys: number): number {
    const h = this.mem.hostOffset(phys);
    if (h >= 0 && (h & 3) === 0) return this.mem32[h >> 2];
    return this.mem.read32(phys);
  }

  private _physWrite32(phys: number, v: number): void {
    const h = this.mem.hostOffset(phys);
    if (h >= 0 && (h & 3) === 0) {
      if (this.mem.codePages[h >>> 12] !== 0) this.codeCache?.pageWritten(h >>> 12);
      this.mem.dirtyPages[h >>> 12] = 1;
      this.mem32[h >> 2] = v;
    } else this.mem.write32(phys, v);
  }

  /**
   * Translate a linear address to a physical one, filling the TLB when the page
   * is ordinary memory. Raises #PF. `user` is true for CPL 3 accesses (not for
   * implicit supervisor accesses such as descriptor-table reads).
   */
  translate(lin: number, write: boolean, user: boolean): number {
    this.slowAccess = true;
    let phys: number;
    let flags = Tlb.VALID;
    if ((this.cr0 & CR0.PG) === 0) {
      phys = lin & this.mem.a20Mask;
    } else {
      const pdeAddr = (this.cr3 & ~0xfff) | ((lin >>> 20) & 0xffc);
      let pde = this._physRead32(pdeAddr);
      const errBase = (write ? 2 : 0) | (user ? 4 : 0);
      if ((pde & 1) === 0) return this._pageFault(lin, errBase);
      const wp = (this.cr0 & CR0.WP) !== 0;
      if ((pde & 0x80) !== 0 && (this.cr4 & CR4.PSE) !== 0) {
        // 4 MiB page
        const us = (pde & 4) !== 0;
        const rw = (pde & 2) !== 0;
        if (user && !us) return this._pageFault(lin, errBase | 1);
        if (write && !rw && (user || wp)) return this._pageFault(lin, errBase | 1);
        const want = pde | 0x20 | (write ? 0x40 : 0);
        if (want !== pde) {
          pde = want;
          this._physWrite32(pdeAddr, pde);
        }
        phys = (pde & 0xffc00000) | (lin & 0x3ff000);
        if (!us) flags |= Tlb.NO_USER;
        if (!rw || (pde & 0x40) === 0) flags |= Tlb.NO_WRITE_USER;
        if ((!rw && wp) || (pde & 0x40) === 0) flags |= Tlb.NO_WRITE_SUPER;
        if ((pde & 0x100) !== 0 && (this.cr4 & CR4.PGE) !== 0) flags |= Tlb.GLOBAL;
      } else {
        const pteAddr = (pde & ~0xfff) | ((lin >>> 10) & 0xffc);
        let pte = this._physRead32(pteAddr);
        if ((pte & 1) === 0) return this._pageFault(lin, errBase);
        const us = (pde & pte & 4) !== 0;
        const rw = (pde & pte & 2) !== 0;
        if (user && !us) return this._pageFault(lin, errBase | 1);
        if (write && !rw && (user || wp)) return this._pageFault(lin, errBase | 1);
        if ((pde & 0x20) === 0) {
          pde |= 0x20;
          this._physWrite32(pdeAddr, pde);
        }
        const want = pte | 0x20 | (write ? 0x40 : 0);
        if (want !== pte) {
          pte = want;
          this._physWrite32(pteAddr, pte);
        }
        phys = (pte & ~0xfff) | (lin & 0xfff);
        if (!us) flags |= Tlb.NO_USER;
        if (!rw || (pte & 0x40) === 0) flags |= Tlb.NO_WRITE_USER;
        if ((!rw && wp) || (pte & 0x40) === 0) flags |= Tlb.NO_WRITE_SUPER;
        if ((pte & 0x100) !== 0 && (this.cr4 & CR4.PGE) !== 0) flags |= Tlb.GLOBAL;
      }
      phys = (phys & ~0xfff) | (lin & 0xfff);
    }
    const pm = this.mem.pageMap[(phys >>> 12) & 0xfffff];
    // pages with an armed data breakpoint stay out of the TLB, so every access there comes back here
    if ((pm & PageFlag.SLOW) === 0 && !(this.dataBpArmed && isDataBpPage(this, lin >>> 12))) {
      if (pm & PageFlag.READONLY) flags |= Tlb.NO_WRITE_SUPER | Tlb.NO_WRITE_USER;
      // a write about to happen dirties the page; a clean page keeps writes on the slow path until one does
      const dirty = this.mem.dirtyPages;
      if (write) dirty[pm >>> 12] = 1;
      if (this.mem.codePages[pm >>> 12] !== 0 || dirty[pm >>> 12] === 0) flags |= Tlb.CODE;
      this._tlbSet(lin >>> 12, ((pm & ~0xfff) ^ (lin & ~0xfff)) | flags);
    }
    return phys;
  }

  /**
   * Fill the TLB entry for a read of `lin` as translate() does (A bits
   * included), or do nothing and return false where translate() would raise
   * #PF or the page stays out of the TLB. For the wasm tier, whose inline
   * lookup found no entry (the TLB flushed by a CR3 load), so that it goes on
   * in compiled code without a trip through the interpreter; the access is
   * the one the instruction makes next. Reads only: an A bit may be set ahead
   * of the access (SDM vol. 3, 4.8: accessed flags may be set
   * speculatively), a D bit may not.
   */
  fillTlbForRead(lin: number, user: boolean): boolean {
    return this._fillTlb(lin, false, user);
  }

  /**
   * The same for a write, only where the page's D bit is set already (the
   * walk then sets no D bit ahead of the write; an A bit at most).
   */
  fillTlbForWrite(lin: number, user: boolean): boolean {
    return this._fillTlb(lin, true, user);
  }

  private _fillTlb(lin: number, write: boolean, user: boolean): boolean {
    if ((this.cr0 & CR0.PG) !== 0) {
      const pde = this._physRead32((this.cr3 & ~0xfff) | ((lin >>> 20) & 0xffc));
      if ((pde & 1) === 0) return false;
      let e: number;
      if ((pde & 0x80) !== 0 && (this.cr4 & CR4.PSE) !== 0) e = pde;
      else {
        const pte = this._physRead32((pde & ~0xfff) | ((lin >>> 10) & 0xffc));
        if ((pte & 1) === 0) return false;
        e = (pte & ~6) | (pde & pte & 6);
      }
      if (user && (e & 4) === 0) return false;
      // a write: writable for this access, and dirty already
      if (write && ((e & 0x40) === 0 || ((e & 2) === 0 && (user || (this.cr0 & CR0.WP) !== 0)))) return false;
    }
    this.translate(lin, write, user);
    return (this.tlb[lin >>> 12] & (write ? this.tlbWriteMask : this.tlbReadMask)) === Tlb.VALID;
  }

  private _pageFault(lin: number, code: number): never {
    this.cr2 = lin;
    return this.raiseErr(Vec.PF, code);
  }

  // ======================================================================
  // Linear memory access (the hot path: one TLB load and one compare)
  // ======================================================================

  rd8(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbReadMask) === Tlb.VALID) return this.mem8[(e & ~0xfff) ^ lin];
    return this._rd8Slow(lin);
  }

  rd16(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbReadMask) === Tlb.VALID && (lin & 0xfff) !== 0xfff) {
      const h = (e & ~0xfff) ^ lin;
      return (h & 1) === 0 ? this.mem16[h >> 1] : this.mem8[h] | (this.mem8[h + 1] << 8);
    }
    return this._rd16Slow(lin);
  }

  rd32(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbReadMask) === Tlb.VALID && (lin & 0xfff) <= 0xffc) {
      const h = (e & ~0xfff) ^ lin;
      if ((h & 3) === 0) return this.mem32[h >> 2];
      const m = this.mem8;
      return m[h] | (m[h + 1] << 8) | (m[h + 2] << 16) | (m[h + 3] << 24);
    }
    return this._rd32Slow(lin);
  }

  wr8(lin: number, v: number): void {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbWriteMask) === Tlb.VALID) {
      this.mem8[(e & ~0xfff) ^ lin] = v;
      return;
    }
    this._wr8Slow(lin, v);
  }

  wr16(lin: number, v: number): void {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbWriteMask) === Tlb.VALID && (lin & 0xfff) !== 0xfff) {
      const h = (e & ~0xfff) ^ lin;
      if ((h & 1) === 0) this.mem16[h >> 1] = v;
      else {
        this.mem8[h] = v;
        this.mem8[h + 1] = v >> 8;
      }
      return;
    }
    this._wr16Slow(lin, v);
  }

  wr32(lin: number, v: number): void {
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbWriteMask) === Tlb.VALID && (lin & 0xfff) <= 0xffc) {
      const h = (e & ~0xfff) ^ lin;
      if ((h & 3) === 0) this.mem32[h >> 2] = v;
      else {
        const m = this.mem8;
        m[h] = v;
        m[h + 1] = v >> 8;
        m[h + 2] = v >> 16;
        m[h + 3] = v >> 24;
      }
      return;
    }
    this._wr32Slow(lin, v);
  }

  private _rd8Slow(lin: number): number {
    const p = this.translate(lin, false, this.cpl === 3);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 1, false);
    return this.mem.read8(p);
  }

  private _wr8Slow(lin: number, v: number): void {
    const p = this.translate(lin, true, this.cpl === 3);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 1, true);
    this.mem.write8(p, v);
  }

  private _rd16Slow(lin: number): number {
    const user = this.cpl === 3;
    const p0 = this.translate(lin, false, user);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 2, false);
    if ((lin & 0xfff) !== 0xfff) return this.mem.read16(p0);
    const p1 = this.translate((lin + 1) | 0, false, user);
    return this.mem.read8(p0) | (this.mem.read8(p1) << 8);
  }

  private _rd32Slow(lin: number): number {
    const user = this.cpl === 3;
    const p0 = this.translate(lin, false, user);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 4, false);
    if ((lin & 0xfff) <= 0xffc) return this.mem.read32(p0);
    const p1 = this.translate(((lin | 0xfff) + 1) | 0, false, user); // CR2 is the first byte on the next page
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const a = ((lin + i) & 0xfff) >= (lin & 0xfff) ? p0 + i : (p1 & ~0xfff) + (((lin + i) & 0xfff) >>> 0);
      v |= this.mem.read8(a) << (i * 8);
    }
    return v;
  }

  private _wr16Slow(lin: number, v: number): void {
    const user = this.cpl === 3;
    const p0 = this.translate(lin, true, user);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 2, true);
    if ((lin & 0xfff) !== 0xfff) {
      this.mem.write16(p0, v);
      return;
    }
    const p1 = this.translate((lin + 1) | 0, true, user);
    this.mem.write8(p0, v & 0xff);
    this.mem.write8(p1, (v >> 8) & 0xff);
  }

  private _wr32Slow(lin: number, v: number): void {
    const user = this.cpl === 3;
    const p0 = this.translate(lin, true, user);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 4, true);
    if ((lin & 0xfff) <= 0xffc) {
      this.mem.write32(p0, v);
      return;
    }
    const p1 = this.translate(((lin | 0xfff) + 1) | 0, true, user);
    for (let i = 0; i < 4; i++) {
      const a = ((lin + i) & 0xfff) >= (lin & 0xfff) ? p0 + i : (p1 & ~0xfff) + ((lin + i) & 0xfff);
      this.mem.write8(a, (v >> (i * 8)) & 0xff);
    }
  }

  /** Check that [lin, lin+len) can be written, faulting now rather than halfway through. */
  probeWrite(lin: number, len: number): void {
    const user = this.cpl === 3;
    const e = this.tlb[lin >>> 12];
    if ((e & this.tlbWriteMask) !== Tlb.VALID) this.translate(lin, true, user);
    const last = ((lin + len - 1) & ~0xfff) | 0; // first byte of the last page touched
    if ((last ^ lin) >>> 12 !== 0) {
      const e2 = this.tlb[last >>> 12];
      if ((e2 & this.tlbWriteMask) !== Tlb.VALID) this.translate(last, true, user);
    }
  }

  /** probeWrite for implicit supervisor accesses (stack frames built by interrupt delivery). */
  probeWriteSys(lin: number, len: number): void {
    this.translate(lin, true, false);
    const last = ((lin + len - 1) & ~0xfff) | 0;
    if ((last ^ lin) >>> 12 !== 0) this.translate(last, true, false);
  }

  /**
   * For a read-modify-write instruction with a memory destination: make sure
   * the destination is writable before any flags change, so a faulting store
   * leaves EFLAGS as they were (the instruction restarts after #PF).
   */
  rmwCheck(size: number): void {
    if (this.modrm < 0xc0) {
      if ((this.segSlow & (1 << (this.eaSeg + SEG_WRITE))) !== 0) segCheck(this, this.eaSeg, this.eaOff, size, true);
      this.probeWrite(this.ea, size);
    }
  }

  /**
   * Supervisor-mode accesses (descriptor tables, TSS, inner-stack frames):
   * privilege is never checked against CPL. Reads go through the TLB, as
   * rd8's do, when the page is in it (a supervisor read of such a page
   * cannot fault, and pages with an armed data breakpoint stay out of it):
   * an idle Linux guest's timer tick reads about 9 descriptors (the IDT
   * gate, segment loads on kernel entry and exit), and a page walk for
   * each of their bytes made 76 walks a tick.
   */
  sysRead8(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & Tlb.VALID) !== 0) return this.mem8[(e & ~0xfff) ^ lin];
    const p = this.translate(lin, false, false);
    // implicit accesses (descriptor tables, TSS, inner-stack frames) hit data breakpoints too
    if (this.dataBpArmed) dataBreakpoint(this, lin, 1, false);
    return this.mem.read8(p);
  }
  sysRead16(lin: number): number {
    return this.sysRead8(lin) | (this.sysRead8((lin + 1) | 0) << 8);
  }
  sysRead32(lin: number): number {
    const e = this.tlb[lin >>> 12];
    if ((e & Tlb.VALID) !== 0 && (lin & 0xfff) <= 0xffc) {
      const h = (e & ~0xfff) ^ lin;
      const m = this.mem8;
      return m[h] | (m[h + 1] << 8) | (m[h + 2] << 16) | (m[h + 3] << 24);
    }
    return this.sysRead16(lin) | (this.sysRead16((lin + 2) | 0) << 16);
  }
  sysWrite8(lin: number, v: number): void {
    const p = this.translate(lin, true, false);
    if (this.dataBpArmed) dataBreakpoint(this, lin, 1, true);
    this.mem.write8(p, v & 0xff);
  }
  sysWrite16(lin: number, v: number): void {
    this.sysWrite8(lin, v);
    this.sysWrite8((lin + 1) | 0, v >> 8);
  }
  sysWrite32(lin: number, v: number): void {
    this.sysWrite16(lin, v);
    this.sysWrite16((lin + 2) | 0, v >> 16);
  }

  // ======================================================================
  // Instruction fetch
  // ======================================================================

  fetch8(): number {
    const eip = this.eip;
    if (eip >= this.fetchLo && eip < this.fetchHi) {
      this.eip = eip + 1;
      return this.mem8[(eip + this.fetchAdj) | 0];
    }
    return this._fetch8Slow();
  }

  /** Fetch through the TLB, then open the fetch window on the page if it is readable RAM. */
  private _fetch8Slow(): number {
    const eip = this.eip;
    // an instruction may be at most 15 bytes long (only prefixed ones can get there: see _prefixes)
    if (((eip - this.instrStart) & this.ipMask) >= 15) this.raiseGP(0);
    const lin = (this.segBase[Seg.CS] + eip) | 0;
    let e = this.tlb[lin >>> 12];
    let v: number;
    if ((e & this.tlbReadMask) === Tlb.VALID) v = this.mem8[(e & ~0xfff) ^ lin];
    else {
      v = this.mem.read8(this.translate(lin, false, this.cpl === 3));
      e = this.tlb[lin >>> 12];
    }
    this.eip = (eip + 1) & this.ipMask;
    if ((e & this.tlbReadMask) === Tlb.VALID) {
      // window = the EIPs on this page, kept below the wrap point of EIP so `eip + 1` needs no mask
      const lo = eip - (lin & 0xfff);
      const hi = lo + 0x1000;
      const top = this.ipMask === 0xffff ? 0xffff : 0x7fffffff;
      this.fetchLo = lo < -0x80000000 ? -0x80000000 : lo;
      this.fetchHi = hi > top ? top : hi;
      this.fetchAdj = (((e & ~0xfff) ^ lin) - eip) | 0;
    }
    return v;
  }

  fetch16(): number {
    const eip = this.eip;
    if (eip >= this.fetchLo && eip + 1 < this.fetchHi) {
      this.eip = eip + 2;
      const h = (eip + this.fetchAdj) | 0;
      return this.mem8[h] | (this.mem8[h + 1] << 8);
    }
    const lo = this.fetch8();
    return lo | (this.fetch8() << 8);
  }

  fetch32(): number {
    const eip = this.eip;
    if (eip >= this.fetchLo && eip + 3 < this.fetchHi) {
      this.eip = eip + 4;
      const h = (eip + this.fetchAdj) | 0;
      const m = this.mem8;
      return m[h] | (m[h + 1] << 8) | (m[h + 2] << 16) | (m[h + 3] << 24);
    }
    const lo = this.fetch16();
    return lo | (this.fetch16() << 16);
  }

  /** Fetch a 16- or 32-bit immediate by operand size. */
  fetchImm(): number {
    return this.o32 ? this.fetch32() : this.fetch16();
  }

  // ======================================================================
  // ModRM decoding
  // ======================================================================

  /** Fetch a ModRM byte; for memory forms compute `ea` (linear) and `eaOff`. */
  decodeModrm(): number {
    const m = this.fetch8();
    this.modrm = m;
    if (m < 0xc0) this.ea = this.a32 ? this._ea32(m) : this._ea16(m);
    return m;
  }

  private _ea16(m: number): number {
    const mod = m >> 6;
    const rm = m & 7;
    const r = this.reg16;
    let off: number;
    let seg = Seg.DS;
    switch (rm) {
      case 0:
        off = r[6] + r[12];
        break; // BX+SI
      case 1:
        off = r[6] + r[14];
        break; // BX+DI
      case 2:
        off = r[10] + r[12];
        seg = Seg.SS;
        break; // BP+SI
      case 3:
        off = r[10] + r[14];
        seg = Seg.SS;
        break; // BP+DI
      case 4:
        off = r[12];
        break;
      case 5:
        off = r[14];
        break;
      case 6:
        if (mod === 0) {
          off = this.fetch16();
        } else {
          off = r[10];
          seg = Seg.SS;
        }
        break;
      default:
        off = r[6];
        break;
    }
    if (mod === 1) off += (this.fetch8() << 24) >> 24;
    else if (mod === 2) off += this.fetch16();
    off &= 0xffff;
    if (this.segOvr >= 0) seg = this.segOvr;
    this.eaSeg = seg;
    this.eaOff = off;
    return (this.segBase[seg] + off) | 0;
  }

  private _ea32(m: number): number {
    const mod = m >> 6;
    const rm = m & 7;
    const r = this.reg32;
    let off: number;
    let seg = Seg.DS;
    if (rm === 4) {
      const sib = this.fetch8();
      const base = sib & 7;
      const idx = (sib >> 3) & 7;
      if (base === 5 && mod === 0) {
        off = this.fetch32();
      } else {
        off = r[base];
        if (base === 4 || base === 5) seg = Seg.SS;
      }
      if (idx !== 4) off = (off + (r[idx] << (sib >> 6))) | 0;
    } else if (rm === 5 && mod === 0) {
      off = this.fetch32();
    } else {
      off = r[rm];
      if (rm === 5) seg = Seg.SS;
    }
    if (mod === 1) off = (off + ((this.fetch8() << 24) >> 24)) | 0;
    else if (mod === 2) off = (off + this.fetch32()) | 0;
    if (this.segOvr >= 0) seg = this.segOvr;
    this.eaSeg = seg;
    this.eaOff = off;
    return (this.segBase[seg] + off) | 0;
  }

  /** Linear address for an access of `len` bytes at a data offset in DS (or the override), limit-checked. */
  dataLin(off: number, len: number, write: boolean): number {
    const seg = this.segOvr >= 0 ? this.segOvr : Seg.DS;
    if ((this.segSlow & (1 << (seg + (write ? SEG_WRITE : 0)))) !== 0) segCheck(this, seg, off, len, write);
    return (this.segBase[seg] + off) | 0;
  }

  // r/m operand helpers (register when ModRM mod = 3)
  readRm8(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.reg8[((m & 3) << 2) | ((m >> 2) & 1)];
    if ((this.segSlow & (1 << this.eaSeg)) !== 0) segCheck(this, this.eaSeg, this.eaOff, 1, false);
    return this.rd8(this.ea);
  }
  writeRm8(v: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.reg8[((m & 3) << 2) | ((m >> 2) & 1)] = v;
    else {
      if ((this.segSlow & (1 << (this.eaSeg + SEG_WRITE))) !== 0) segCheck(this, this.eaSeg, this.eaOff, 1, true);
      this.wr8(this.ea, v);
    }
  }
  readRm16(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.reg16[(m & 7) << 1];
    if ((this.segSlow & (1 << this.eaSeg)) !== 0) segCheck(this, this.eaSeg, this.eaOff, 2, false);
    return this.rd16(this.ea);
  }
  writeRm16(v: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.reg16[(m & 7) << 1] = v;
    else {
      if ((this.segSlow & (1 << (this.eaSeg + SEG_WRITE))) !== 0) segCheck(this, this.eaSeg, this.eaOff, 2, true);
      this.wr16(this.ea, v);
    }
  }
  readRm32(): number {
    const m = this.modrm;
    if (m >= 0xc0) return this.reg32[m & 7];
    if ((this.segSlow & (1 << this.eaSeg)) !== 0) segCheck(this, this.eaSeg, this.eaOff, 4, false);
    return this.rd32(this.ea);
  }
  writeRm32(v: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.reg32[m & 7] = v;
    else {
      if ((this.segSlow & (1 << (this.eaSeg + SEG_WRITE))) !== 0) segCheck(this, this.eaSeg, this.eaOff, 4, true);
      this.wr32(this.ea, v);
    }
  }
  /** reg8 index of the ModRM reg field. */
  regIdx8(): number {
    const r = (this.modrm >> 3) & 7;
    return ((r & 3) << 2) | (r >> 2);
  }

  // ======================================================================
  // Stack
  // ======================================================================

  get esp(): number {
    return this.reg32[4];
  }

  push16(v: number): void {
    const sp = (this.reg32[4] - 2) & this.ssMask;
    if ((this.segSlow & SS_WRITE) !== 0) segCheck(this, Seg.SS, sp, 2, true);
    this.wr16((this.segBase[Seg.SS] + sp) | 0, v);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | sp;
  }

  push32(v: number): void {
    const sp = (this.reg32[4] - 4) & this.ssMask;
    if ((this.segSlow & SS_WRITE) !== 0) segCheck(this, Seg.SS, sp, 4, true);
    this.wr32((this.segBase[Seg.SS] + sp) | 0, v);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | sp;
  }

  /** push32 without the segment check, for compiled blocks (they run only while SS is flat: src/jit/blocks.ts flatMask). */
  pushFlat32(v: number): void {
    const sp = (this.reg32[4] - 4) & this.ssMask;
    this.wr32((this.segBase[Seg.SS] + sp) | 0, v);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | sp;
  }

  /** pop32 without the segment check, for compiled blocks (see pushFlat32). */
  popFlat32(): number {
    const sp = this.reg32[4] & this.ssMask;
    const v = this.rd32((this.segBase[Seg.SS] + sp) | 0);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | ((sp + 4) & this.ssMask);
    return v;
  }

  push(v: number): void {
    if (this.o32) this.push32(v);
    else this.push16(v);
  }

  pop16(): number {
    const sp = this.reg32[4] & this.ssMask;
    if ((this.segSlow & SS_READ) !== 0) segCheck(this, Seg.SS, sp, 2, false);
    const v = this.rd16((this.segBase[Seg.SS] + sp) | 0);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | ((sp + 2) & this.ssMask);
    return v;
  }

  pop32(): number {
    const sp = this.reg32[4] & this.ssMask;
    if ((this.segSlow & SS_READ) !== 0) segCheck(this, Seg.SS, sp, 4, false);
    const v = this.rd32((this.segBase[Seg.SS] + sp) | 0);
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | ((sp + 4) & this.ssMask);
    return v;
  }

  pop(): number {
    return this.o32 ? this.pop32() : this.pop16();
  }

  /** Read the stack at ESP+offset without popping. */
  peek16(offset: number): number {
    const sp = (this.reg32[4] + offset) & this.ssMask;
    if ((this.segSlow & SS_READ) !== 0) segCheck(this, Seg.SS, sp, 2, false);
    return this.rd16((this.segBase[Seg.SS] + sp) | 0);
  }
  peek32(offset: number): number {
    const sp = (this.reg32[4] + offset) & this.ssMask;
    if ((this.segSlow & SS_READ) !== 0) segCheck(this, Seg.SS, sp, 4, false);
    return this.rd32((this.segBase[Seg.SS] + sp) | 0);
  }
  adjustSp(delta: number): void {
    this.reg32[4] = (this.reg32[4] & ~this.ssMask) | ((this.reg32[4] + delta) & this.ssMask);
  }

  // ======================================================================
  // Control transfer helpers
  // ======================================================================

  /** Near jump to an offset within CS (operand size truncates, as the architecture does). */
  jumpNear(target: number): void {
    this.eip = this.o32 ? target : target & 0xffff;
  }

  // ======================================================================
  // The run loop
  // ======================================================================

  /**
   * Execute up to `budget` instructions. Returns the number executed. Stops early
   * on HLT or when stopRequested is set. Exceptions are delivered here; a triple
   * fault throws TripleFault.
   */
  run(budget: number): number {
    let done = 0;
    while (done < budget && !this.stopRequested) {
      if (this.halted) {
        if (!this._checkInterrupts()) break;
        continue;
      }
      this.left = budget - done;
      this._leftAtStart = this.left;
      try {
        this._loop();
      } catch (e) {
        if (e !== this.fault) {
          done += this._endSlice();
          throw e;
        }
        this.left--; // the faulting instruction counts, so a fault loop still makes progress
        done += this._endSlice();
        this._handleFault(); // may throw TripleFault: the count is already taken
        continue;
      }
      done += this._endSlice();
    }
    return done;
  }

  /** Close the accounting of one _loop() run; returns how many instructions it executed. */
  private _endSlice(): number {
    const n = this._leftAtStart - this.left;
    this._leftAtStart = this.left = 0;
    this.instructionsRun += n;
    return n;
  }

  /**
   * PAUSE (F3 90), the spin-wait hint: it takes PAUSE_CYCLES of the nominal
   * clock, as PAUSE does on current cores, so guest time (and the TSC) passes
   * faster in spin-wait loops and they cost the host less. Never past the end
   * of the slice, whose length is the time to the next timer deadline.
   */
  pause(): void {
    const extra = Math.min(PAUSE_CYCLES - 1, this.left - 1);
    if (extra > 0) this.left -= extra;
  }

  /** Instructions executed since reset, exact even in the middle of run(). */
  instructionCount(): number {
    return this.instructionsRun + (this._leftAtStart - this.left);
  }

  /** The time-stamp counter now (one tick per instruction). */
  readTsc(): number {
    return this.tscOffset + this.instructionsRun + (this._leftAtStart - this.left);
  }

  writeTsc(v: number): void {
    this.tscOffset = v - (this.instructionsRun + (this._leftAtStart - this.left));
  }

  private _loop(): void {
    const ops = OPS;
    const cache = this.codeCache;
    while (this.left > 0) {
      // an interrupt request only needs the slow step while IF lets it in: a guest
      // running with interrupts off and an IRQ pending stays on the fast path
      const f = this.flags;
      if ((this.intrLine && (f & F.IF) !== 0) || this.nmiPending || this.inhibitIrq || (f & (F.TF | F.RF)) !== 0 || this.debugActive) {
        if (this._slowStep()) return;
        continue;
      }
      if (cache !== null && cache.enter(this)) {
        if (this.stopRequested) return;
        continue;
      }
      this.instrStart = this.eip;
      this.o32 = this.code32;
      this.a32 = this.code32;
      this.segOvr = -1;
      this.rep = 0;
      this.lock = false;
      let op = this.fetch8();
      if (IS_PREFIX[op] !== 0) op = this._prefixes(op);
      ops[op | (this.o32 ? 0x100 : 0)](this);
      this.left--;
      if (this.halted || this.stopRequested) return;
    }
  }

  /** Set Tlb.CODE in the TLB entries that map host page `hp`, so writes through them invalidate its compiled code. */
  markCodePage(hp: number): void {
    if (this._tlbOverflow) {
      this.flushTlb(true);
      return;
    }
    const tlb = this.tlb;
    const mark = (list: Int32Array, n: number): void => {
      for (let k = 0; k < n; k++) {
        const p = list[k];
        const e = tlb[p];
        if (e !== 0 && (e ^ (p << 12)) >>> 12 === hp) tlb[p] = e | Tlb.CODE;
      }
    };
    mark(this._tlbList, this._tlbCount);
    mark(this._tlbGList, this._tlbGCount);
  }

  /**
   * One instruction with the checks the hot loop skips, in the priority order of
   * SDM vol. 3, 6.9: a queued debug trap, interrupts (unless inhibited by STI or
   * MOV SS), instruction breakpoints (debug.ts), the instruction, RF cleared
   * after it, and the single-step trap (not after MOV SS / POP SS, whose trap
   * waits one instruction, nor after an instruction that delivered an
   * interrupt or exception). Returns true to leave the loop.
   */
  private _slowStep(): boolean {
    if (this.debugTrap !== 0 && takeDebugTrap(this)) {
      this._deliverExternal(Vec.DB);
      return this.halted || this.stopRequested;
    }
    if (this.inhibitIrq) {
      this.inhibitIrq = false;
    } else if (this._checkInterrupts()) {
      return this.halted;
    }
    // the instruction after MOV SS / POP SS: no instruction breakpoint (as Bochs; the SDM: "may not be triggered")
    const shadow = this.ssShadow;
    this.ssShadow = 0;
    if (shadow === 0 && this.debugActive && codeBreakpoint(this)) {
      this._deliverExternal(Vec.DB);
      return this.halted || this.stopRequested;
    }
    const flags0 = this.flags;
    const ints = this.interruptCount;
    this.debugHits = shadow & 0xf;
    this.instrStart = this.eip;
    this.o32 = this.code32;
    this.a32 = this.code32;
    this.segOvr = -1;
    this.rep = 0;
    this.lock = false;
    let op = this.fetch8();
    if (IS_PREFIX[op] !== 0) op = this._prefixes(op);
    OPS[op | (this.o32 ? 0x100 : 0)](this);
    this.left--;
    if ((flags0 & F.RF) !== 0 && op !== 0xcf) this.flags &= ~F.RF;
    // single-step trap after the instruction (SDM 17.3.1.4)
    let step = (flags0 & F.TF) !== 0 && this.interruptCount === ints;
    const hits = this.debugHits;
    if (op === 0x17 || (op === 0x8e && (this.modrm & 0x38) === 0x10)) {
      // MOV SS / POP SS: its traps (single step, data breakpoints) come after the next
      // instruction, with that one's (SDM vol. 3, 6.8.3); the step is the next one's own
      this.ssShadow = SHADOW | hits;
      this.debugHits = 0;
      return this.halted || this.stopRequested;
    }
    if (step || hits !== 0) {
      // data and I/O breakpoints are traps too: one #DB reports both (B0-B3 as QEMU sets them: the hits only)
      if (hits !== 0) {
        this.debugHits = 0;
        this.dr[6] = (this.dr[6] & ~0xf) | hits;
      }
      if (step) this.dr[6] |= DR6.BS;
      this._deliverExternal(Vec.DB);
    }
    return this.halted || this.stopRequested;
  }

  /** Deliver a pending NMI or maskable interrupt. Returns true if one was taken. */
  private _checkInterrupts(): boolean {
    if (this.nmiPending) {
      this.nmiPending = false;
      this.halted = false;
      this._deliverExternal(Vec.NMI);
      return true;
    }
    if (this.intrLine && (this.flags & F.IF) !== 0 && this.pic !== null) {
      const vec = this.pic.acknowledge();
      this.halted = false;
      this._deliverExternal(vec);
      return true;
    }
    return false;
  }

  private _deliverExternal(vec: number): void {
    this.instrStart = this.eip;
    try {
      deliverInterrupt(this, vec, false, 0, false, this.eip);
    } catch (e) {
      if (e !== this.fault) throw e;
      this._handleFault();
    }
  }

  private _prefixes(op: number): number {
    let n = 0;
    // fetches past the 15-byte limit take the slow path, which raises #GP
    if (this.fetchLo <= this.instrStart && this.fetchHi > this.instrStart + 15) this.fetchHi = this.instrStart + 15;
    for (;;) {
      switch (op) {
        case 0x66:
          this.o32 = !this.code32;
          break;
        case 0x67:
          this.a32 = !this.code32;
          break;
        case 0x26:
          this.segOvr = Seg.ES;
          break;
        case 0x2e:
          this.segOvr = Seg.CS;
          break;
        case 0x36:
          this.segOvr = Seg.SS;
          break;
        case 0x3e:
          this.segOvr = Seg.DS;
          break;
        case 0x64:
          this.segOvr = Seg.FS;
          break;
        case 0x65:
          this.segOvr = Seg.GS;
          break;
        case 0xf0:
          this.lock = true;
          break;
        case 0xf2:
        case 0xf3:
          this.rep = op;
          break;
        default:
          if (this.lock) this._checkLock(op);
          return op;
      }
      if (++n >= 15) this.raiseGP(0); // instruction longer than 15 bytes
      op = this.fetch8();
    }
  }

  /**
   * LOCK is allowed only on read-modify-write instructions with a memory
   * destination (SDM LOCK); anything else raises #UD. Peeks at the next bytes.
   */
  private _checkLock(op: number): void {
    const eip = this.eip;
    let ok = false;
    let b = op;
    if (op === 0x0f) b = 0x100 | this.fetch8();
    const modrm = this.fetch8();
    this.eip = eip;
    const reg = (modrm >> 3) & 7;
    if (modrm < 0xc0) {
      if (b < 0x38 && (b & 7) < 2) ok = true; // ADD OR ADC SBB AND SUB XOR r/m, r
      else if (b >= 0x80 && b <= 0x83) ok = reg !== 7;
      else if (b === 0x86 || b === 0x87) ok = true;
      else if (b === 0xf6 || b === 0xf7) ok = reg === 2 || reg === 3;
      else if (b === 0xfe || b === 0xff) ok = reg < 2;
      else if (b === 0x1ab || b === 0x1b3 || b === 0x1bb || b === 0x1b0 || b === 0x1b1 || b === 0x1c0 || b === 0x1c1) ok = true;
      else if (b === 0x1ba) ok = reg >= 5;
      else if (b === 0x1c7) ok = reg === 1;
    }
    if (!ok) this.raiseUD();
  }

  /** Deliver the exception in `fault`, escalating to #DF and triple fault per SDM table 6-5. */
  private _handleFault(): void {
    const f = this.fault;
    let vec = f.vector;
    let hasErr = f.hasErrorCode;
    let err = f.errorCode;
    this.eip = this.instrStart;
    for (;;) {
      // RF in the pushed (or TSS-saved) EFLAGS; delivery clears it in the live flags
      if (SETS_RF[vec] !== 0) this.flags |= F.RF;
      const prev = this.deliveringVector;
      if (prev >= 0) {
        this.faultChain += ` -> ${vecName(vec)}`;
        if (prev === Vec.DF) {
          this.deliveringVector = -1;
          throw new TripleFault(this.faultChain);
        }
        const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
        if ((contributory(prev) && contributory(vec)) || (prev === Vec.PF && (contributory(vec) || vec === Vec.PF))) {
          vec = Vec.DF;
          hasErr = true;
          err = 0;
          this.faultChain += ` -> ${vecName(vec)}`;
        }
      } else {
        this.faultChain = vecName(vec);
      }
      this.deliveringVector = vec;
      try {
        deliverInterrupt(this, vec, hasErr, err, false, this.eip);
        this.deliveringVector = -1;
        return;
      } catch (e) {
        if (e !== this.fault) throw e;
        vec = f.vector;
        hasErr = f.hasErrorCode;
        err = f.errorCode;
      }
    }
  }
}

/** Cpu.ssShadow: a MOV SS / POP SS shadow is active (the low bits hold held-back DR6 B0-B3). */
export const SHADOW = 0x100;
/**
 * Fault-class exceptions other than #DB: their EFLAGS image gets RF set (SDM vol. 3,
 * 17.3.1.1 and 6.15), so an IRET back to the faulting instruction does not hit its
 * instruction breakpoint again. #DE #BR #UD #NM #TS #NP #SS #GP #PF #MF #AC #XM.
 */
const SETS_RF = new Uint8Array(32);
for (const v of [0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19]) SETS_RF[v] = 1;

const VEC_NAMES = ['#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', 'CSO', '#TS', '#NP', '#SS', '#GP', '#PF', 'v15', '#MF', '#AC', '#MC', '#XM'];
export function vecName(v: number): string {
  return VEC_NAMES[v] ?? `vector ${v}`;
}
