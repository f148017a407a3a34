/**
 * Where the machine's state lives in its one buffer: the buffer of a
 * WebAssembly.Memory made by the board, so that compiled code (src/jit/wasm)
 * reaches guest RAM, the CPU's TLB and its registers directly, while the
 * interpreter and the devices work on typed-array views of the same bytes.
 *
 *   0x000000  general registers (reg32[0..7], 32 bytes)
 *   0x000100  the JIT's exchange area (EIP, flags and lazy-flag state, TLB
 *             masks, copied in and out around a call into compiled code)
 *   0x010000  TLB: one int32 per linear page, 2^20 entries (4 MiB)
 *   0x410000  guest RAM, then ROMs and VRAM (PhysicalMemory.mem)
 *   then      the wasm tier's chain slots: CHAIN_SLOT_BYTES per host page of
 *             RAM, ROMs and VRAM (src/jit/wasm/chain.ts), which compiled
 *             regions are where; the JIT's bookkeeping, not machine state
 */
export const enum Layout {
  REGS = 0x0,
  JIT = 0x100,
  JIT_BYTES = 0x100,
  TLB = 0x10000,
  RAM = 0x410000,
}

/** Bytes per host page of the chain slots (src/jit/wasm/chain.ts). */
export const CHAIN_SLOT_BYTES = 32;
/** log2(CHAIN_SLOT_BYTES): a host page's slot is at its number shifted left by this. */
export const CHAIN_SLOT_SHIFT = 5;

/** Where the chain slots start, for `memBytes` (a multiple of 4 KiB) of RAM, ROMs and VRAM. */
export function chainSlotsAt(memBytes: number): number {
  return Layout.RAM + memBytes;
}

/** Bytes of the whole buffer for `memBytes` of RAM, ROMs and VRAM. */
export function layoutBytes(memBytes: number): number {
  return Layout.RAM + memBytes + (Math.ceil(memBytes / 4096) * CHAIN_SLOT_BYTES);
}
