/**
 * The wasm tier: hot guest pages compiled to WebAssembly regions
 * (wasm/region.ts), with the block compiler (blocks.ts) and the interpreter
 * below it for whatever a region does not run.
 *
 * A region belongs to one host page, one EIP page, one CS base and 32-bit
 * code, and is entered only where what the compiled code assumes holds: the
 * whole EIP page lies within CS's limit and CS's base is page aligned; DS and
 * SS are present, writable, expand-up data segments with 4 GiB limits (so no
 * data access can fail a segment check; their bases are added); the stack is
 * 32-bit. It is keyed
 * by the page's generation (blocks.ts pageGen): any write to the page makes it
 * stale, and a page rewritten more than REWRITE_LIMIT times is left to the
 * lower tiers.
 *
 * Entries: the region is compiled from the entry offsets that reached the
 * threshold. A way into its page that is not one of its labels (the first
 * instruction the lower tiers run there, not the ones they step on through
 * after it) is counted per region, and when the region has seen `threshold`
 * of them it is compiled again with every such offset as an entry (at most
 * RECOMPILE_LIMIT times per page generation). Counted per region, not per
 * offset: a kernel page holds many functions each called a few hundred times
 * from other pages, and per offset they never got hot, so every call ran its
 * first basic blocks in the interpreter (docs/cpu-jit.md, "Entries").
 */
import type { Cpu, CodeCache } from '../cpu/cpu.js';
import { Attr, CR4, Seg, Tlb } from '../cpu/consts.js';
import { CHAIN_SLOT_BYTES, chainSlotsAt, Layout } from '../bus/layout.js';
import { BlockCache } from './blocks.js';
import { fpuImport } from './fpu-call.js';
import { cr3Import, segImport } from './sys-call.js';
import { compileRegion, CROSS_BYTES, EXIT_ENTRY, takes, Xchg, ZERO_BASES, type Entries, type NextPage } from './wasm/region.js';
import { compileClock, instantiate, optimizer, Wasm, WASM_PAGE, type WasmInstance, type WasmMemory, type WasmModule, type WasmTable } from './wasm/host.js';
import { chainModule, Slot, WASM_CHAIN } from './wasm/chain.js';
import { note, operandLin, WASM_STATS } from './wasm/stats.js';

type RunFn = (pc: number, left: number) => number;
type ChainFn = (pc: number, left: number, hp: number, csBase: number, okSegs: number) => number;

const RECOMPILE_LIMIT = 8;
/**
 * Compiles of a page (for new entries) after which a recompile also decodes
 * the code behind RET and JMP (compileRegion's `sweepAll`). Doing it from
 * the first recompile made the default guest's regions twice as large:
 * boot 26.7 s of CPU and 480 MiB peak RSS against 26.0 s and 353 MiB
 * without, sh loop 58.1 s against 46.4 (docs/cpu-jit.md).
 */
const SWEEP_AFTER = 6;
const REWRITE_LIMIT = 32;

interface Region {
  gen: number;
  /** EIP of the page's first byte and the CS base it was compiled for. */
  eipPage: number;
  csBase: number;
  entries: Entries;
  /** Per label index: its straight run's length (compileRegion's `runs`). */
  runs: Uint16Array;
  run: RunFn;
  /** Bit per Seg: the segment-override prefixes it uses (those segments are checked at entry as DS is). */
  segs: number;
  /** Entry offsets it was compiled from. */
  from: number[];
  /** Page offsets entered while not a label, since the last compile. */
  misses: Set<number>;
  /** Entries at those offsets since the last compile. */
  missCount: number;
  compiles: number;
  /** Whether it was handed to the optimiser (its instruction count is in its chain slot, Slot.RAN). */
  optimised: boolean;
  /** Instructions it runs before the optimiser takes it (`hot`, or the cost model's count for its size). */
  hotAt: number;
  /** Its slot's instruction count at the optimiser's last look, and how many looks in a row found it dominant (optimiseHot). */
  ranAtScan: number;
  dominantScans: number;
}

/**
 * When a region is compiled again by the embedder's optimiser (host.ts
 * `optimizer`), once. By default by a cost model (docs/cpu-jit.md, "Hot
 * regions"): TurboFan takes about 0.85 us of the main thread per byte of a
 * region's WebAssembly (1.2 KB per ms, 4-56 ms a region, measured
 * 2026-12-07), and its code saves about 5 ns per guest instruction against
 * Liftoff's (sh loop: 13 -> 8 ns of process CPU each). A region is
 * optimised after HOT_PER_BYTE instructions per byte of its wasm (HOT_MIN
 * at least): about half of what the ski-rental rule (optimise once the time
 * run in Liftoff equals the compile's) gives, since regions hot enough to
 * get there mostly stay hot; and the hottest first, with the optimiser
 * held to OPT_SHARE of the thread's time. A fixed 1 M optimised every kernel page of a network
 * transfer within its first seconds (1.4 s of TurboFan in a 3.5 s, 64 MiB
 * download, which then ran at half the speed of no optimiser at all) and
 * 77 regions during the boot that did not pay back there (docs/benchmarks.md,
 * bench/net, 2026-12-07). `-accel tsvm,hot=N` sets a fixed count instead
 * (no time bound), `hot=0` turns the optimiser off. Where the embedder
 * compiles on another thread (`optimizer.later`), the same count picks
 * the regions and the budget is the other core's (OPT_BG_SHARE).
 */
