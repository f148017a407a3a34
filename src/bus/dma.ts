/**
 * DMA views: how a device reads and writes guest physical memory (fw_cfg DMA,
 * bus-master IDE, virtio rings) without holding the machine. Every access is
 * bounds-checked; an access that falls outside guest memory does nothing and
 * reports failure, which the device turns into the error its hardware reports.
 */
import { PAGE_SIZE, PageFlag, type PhysicalMemory } from './memory.js';

/** Highest physical address + 1 a 32-bit bus master can reach. */
export const PHYS_LIMIT_32 = 0x1_0000_0000;

export interface DmaView {
  /** Copy `dst.length` bytes from physical `addr` into `dst`. False (and nothing copied) if out of range. */
  read(addr: number, dst: Uint8Array): boolean;
  /** Copy `src` to physical `addr`. False (and nothing written) if out of range. */
  write(addr: number, src: Uint8Array): boolean;
}

/** A DMA view over a flat byte array starting at physical 0 (tests, simple boards). */
export class ArrayDmaView implements DmaView {
  constructor(readonly mem: Uint8Array) {}

  private _inRange(addr: number, len: number): boolean {
    return Number.isInteger(addr) && addr >= 0 && addr + len <= this.mem.length;
  }

  read(addr: number, dst: Uint8Array): boolean {
    if (!this._inRange(addr, dst.length)) return false;
    dst.set(this.mem.subarray(addr, addr + dst.length));
    return true;
  }

  write(addr: number, src: Uint8Array): boolean {
    if (!this._inRange(addr, src.length)) return false;
    this.mem.set(src, addr);
    return true;
  }
}

/**
 * A DMA view over the machine's physical memory map: RAM directly, ROM pages
 * ignore writes and MMIO pages go through their handlers, as a bus master's
 * cycles would. Addresses must lie below 4 GiB.
 */
export class PhysicalMemoryDmaView implements DmaView {
  constructor(readonly memory: PhysicalMemory) {}

  private _inRange(addr: number, len: number): boolean {
    return Number.isInteger(addr) && addr >= 0 && addr + len <= PHYS_LIMIT_32;
  }

  read(addr: number, dst: Uint8Array): boolean {
    if (!this._inRange(addr, dst.length)) return false;
    const m = this.memory;
    for (let i = 0; i < dst.length; ) {
      const a = addr + i;
      const n = Math.min(dst.length - i, PAGE_SIZE - (a % PAGE_SIZE));
      const host = m.hostOffset(a);
      if (host >= 0) dst.set(m.mem.subarray(host, host + n), i);
      else for (let j = 0; j < n; j++) dst[i + j] = m.read8(a + j);
      i += n;
    }
    return true;
  }

  write(addr: number, src: Uint8Array): boolean {
    if (!this._inRange(addr, src.length)) return false;
    const m = this.memory;
    for (let i = 0; i < src.length; ) {
      const a = addr + i;
      const n = Math.min(src.length - i, PAGE_SIZE - (a % PAGE_SIZE));
      const host = m.hostOffset(a);
      const readOnly = (m.pageMap[Math.floor(a / PAGE_SIZE) & 0xfffff] & PageFlag.READONLY) !== 0;
      if (host >= 0 && !readOnly) {
        if (m.codePages[host >>> 12] !== 0) m.onCodeWrite(host >>> 12);
        m.mem.set(src.subarray(i, i + n), host);
      }
      else if (!readOnly) for (let j = 0; j < n; j++) m.write8(a + j, src[i + j]);
      i += n;
    }
    return true;
  }
}
