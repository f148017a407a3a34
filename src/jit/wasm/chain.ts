/**
 * Chaining of wasm regions (docs/cpu-jit.md, "Chaining"): a small Wasm
 * dispatcher that calls region after region without coming back to JS.
 *
 * Every region function sits in one WebAssembly.Table at the index of its
 * host page. Per host page, the state memory holds a chain slot after guest
 * RAM (bus/layout.ts chainSlotsAt), kept by WasmCache: filled when the page's
 * region is compiled, cleared when the page is written (its generation moves
 * on) or the cache is cleared, so a slot always names a current region:
 *
 *   +0  1 while the page has a current region, else 0
 *   +4  the EIP of the first byte of the page it was compiled for
 *   +8  the CS base it was compiled for
 *   +12 the segments whose checks it needs at entry (Region.segs)
 *   +16 guest instructions its calls have run since it was compiled (a
 *       uint32 that may wrap; WasmCache reads it to find hot regions)
 *
 *   chain(pc, left, hp, csBase, okSegs) -> left
 *
 * calls region `hp` at label `pc`. When it returned having run something
 * and its EIP is off its page (a branch, call, return or fall-through to
 * another page: every other exit leaves EIP on the region's page), the
 * target is looked up as WasmCache.enter looks it up: the TLB entry of
 * CS base + EIP against the read mask, its host page's slot, the same EIP
 * page and CS base, segments among `okSegs` (those that pass the entry
 * checks now; they cannot change in a region). Then that region is called
 * at ~offset (region.ts finds the label, or returns at once untouched when
 * the offset is not one). Anything else returns to JS, which sees the state
 * exactly as after a single region call: EIP and flags in the exchange
 * area, registers in memory, `left` returned. The exchange area also gets
 * the host page of the last region that ran (Xchg.LAST_HP, for the exit
 * statistics) and how many of the calls ran something (Xchg.CHAINED: the
 * first is JS's own call, the rest the dispatcher's).
 *
 * JS calls it only while CS's limit is 4 GiB (no target can fail the limit
 * check the interpreter does) and the other entry checks hold; they hold for
 * the whole chain since no region changes a segment, the mode or paging.
 */
import { CHAIN_SLOT_SHIFT, Layout } from '../../bus/layout.js';
import { Tlb } from '../../cpu/consts.js';
import { I32, ModuleBuilder, Op } from './encoder.js';
import { Xchg } from './region.js';

type Env = { process?: { env?: Record<string, string | undefined> } };

/** TSVM_WASM_CHAIN=0 in the environment turns chaining off (A/B measurements, bisecting). */
export const WASM_CHAIN = (globalThis as Env).process?.env?.['TSVM_WASM_CHAIN'] !== '0';

/** Byte offsets in a chain slot. */
export const enum Slot {
  VALID = 0,
  EIP_PAGE = 4,
  CS_BASE = 8,
  SEGS = 12,
  RAN = 16,
}

/** The dispatcher module's bytes, for a state memory of `memPages` and `hostPages` host pages whose slots start at `slots`. */
export function chainModule(memPages: number, hostPages: number, slots: number): Uint8Array {
  const mb = new ModuleBuilder();
  mb.importMemory('env', 'mem', memPages, memPages);
  mb.importTable('env', 'regions', hostPages);
  const runType = mb.type([I32, I32], [I32]);
  const f = mb.func([I32, I32, I32, I32, I32], [I32]);
  const PC = 0,
    LEFT = 1,
    HP = 2,
    CSB = 3,
    OK = 4;
  const BEFORE = f.local(I32);
  const EIP = f.local(I32);
  const LIN = f.local(I32);
  const E = f.local(I32);
  const N = f.local(I32);
  const SLOT = f.local(I32);
  const x = (slot: number): number => Layout.JIT + slot * 4;
  mb.export('chain', f);
  f.block(); // $out
  f.loop(); // $next
  // run region HP from PC
  f.localGet(LEFT).localSet(BEFORE);
  f.localGet(PC).localGet(LEFT).localGet(HP).callIndirect(runType).localSet(LEFT);
  f.localGet(LEFT).localGet(BEFORE).op(Op.i32_eq).brIf(1);
  // what it ran, credited to its page's slot
  f.localGet(HP).i32Const(CHAIN_SLOT_SHIFT).op(Op.i32_shl).localSet(SLOT);
  f.localGet(SLOT).localGet(SLOT).i32Load(slots + Slot.RAN).localGet(BEFORE).op(Op.i32_add).localGet(LEFT).op(Op.i32_sub).i32Store(slots + Slot.RAN);
  f.localGet(N).i32Const(1).op(Op.i32_add).localSet(N);
  f.i32Const(0).localGet(HP).i32Store(x(Xchg.LAST_HP));
  f.localGet(LEFT).op(Op.i32_eqz).brIf(1);
  // an exit on the region's own page is a proper exit (slow path, an
  // instruction it does not take, the slice end)
  f.i32Const(0).i32Load(x(Xchg.EIP)).localTee(EIP);
  f.localGet(SLOT).i32Load(slots + Slot.EIP_PAGE).op(Op.i32_sub).i32Const(4096).op(Op.i32_lt_u).brIf(1);
  // the next region: TLB entry of CS base + EIP, readable
  f.localGet(CSB).localGet(EIP).op(Op.i32_add).localTee(LIN);
  f.i32Const(12).op(Op.i32_shr_u).i32Const(2).op(Op.i32_shl).i32Load(Layout.TLB).localTee(E);
  f.i32Const(0).i32Load(x(Xchg.RMASK)).op(Op.i32_and).i32Const(Tlb.VALID).op(Op.i32_ne).brIf(1);
  // host page (within RAM, ROMs and VRAM) and its slot
  f.localGet(E).i32Const(~0xfff).op(Op.i32_and).localGet(LIN).op(Op.i32_xor).i32Const(12).op(Op.i32_shr_u).localTee(HP);
  f.i32Const(hostPages).op(Op.i32_ge_u).brIf(1);
  f.localGet(HP).i32Const(CHAIN_SLOT_SHIFT).op(Op.i32_shl).localTee(SLOT).i32Load(slots + Slot.VALID).op(Op.i32_eqz).brIf(1);
  f.localGet(SLOT).i32Load(slots + Slot.EIP_PAGE).localGet(EIP).i32Const(~0xfff).op(Op.i32_and).op(Op.i32_ne).brIf(1);
  f.localGet(SLOT).i32Load(slots + Slot.CS_BASE).localGet(CSB).op(Op.i32_ne).brIf(1);
  f.localGet(SLOT).i32Load(slots + Slot.SEGS).localGet(OK).i32Const(-1).op(Op.i32_xor).op(Op.i32_and).brIf(1);
  // enter it at EIP's offset
  f.localGet(EIP).i32Const(0xfff).op(Op.i32_and).i32Const(-1).op(Op.i32_xor).localSet(PC);
  f.br(0);
  f.end(); // loop
  f.end(); // $out
  f.i32Const(0).localGet(N).i32Store(x(Xchg.CHAINED));
  f.localGet(LEFT);
  return mb.encode();
}