export const HOT_PER_BYTE = 100;
export const HOT_MIN = 1_000_000;
/** The default's bound on the optimiser: at most this share of the thread's time, at most OPT_BURST_MS of it saved up (optimiseHot). */
const OPT_SHARE = 0.1;
const OPT_BURST_MS = 250;
/**
 * Where the optimiser compiles on another thread (host.ts
 * `optimizer.later`): the budget grows by OPT_BG_SHARE ms per ms of the
 * thread's time and each region costs what this thread spends on it (the
 * region emitted again) plus its
 * estimated time on the other thread, TF_MS_PER_BYTE per byte of its wasm
 * (about 0.85 us measured, docs/cpu-jit.md "Hot regions"), so that the
 * optimiser keeps at most about half of a second core busy.
 */
const OPT_BG_SHARE = 0.5;
const TF_MS_PER_BYTE = 0.001;
/**
 * A region that ran at least 1/DOMINANT_SHARE of the regions' instructions
 * between each of DOMINANT_SCANS looks in a row is optimised even when the
 * budget is spent, and its compile is not charged to the budget: the
 * guest's time is in that one loop (md5sum's block function ran a third of
 * dd+md5 in the baseline code while the budget paid for the kernel's pages
 * optimised before it), so the compile pays back within the same second.
 * Charged, it held back the sh loop's other hot pages (8.5 s against 7.8).
 */
const DOMINANT_SHARE = 4;
const DOMINANT_SCANS = 2;
/** At most this many regions optimised per machine, a bound on the optimiser's memory and compile time. */
const OPTIMISE_LIMIT = 256;
/** Guest instructions run in regions between two looks for hot ones (`hot`, within these bounds: a look reads every page's slot). */
const SCAN_MAX = 4_000_000;
const SCAN_MIN = 100_000;

/**
 * How a call into a region ended: `left` could not pay for the next run
 * (the slice ends), a branch, return or computed target off the region's
 * page, an instruction the region compiler does not take (the interpreter
 * runs it), or an access the inline path does not do (TLB miss, page
 * crossing, store to a code, ROM or MMIO page, a REP chunk's page checks, a
 * return or computed target on the page that is not a label).
 */
export type ExitReason = 'slice end' | 'off the page' | 'instruction not compiled' | 'slow path';
export type OffPageReason = 'TLB miss' | 'no region' | 'other mapping' | 'not a label' | 'at an exit' | 'segments' | 'slice used up';

const FLAT_ATTR = Attr.P | Attr.S | Attr.CODE | Attr.DC | Attr.RW;
const DATA_RW = Attr.P | Attr.S | Attr.RW;

