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
        m.dirtyPages[host >>> 12] = 1;
        m.mem.set(src.subarray(i, i + n), host);
      }
      else if (!readOnly) for (let j = 0; j < n; j++) m.write8(a + j, src[i + j]);
      i += n;
    }
    return true;
  }
}

/**
 * Guest RAM as a para-virtual device reaches it: only ordinary, writable RAM
 * pages, never ROM, MMIO or the PCI hole. `offset()` validates a whole range
 * and returns where it lives in `bytes`, so rings and buffers are read and
 * written in place; a range that is not entirely RAM gives -1, which the
 * device treats as the guest's error.
 */
export interface GuestRam {
  /** The host bytes RAM lives in (index with what offset() returns). */
  readonly bytes: Uint8Array;
  /** Host offset of physical [addr, addr+len), or -1 unless every byte is guest RAM (len 0 checks addr only). */
  offset(addr: number, len: number): number;
  /** Tell the memory system that a device wrote host bytes [off, off+len) (compiled code there is dropped, the pages are dirty). */
  written(off: number, len: number): void;
}

/** GuestRam over a flat array starting at physical 0 (tests). */
export class FlatGuestRam implements GuestRam {
  constructor(readonly bytes: Uint8Array) {}
  offset(addr: number, len: number): number {
    if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > this.bytes.length) return -1;
    if (len === 0 && addr >= this.bytes.length) return -1;
    return addr;
  }
  written(): void {}
}

/**
 * GuestRam over the machine's memory map: a range is RAM when each of its
 * pages maps writable host memory below the RAM size (so the legacy VGA
 * window, BIOS shadow in ROM mode, MMIO BARs and the APIC page are refused).
 * RAM is identity-mapped in host bytes, so a range of RAM pages is contiguous.
 */
export class PhysicalGuestRam implements GuestRam {
  readonly bytes: Uint8Array;
  constructor(readonly memory: PhysicalMemory) {
    this.bytes = memory.mem;
  }

  offset(addr: number, len: number): number {
    const m = this.memory;
    if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > m.ramSize) return -1;
    const first = Math.floor(addr / PAGE_SIZE);
    const last = Math.floor((addr + Math.max(len, 1) - 1) / PAGE_SIZE);
    for (let p = first; p <= last; p++) {
      const e = m.pageMap[p];
      if (e & (PageFlag.SLOW | PageFlag.READONLY)) return -1;
      if ((e & ~0xfff) !== p * PAGE_SIZE) return -1;
    }
    return addr;
  }

  written(off: number, len: number): void {
    const m = this.memory;
    if (len <= 0) return;
    const last = (off + len - 1) >>> 12;
    for (let p = off >>> 12; p <= last; p++) if (m.codePages[p] !== 0) m.onCodeWrite(p);
    m.markWritten(off, len);
  }
}