export class WasmCache implements CodeCache {
  readonly blocks: BlockCache;
  /** Regions by host page (an array, not a Map: looked up on every entry). */
  private readonly regions: (Region | undefined)[];
  /** Per host page: entries counted before its region is compiled. */
  private readonly hits: Int32Array;
  /** Per host page: times its region went stale through writes. */
  private readonly rewrites: Uint8Array;
  private readonly xchg: Int32Array;
  private readonly memPages: number;
  /** Chain slots (wasm/chain.ts) as int32s, 4 per host page; the region table and the dispatcher, null when chaining is off. */
  private readonly slots: Int32Array;
  private readonly table: WasmTable | null = null;
  private readonly chain: ChainFn | null = null;
  /** Regions compiled, instructions in them, and host milliseconds spent compiling (compileClock: CPU time of the thread where the embedder installs it). */
  regionsCompiled = 0;
  instructionsCompiled = 0;
  /** Of compileMs, the part spent decoding guest code and writing the WebAssembly (the rest is the engine's compile). */
  emitMs = 0;
  /** Bytes of WebAssembly those compiles produced (the engine keeps each module's bytes beside its code). */
  wasmBytes = 0;
  compileMs = 0;
  /** Guest instructions run in compiled regions. */
  instructionsRun = 0;
  /**
   * Regions the host's WebAssembly engine refused (a compiler bug: the page is
   * then left to the lower tiers instead of stopping the guest), and the first
   * such error. Tests require none.
   */
  compileErrors = 0;
  firstCompileError = '';
  /** Calls into regions from JS, and how they ended (`info jit`, src/jit/info.ts). */
  regionCalls = 0;
  /** Calls into regions made by the chain dispatcher (wasm/chain.ts) after the one from JS. */
  chainedCalls = 0;
  readonly exits: Record<ExitReason, number> = { 'slice end': 0, 'off the page': 0, 'instruction not compiled': 0, 'slow path': 0 };
  /**
   * The 'off the page' exits to JS split by why the chain stopped there (with
   * chaining off, every such exit is one): the target's TLB entry is not
   * valid, its page has no current region, the region is for another EIP
   * page or CS base, the target is not a label, or is an instruction the
   * region exits at, the region's segment checks, or the slice used up.
   */
  readonly offPage: Record<OffPageReason, number> = { 'TLB miss': 0, 'no region': 0, 'other mapping': 0, 'not a label': 0, 'at an exit': 0, segments: 0, 'slice used up': 0 };
  /**
   * Calls from JS that went on after the page walk filled the TLB entry the
   * region or the dispatcher missed (a read's data page, the code page of a
   * target off the page), without a trip through the interpreter.
   */
  dataRefills = 0;
  codeRefills = 0;
  /** After a slow-path exit at a label, the interpreter runs that instruction (entering the region there would exit again at once). */
  private skipEip = -1;
  /** Entries at an EIP of a compiled page that is not a label of its region. */
  labelMisses = 0;
  /** Host page, `cpu.left` and page offset at the last label miss (miss() tells a new way in from the interpreter stepping on). */
  private missHp = -1;
  private missLeft = 0;
  private missOff = 0;
  /**
   * After a way in that is not a label: its EIP page, and the page offset of
   * the region's next label (or exit) after it. Until the interpreter steps
   * past that, one instruction at a time on the same page, `enter` looks up
   * nothing: no region can be entered there, and the blocks tier's table
   * lookup at every step was a cache miss (half of `enter`'s time in 300
   * execs, where `enter` was 10% of the profile).
   */
  private missPage = -1;
  private missEnd = 0;
  /**
   * Entries at an instruction the region decoded and exits at (not taken, or
   * crossing into the next page): the lower tiers run it, no recompile.
   */
  exitEntries = 0;
  /** Regions compiled again for a new entry, found stale (their page written), and pages left to the lower tiers. */
  recompiles = 0;
  invalidations = 0;
  pagesGivenUp = 0;
  /** Hot regions compiled again by the optimiser, the host milliseconds that took (compileClock), and those it refused. */
  regionsOptimised = 0;
  private nextScan = 0;
  /** instructionsRun at the optimiser's last look. */
  private scannedAt = 0;
  /** Host pages whose region was compiled and not yet handed to the optimiser (what optimiseHot looks at, instead of every page). */
  private readonly candidates = new Set<number>();
  /** The optimiser's time budget (ms of compileClock) and when it was last topped up (optimiseHot). */
  private budget = OPT_BURST_MS;
  private budgetAt = -1;
  optimiseMs = 0;
  /** Bytes of wasm handed to the optimiser. */
  optimisedBytes = 0;
  optimiseErrors = 0;
  /**
   * Whether hot regions go to the optimiser on the engine's threads
   * (host.ts `optimizer.later`) and their code is put in place when it is
   * ready; off, the guest's thread waits for the compile (`optimizer.compile`).
   */
  background = optimizer.later !== null;
  /** The optimiser on the engine's threads, where this cache uses it (`background`), else null. */
  get later(): ((bytes: Uint8Array) => Promise<WasmModule>) | null {
    return this.background ? optimizer.later : null;
  }
  /** Writes into pages holding compiled code (pageWritten): the imported FPU and segment load leave the region after a store that made one. */
  private codeWrites = 0;
  /** What every region is instantiated with: the state memory, the FPU its x87 instructions call (fpu-call.ts) and the segment and CR3 loads of its MOV Sreg and MOV CR3 (sys-call.ts). */
  private readonly imports: { env: { mem: WasmMemory; fpu: (op: number, modrm: number, off: number, eip: number) => number; seg: (sreg: number, sel: number) => number; cr3: (v: number, eip: number) => number } };
  /** Optimised modules handed over and not back yet; back but dropped, their page compiled again or written meanwhile; put in place. */
  optimisePending = 0;
  optimiseStale = 0;
  optimisedRunning = 0;

  constructor(
    private readonly cpu: Cpu,
    private readonly memory: WasmMemory,
    readonly threshold: number,
    chain = WASM_CHAIN,
    /** Instructions a region runs before the optimiser compiles it again (0: never; undefined: the cost model, HOT_PER_BYTE). */
    readonly hot: number | undefined = undefined,
  ) {
    this.blocks = new BlockCache(cpu, threshold);
    const pages = cpu.mem.codePages.length;
    this.hits = new Int32Array(pages);
    this.regions = new Array<Region | undefined>(pages).fill(undefined);
    this.rewrites = new Uint8Array(pages);
    this.xchg = new Int32Array(memory.buffer, Layout.JIT, Layout.JIT_BYTES >>> 2);
    this.xchg[Xchg.SHADOW] = -1;
    this.imports = { env: { mem: memory, fpu: fpuImport(cpu, () => this.codeWrites), seg: segImport(cpu, this.xchg, () => this.codeWrites, okSegs), cr3: cr3Import(cpu) } };
    this.memPages = memory.buffer.byteLength / WASM_PAGE;
    const at = chainSlotsAt(cpu.mem.mem.byteLength);
    const room = at + pages * CHAIN_SLOT_BYTES <= memory.buffer.byteLength;
    this.slots = room ? new Int32Array(memory.buffer, at, (pages * CHAIN_SLOT_BYTES) >>> 2) : new Int32Array((pages * CHAIN_SLOT_BYTES) >>> 2);
    if (chain && room) {
      this.table = new Wasm.Table({ element: 'anyfunc', initial: pages });
      // The dispatcher runs between every two regions of a chain (some 19 guest instructions
      // apart on the Linux workloads): it gets the optimiser's code from the start, where one is
      // installed, instead of the baseline compiler's, which spills its locals around every call.
      const bytes = chainModule(this.memPages, pages, at);
      const imports = { env: { mem: memory, regions: this.table } };
      const inst = optimizer.compile !== null ? new Wasm.Instance(optimizer.compile(bytes), imports) : instantiate(bytes, imports);
      this.chain = inst.exports['chain'] as ChainFn;
    }
  }

  /** Whether regions call each other through the chain dispatcher (TSVM_WASM_CHAIN=0 turns it off). */
  get chaining(): boolean {
    return this.chain !== null;
  }

  /** Blocks compiled by the tier below. */
  get compiled(): number {
    return this.blocks.compiled;
  }

  enter(cpu: Cpu): boolean {
    const eip = cpu.eip;
    const off0 = eip & 0xfff;
    if (cpu.left === this.missLeft - 1 && off0 > this.missOff && off0 < this.missEnd && (eip & ~0xfff) === this.missPage) {
      // stepping on towards the next label after a way in that was not one
      this.labelMisses++;
      this.missLeft = cpu.left;
      this.missOff = off0;
      if (WASM_STATS) this.stat(cpu);
      return false;
    }
    if (eip === this.skipEip) this.skipEip = -1;
    else if (cpu.code32 && cpu.stack32 && regionsMayRun(cpu, eip)) {
      const csBase = cpu.segBase[Seg.CS];
      const lin = (csBase + eip) | 0;
      const e = cpu.tlb[lin >>> 12];
      if ((e & cpu.tlbReadMask) === Tlb.VALID) {
        const host = (e & ~0xfff) ^ lin;
        const hp = host >>> 12;
        const r = this.regions[hp];
        const off = eip & 0xfff;
        if (r !== undefined && r.gen === this.blocks.pageGen[hp] && r.eipPage === (eip & ~0xfff) && r.csBase === csBase) {
          const label = r.entries.at(off);
          if (label > 0) {
            if ((r.segs === 0 || overridesOk(cpu, r.segs)) && this.runRegion(cpu, r, label - 1, hp)) return true;
          } else if (label === EXIT_ENTRY) this.exitEntries++;
          else this.miss(r, hp, off, eip);
        } else if (this.rewrites[hp] < REWRITE_LIMIT && ++this.hits[hp] >= this.threshold) {
          this.hits[hp] = 0;
          if (r !== undefined && r.gen !== this.blocks.pageGen[hp]) {
            this.invalidations++;
            if (++this.rewrites[hp] === REWRITE_LIMIT) this.pagesGivenUp++;
          }
          const nr = this.compile(hp, eip, [off]);
          const nl = nr === null ? 0 : nr.entries.at(off);
          if (nr !== null && nl > 0 && (nr.segs === 0 || overridesOk(cpu, nr.segs)) && this.runRegion(cpu, nr, nl - 1, hp)) return true;
        }
      }
    }
    if (WASM_STATS) {
      this.stat(cpu);
      return false;
    }
    return this.blocks.enter(cpu);
  }

  /** Dev-only (wasm/stats.ts): why the instruction at CS:EIP runs outside the regions. */
  private stat(cpu: Cpu): void {
    const eip = cpu.eip;
    const lin = (cpu.segBase[Seg.CS] + eip) | 0;
    const e = cpu.tlb[lin >>> 12];
    if ((e & cpu.tlbReadMask) !== Tlb.VALID) return note('tlb', cpu.mem8, -1, 0, 0);
    const hp = ((e & ~0xfff) ^ lin) >>> 12;
    const off = eip & 0xfff;
    const r = this.regions[hp];
    const mode = cpu.code32 && cpu.stack32 && regionsMayRun(cpu, eip);
    const why = !mode ? 'mode' : r === undefined ? 'cold' : r.gen !== this.blocks.pageGen[hp] ? 'stale' : r.entries.at(off) > 0 ? 'segs/left' : r.entries.at(off) === EXIT_ENTRY ? 'exit' : 'miss';
    note(why, cpu.mem8, hp, off, eip & ~0xfff);
  }

  private miss(r: Region, hp: number, off: number, eip: number): void {
    this.labelMisses++;
    // the interpreter stepping on through the page after a miss (one
    // instruction since the last one, same page, further on) is not a new
    // way in; a step back is (a loop's head: it must become a label)
    const left = this.cpu.left;
    const onward = hp === this.missHp && left === this.missLeft - 1 && off > this.missOff;
    this.missHp = hp;
    this.missLeft = left;
    this.missOff = off;
    if (!onward) {
      this.missPage = eip & ~0xfff;
      this.missEnd = r.entries.nextAfter(off);
    }
    if (onward || r.compiles >= RECOMPILE_LIMIT) return;
    r.misses.add(off);
    if (++r.missCount < this.threshold) return;
    const offs = [...r.from, ...r.misses];
    r.misses.clear();
    r.missCount = 0;
    this.recompiles++;
    const nr = this.compile(hp, eip, offs, r.compiles + 1);
    // a region that cannot start there stays as it was
    if (nr === null) r.compiles = RECOMPILE_LIMIT;
    // one the optimiser had taken was hot: so is, most likely, the same page
    // with one more way in. Waiting for it to get hot again from nothing ran
    // md5sum's block function in the baseline code for a tenth of dd+md5; one
    // more dominant look (optimiseHot) is enough
    else if (r.optimised && this.hot === undefined) {
      nr.hotAt = HOT_MIN;
      nr.dominantScans = DOMINANT_SCANS - 1;
    }
  }

  private compile(hp: number, eip: number, from: number[], compiles = 1): Region | null {
    const cpu = this.cpu;
    this.missPage = -1; // a new region may have labels where the old one had none
    const t0 = compileClock.now();
    const eipPage = eip & ~0xfff;
    const c = compileRegion(cpu.mem8, hp << 12, eipPage, from, this.memPages, compiles > SWEEP_AFTER, this.nextPage(eipPage, cpu.segBase[Seg.CS]), zeroBases(cpu));
    this.emitMs += compileClock.now() - t0;
    if (c === null || c.instructions === 0) return null;
    let inst: WasmInstance;
    try {
      inst = new Wasm.Instance(optimizer.baseline(c.bytes), this.imports);
    } catch (e) {
      if (this.compileErrors++ === 0) this.firstCompileError = `page ${hp.toString(16)}: ${String(e)}`;
      this.rewrites[hp] = REWRITE_LIMIT;
      return null;
    }
    const r: Region = {
      gen: this.blocks.pageGen[hp],
      eipPage,
      csBase: cpu.segBase[Seg.CS],
      entries: c.entries,
      runs: c.runs,
      run: inst.exports['run'] as RunFn,
      segs: c.segs,
      from,
      misses: new Set(),
      missCount: 0,
      compiles,
      optimised: false,
      hotAt: this.hot ?? Math.max(HOT_MIN, c.bytes.length * HOT_PER_BYTE),
      ranAtScan: 0,
      dominantScans: 0,
    };
    this.regions[hp] = r;
    this.candidates.add(hp);
    if (this.table !== null) {
      this.table.set(hp, r.run);
      const s = this.slots;
      const i = (hp * CHAIN_SLOT_BYTES) >>> 2;
      s[i + (Slot.EIP_PAGE >>> 2)] = eipPage;
      s[i + (Slot.CS_BASE >>> 2)] = r.csBase;
      s[i + (Slot.SEGS >>> 2)] = r.segs;
      s[i + (Slot.RAN >>> 2)] = 0;
      s[i + (Slot.VALID >>> 2)] = 1;
    }
    // writes to the page now take the slow path, which makes the region stale
    const codePages = cpu.mem.codePages;
    if (codePages[hp] === 0) {
      codePages[hp] = 1;
      cpu.markCodePage(hp);
    }
    this.regionsCompiled++;
    this.instructionsCompiled += c.instructions;
    this.wasmBytes += c.bytes.length;
    this.compileMs += compileClock.now() - t0;
    return r;
  }

  /** The `n` current regions that have run the most instructions: host page, EIP page, instructions, optimised. */
  hottest(n: number): { hp: number; eipPage: number; ran: number; optimised: boolean }[] {
    const out: { hp: number; eipPage: number; ran: number; optimised: boolean }[] = [];
    const step = CHAIN_SLOT_BYTES >>> 2;
    for (let hp = 0; hp < this.regions.length; hp++) {
      const r = this.regions[hp];
      if (r === undefined || r.gen !== this.blocks.pageGen[hp]) continue;
      out.push({ hp, eipPage: r.eipPage >>> 0, ran: this.slots[hp * step + (Slot.RAN >>> 2)] >>> 0, optimised: r.optimised });
    }
    return out.sort((a, b) => b.ran - a.ran).slice(0, n);
  }

  /**
   * Hand the current regions that have run their `hotAt` instructions and
   * were not handed over yet to the optimiser, the hottest first. Under the
   * default (no fixed `hot`) the optimiser's compiles may take at most
   * OPT_SHARE of the thread's time, with at most OPT_BURST_MS saved up; the
   * rest wait for a later look.
   */
  private optimiseHot(): void {
    const floor = this.hot ?? HOT_MIN;
    this.nextScan = this.instructionsRun + Math.max(SCAN_MIN, Math.min(SCAN_MAX, floor || SCAN_MAX));
    if (floor === 0 || optimizer.compile === null || this.regionsOptimised + this.optimiseErrors >= OPTIMISE_LIMIT) return;
    const now = compileClock.now();
    const bg = this.later !== null;
    if (this.budgetAt >= 0) this.budget = Math.min(OPT_BURST_MS, this.budget + (now - this.budgetAt) * (bg ? OPT_BG_SHARE : OPT_SHARE));
    this.budgetAt = now;
    const since = this.instructionsRun - this.scannedAt;
    this.scannedAt = this.instructionsRun;
    const s = this.slots;
    const step = CHAIN_SLOT_BYTES >>> 2;
    const ran = Slot.RAN >>> 2;
    const hot: number[] = [];
    let dominant = -1;
    for (const hp of this.candidates) {
      const r = this.regions[hp];
      if (r === undefined || r.optimised || r.gen !== this.blocks.pageGen[hp]) {
        this.candidates.delete(hp); // a later compile of the page adds it again
        continue;
      }
      const n = s[hp * step + ran] >>> 0;
      // (a uint32 that may wrap, as the slot's count)
      r.dominantScans = ((n - r.ranAtScan) >>> 0) * DOMINANT_SHARE >= since && since > 0 ? r.dominantScans + 1 : 0;
      r.ranAtScan = n;
      if (n >= r.hotAt) {
        hot.push(hp); // hotAt: `hot`, or at least HOT_MIN
        if (r.dominantScans >= DOMINANT_SCANS) dominant = hp;
      }
    }
    if (this.hot === undefined && this.budget <= 0 && dominant < 0) return;
    hot.sort((a, b) => (s[b * step + ran] >>> 0) - (s[a * step + ran] >>> 0));
    for (const hp of hot) {
      if (this.hot === undefined && this.budget <= 0 && hp !== dominant) continue;
      const t0 = compileClock.now();
      const bytes = this.optimise(hp, this.regions[hp]!);
      // a dominant region's compile pays for itself: it does not hold back the others
      if (hp !== dominant) this.budget -= compileClock.now() - t0 + (bg ? bytes * TF_MS_PER_BYTE : 0);
    }
    this.budgetAt = compileClock.now();
  }

  /**
   * Compile the current region `r` of host page `hp` again with the
   * optimiser (same page, same entries: the same code) and put it in the
   * region's place, now or, on the engine's threads (`background`), when it
   * is ready; on any failure the baseline code stays. Returns the bytes of
   * wasm handed over.
   */
  private optimise(hp: number, r: Region): number {
    r.optimised = true;
    if (this.regionsOptimised + this.optimiseErrors >= OPTIMISE_LIMIT || r.gen !== this.blocks.pageGen[hp]) return 0;
    const t0 = compileClock.now();
    const c = compileRegion(this.cpu.mem8, hp << 12, r.eipPage, r.from, this.memPages, r.compiles > SWEEP_AFTER, this.nextPage(r.eipPage, r.csBase), (r.segs & ZERO_BASES) !== 0);
    if (c === null || c.segs !== r.segs || !c.entries.equals(r.entries)) return 0;
    const later = this.later;
    if (later !== null) {
      this.optimisePending++;
      later(c.bytes).then(
        (m) => {
          this.optimisePending--;
          this.install(hp, r, m);
        },
        () => {
          this.optimisePending--;
          this.optimiseErrors++;
        },
      );
    } else {
      let m: WasmModule;
      try {
        m = optimizer.compile!(c.bytes);
      } catch {
        this.optimiseErrors++;
        return 0;
      }
      if (!this.install(hp, r, m)) return 0;
    }
    this.regionsOptimised++;
    this.optimiseMs += compileClock.now() - t0;
    this.optimisedBytes += c.bytes.length;
    return c.bytes.length;
  }

  /**
   * Put the optimiser's module `m` for region `r` of host page `hp` in the
   * region's place, unless the region is no longer the page's (compiled
   * again for a new entry, or its page written since): then its code would
   * not be the page's and it is dropped. Runs between two calls into the
   * regions, never inside one.
   */
  private install(hp: number, r: Region, m: WasmModule): boolean {
    if (this.regions[hp] !== r || r.gen !== this.blocks.pageGen[hp]) {
      this.optimiseStale++;
      return false;
    }
    try {
      r.run = new Wasm.Instance(m, this.imports).exports['run'] as RunFn;
    } catch {
      this.optimiseErrors++;
      return false;
    }
    this.table?.set(hp, r.run);
    this.optimisedRunning++;
    return true;
  }

  /**
   * The page after EIP page `eipPage` as mapped now for reads (with the CS
   * base the region is compiled for), for instructions that cross into it, or
   * null when it is not in the TLB or not RAM: those instructions then stay
   * exits. The region checks the mapping and the bytes again each time it
   * runs one (region.ts crossCheck).
   */
  private nextPage(eipPage: number, csBase: number): NextPage | null {
    const cpu = this.cpu;
    const lin = (csBase + eipPage + 4096) | 0;
    const e = cpu.tlb[lin >>> 12];
    if ((e & cpu.tlbReadMask) !== Tlb.VALID) return null;
    const h = ((e & ~0xfff) ^ lin) >>> 0;
    if (h + CROSS_BYTES > cpu.mem.mem.byteLength) return null;
    return { lin, bytes: cpu.mem8.subarray(h, h + CROSS_BYTES) };
  }

  /** Run region `r` from label `label`; false when it ran no instruction. */
  private runRegion(cpu: Cpu, r: Region, label: number, hp: number): boolean {
    // (r, label, hp: where the next call into the regions starts; the loop below goes on after a TLB refill)
    const x = this.xchg;
    x[Xchg.FLAGS] = cpu.flags;
    x[Xchg.LKIND] = cpu.lazyOp | (cpu.lazyTop << 8) | (cpu.lazyMask << 16);
    x[Xchg.LA] = cpu.lazyA;
    x[Xchg.LB] = cpu.lazyB;
    x[Xchg.LRES] = cpu.lazyRes;
    x[Xchg.RMASK] = cpu.tlbReadMask;
    x[Xchg.WMASK] = cpu.tlbWriteMask;
    x[Xchg.DSB] = cpu.segBase[Seg.DS];
    x[Xchg.SSB] = cpu.segBase[Seg.SS];
    x[Xchg.ESB] = cpu.segBase[Seg.ES];
    x[Xchg.FSB] = cpu.segBase[Seg.FS];
    x[Xchg.GSB] = cpu.segBase[Seg.GS];
    x[Xchg.CPL] = cpu.cpl;
    const sel = cpu.sreg;
    x[Xchg.SEL] = sel[Seg.ES] | (sel[Seg.CS] << 16);
    x[Xchg.SEL + 1] = sel[Seg.SS] | (sel[Seg.DS] << 16);
    x[Xchg.SEL + 2] = sel[Seg.FS] | (sel[Seg.GS] << 16);
    x[Xchg.INTR] = cpu.intrLine ? 1 : 0;
    const tsc = cpu.readTsc() + cpu.left;
    x[Xchg.TSC_LO] = tsc % 4294967296 | 0;
    x[Xchg.TSC_HI] = Math.floor(tsc / 4294967296) | 0;
    x[Xchg.TSC_OK] = (cpu.cr4 & CR4.TSD) !== 0 && cpu.cpl !== 0 ? 0 : 1;
    const left = cpu.left;
    let after = left;
    const chain = this.chain !== null && cpu.segLimit[Seg.CS] === -1 ? this.chain : null;
    const ok = chain !== null ? okSegs(cpu) : 0;
    for (;;) {
      const before = after;
      if (chain !== null) {
        after = chain(label, before, hp, r.csBase, ok);
        const n = x[Xchg.CHAINED];
        if (n > 1) {
          this.chainedCalls += n - 1;
          hp = x[Xchg.LAST_HP];
          r = this.regions[hp]!;
        }
      } else {
        after = r.run(label, before);
        // (the dispatcher counts what each region ran in its slot; here without it)
        this.slots[(hp * CHAIN_SLOT_BYTES + Slot.RAN) >>> 2] += before - after;
      }
      this.regionCalls++;
      const eip = x[Xchg.EIP];
      const why = this.exitReason(r, eip, after);
      this.exits[why]++;
      if (why === 'off the page') {
        const off = this.offPageReason(r, eip, after);
        this.offPage[off]++;
        // the target's code page not in the TLB (a CR3 load flushed it): walk, and go on there
        // (only where the dispatcher would have gone on: CS's limit is 4 GiB)
        if (off === 'TLB miss' && chain !== null && this.refill((r.csBase + eip) | 0)) {
          const t = this.resumeAt(eip, r.csBase, ok);
          if (t >= 0) {
            hp = t;
            r = this.regions[t]!;
            label = r.entries.at(eip & 0xfff) - 1;
            this.codeRefills++;
            continue;
          }
        }
      } else if (WASM_STATS) {
        const off = (eip - r.eipPage) & 0xfff;
        note(`js exit: ${why}${why === 'slow path' ? slowWhy(cpu, hp * 4096 + off) : ''}`, cpu.mem8, hp, off, r.eipPage);
      }
      const miss = x[Xchg.MISS];
      if (miss !== 0) {
        x[Xchg.MISS] = 0;
        // an access found no TLB entry: walk, and go on in the region at the same instruction (a label)
        if (why === 'slow path') {
          const l = r.entries.at((eip - r.eipPage) & 0xfff);
          if (l > 0 && after > 0 && this.refill(x[Xchg.MISS_LIN], miss === 2) && r.gen === this.blocks.pageGen[hp]) {
            label = l - 1;
            this.dataRefills++;
            continue;
          }
          // the interpreter does it: entering the region there again would only exit again
          if (l > 0) this.skipEip = eip;
        }
      } else if (why === 'slow path' && r.entries.at((eip - r.eipPage) & 0xfff) > 0) this.skipEip = eip;
      break;
    }
    cpu.eip = x[Xchg.EIP];
    cpu.flags = x[Xchg.FLAGS];
    const kind = x[Xchg.LKIND];
    cpu.lazyOp = kind & 0xff;
    cpu.lazyA = x[Xchg.LA];
    cpu.lazyB = x[Xchg.LB];
    cpu.lazyRes = x[Xchg.LRES];
    cpu.lazyTop = (kind >>> 8) & 0xff;
    cpu.lazyMask = kind >>> 16;
    cpu.left = after;
    // the region left right after an STI that set IF: the next instruction is in its shadow
    const shadow = x[Xchg.SHADOW];
    if (shadow !== -1) {
      if (shadow === after) cpu.inhibitIrq = true;
      x[Xchg.SHADOW] = -1;
    }
    this.instructionsRun += left - after;
    if (this.instructionsRun >= this.nextScan) this.optimiseHot();
    return after !== left;
  }

  /** An empty TLB entry for a read (or fetch) or write at `lin` filled by the page walk, where that raises no fault and sets no D bit. */
  private refill(lin: number, write = false): boolean {
    const cpu = this.cpu;
    if (cpu.tlb[lin >>> 12] !== 0) return false;
    return write ? cpu.fillTlbForWrite(lin, cpu.cpl === 3) : cpu.fillTlbForRead(lin, cpu.cpl === 3);
  }

  /**
   * The host page of a current region to go on in at `eip` (a label of it),
   * as the chain dispatcher finds one, or -1. `ok`: the segments that passed
   * the checks (okSegs).
   */
  private resumeAt(eip: number, csBase: number, ok: number): number {
    const cpu = this.cpu;
    const lin = (csBase + eip) | 0;
    const e = cpu.tlb[lin >>> 12];
    if ((e & cpu.tlbReadMask) !== Tlb.VALID) return -1;
    const hp = ((e & ~0xfff) ^ lin) >>> 12;
    const t = this.regions[hp];
    if (t === undefined || t.gen !== this.blocks.pageGen[hp] || t.eipPage !== (eip & ~0xfff) || t.csBase !== csBase) return -1;
    if (t.entries.at(eip & 0xfff) <= 0) return -1;
    if ((t.segs & ~ok) !== 0) return -1;
    return hp;
  }

  /** Why the chain did not go on from region `r` to EIP `eip` off its page (the lookup of wasm/chain.ts, redone in JS). */
  private offPageReason(r: Region, eip: number, left: number): OffPageReason {
    if (left <= 0) return 'slice used up';
    const cpu = this.cpu;
    const lin = (r.csBase + eip) | 0;
    const e = cpu.tlb[lin >>> 12];
    if ((e & cpu.tlbReadMask) !== Tlb.VALID) return 'TLB miss';
    const hp = ((e & ~0xfff) ^ lin) >>> 12;
    const t = this.regions[hp];
    if (t === undefined || t.gen !== this.blocks.pageGen[hp] || this.slots[(hp * CHAIN_SLOT_BYTES + Slot.VALID) >>> 2] === 0) return 'no region';
    if (t.eipPage !== (eip & ~0xfff) || t.csBase !== r.csBase) return 'other mapping';
    const label = t.entries.at(eip & 0xfff);
    if (label === EXIT_ENTRY) return 'at an exit';
    if (label === 0) return 'not a label';
    return 'segments';
  }

  /** Why region `r` returned with EIP `eip` and `left` instructions left of the slice. */
  private exitReason(r: Region, eip: number, left: number): ExitReason {
    const off = (eip - r.eipPage) | 0;
    if (off < 0 || off >= 4096) return 'off the page';
    const label = r.entries.at(off);
    if (label > 0) return left < r.runs[label - 1] ? 'slice end' : 'slow path';
    if (label === EXIT_ENTRY) return 'instruction not compiled';
    const lin = (r.csBase + eip) | 0;
    const e = this.cpu.tlb[lin >>> 12];
    if ((e & this.cpu.tlbReadMask) !== Tlb.VALID) return 'slow path';
    return takes(this.cpu.mem8, (e & ~0xfff) ^ (lin & ~0xfff), off, r.eipPage) ? 'slow path' : 'instruction not compiled';
  }

  pageWritten(hp: number): void {
    this.codeWrites++;
    this.blocks.pageWritten(hp);
    // the region is stale: the dispatcher must not call it
    this.slots[(hp * CHAIN_SLOT_BYTES + Slot.VALID) >>> 2] = 0;
  }

  clear(): void {
    this.missPage = -1;
    this.blocks.clear();
    this.slots.fill(0);
    this.regions.fill(undefined);
    this.candidates.clear();
    this.hits.fill(0);
    this.rewrites.fill(0);
  }
}

/**
 * What compiled regions assume about segments (see the file comment): EIP's
 * page lies within CS's limit, CS's base is page aligned, DS and SS are
 * present writable expand-up data segments with 4 GiB limits.
 */
function regionsMayRun(cpu: Cpu, eip: number): boolean {
  const b = cpu.segBase;
  const l = cpu.segLimit;
  const a = cpu.segAttr;
  return (
    (b[Seg.CS] & 0xfff) === 0 &&
    (eip | 0xfff) >>> 0 <= l[Seg.CS] >>> 0 &&
    (l[Seg.DS] & l[Seg.SS]) === -1 &&
    (a[Seg.DS] & FLAT_ATTR) === DATA_RW &&
    (a[Seg.SS] & FLAT_ATTR) === DATA_RW
  );
}

/**
 * Bit per Seg of the segments that pass overridesOk now (CS: the caller
 * checked its limit is 4 GiB); the chain dispatcher enters a region only if
 * its `segs` are among them.
 */
function okSegs(cpu: Cpu): number {
  const l = cpu.segLimit;
  const a = cpu.segAttr;
  let ok = zeroBases(cpu) ? (1 << Seg.CS) | ZERO_BASES : 1 << Seg.CS;
  for (let s = 0; s < 6; s++) {
    if (s !== Seg.CS && l[s] === -1 && (a[s] & FLAT_ATTR) === DATA_RW) ok |= 1 << s;
  }
  return ok;
}

/** ES, SS and DS have base 0 (region.ts ZERO_BASES). */
function zeroBases(cpu: Cpu): boolean {
  const b = cpu.segBase;
  return (b[Seg.ES] | b[Seg.SS] | b[Seg.DS]) === 0;
}

/** The segments in `segs` (bit per Seg) are usable as DS is: present writable expand-up data, 4 GiB limit. */
function overridesOk(cpu: Cpu, segs: number): boolean {
  if ((segs & ZERO_BASES) !== 0 && !zeroBases(cpu)) return false;
  for (let s = 0; s < 6; s++) {
    if ((segs & (1 << s)) === 0) continue;
    if (s === Seg.CS) {
      // the region leaves through targets it does not check against CS's limit
      if (cpu.segLimit[s] !== -1) return false;
      continue;
    }
    if (cpu.segLimit[s] !== -1 || (cpu.segAttr[s] & FLAT_ATTR) !== DATA_RW) return false;
  }
  return true;
}

/** Dev-only (TSVM_WASM_STATS): why the access of the instruction at host offset `o` left the region's inline path. */
function slowWhy(cpu: Cpu, o: number): string {
  const a = operandLin(cpu.mem8, o, cpu.reg32, cpu.segBase);
  if (a === null) return ' (no modrm operand)';
  const e = cpu.tlb[a.lin >>> 12];
  if ((a.lin & 0xfff) > 4096 - a.size) return ` (crossing, size ${a.size})`;
  if (e === 0) return ` (tlb empty, cpl ${cpu.cpl}${cpu.dataBpArmed ? ', data bp' : ''})`;
  return ` (tlb ${(e & 0xfff).toString(16)} rmask ${cpu.tlbReadMask} wmask ${cpu.tlbWriteMask})`;
}
