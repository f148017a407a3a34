/**
 * Physical memory: one host buffer holding guest RAM followed by ROM images,
 * and a dense map from each 4 KiB physical page to where it lives.
 *
 * pageMap[physPage] = hostOffset | flags, where hostOffset is the page's byte
 * offset in `mem` (a multiple of 4096) and flags say whether the page is
 * read-only (ROM) or must go through the slow path (MMIO, or nothing there).
 * The CPU's TLB caches these, so after changing the map call `onMapChange`.
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

export const enum PageFlag {
  READONLY = 1,
  SLOW = 2,
}

export interface MmioHandlers {
  read8(addr: number): number;
  write8(addr: number, v: number): void;
  read16?(addr: number): number;
  write16?(addr: number, v: number): void;
  read32?(addr: number): number;
  write32?(addr: number, v: number): void;
}

import { Layout, layoutBytes } from './layout.js';

export class MemoryConfigError extends Error {}

export class PhysicalMemory {
  /** Guest RAM bytes (the first `ramSize` bytes of `mem`). */
  readonly ramSize: number;
  readonly mem: Uint8Array;
  readonly mem16: Uint16Array;
  readonly mem32: Int32Array;
  readonly pageMap = new Int32Array(1 << 20);
  private readonly _mmioIndex = new Int16Array(1 << 20).fill(-1);
  private readonly _mmio: MmioHandlers[] = [];
  private _romTop: number;
  /** Called when the page map changes (the CPU flushes its TLB). */
  onMapChange: () => void = () => {};
  /** Bit 20 of physical addresses when A20 is enabled, 0 when the gate masks it. */
  a20Mask = -1;
  /**
   * Per host page (offset in `mem` / 4096): nonzero while the CPU has compiled
   * code from it. Writers that bypass the CPU's TLB call onCodeWrite for such pages.
   */
  readonly codePages: Uint8Array;
  onCodeWrite: (hostPage: number) => void = () => {};
  /**
   * Per host page: nonzero when written since the last markClean() (all set
   * until the first one). The CPU's TLB sends the first write to a clean page
   * down its slow path, as it does writes to code pages (Tlb.CODE), and that
   * path, DMA and every other writer that bypasses the TLB set the byte; so
   * the hot path pays nothing and each page costs one slow write per mark.
   * Guest RAM is identity-mapped in host pages: host page n is RAM page n.
   */
  readonly dirtyPages: Uint8Array;
  /** How many times markClean() ran: a caller that keeps a mark checks nobody else moved it. */
  cleanMarks = 0;

  /**
   * `state`: the machine's state buffer (layout.ts); RAM is placed at
   * Layout.RAM in it. Without one RAM gets a buffer of its own.
   */
  constructor(ramSize: number, romReserve = 2 * 1024 * 1024, state?: ArrayBuffer) {
    if (ramSize < 64 * 1024 || ramSize % PAGE_SIZE !== 0) {
      throw new MemoryConfigError(`RAM size ${ramSize} is not a multiple of 4 KiB of at least 64 KiB`);
    }
    if (ramSize > 3 * 1024 * 1024 * 1024) {
      throw new MemoryConfigError(`RAM size ${ramSize / 1048576} MiB is above the 3 GiB tsvm supports below the PCI hole`);
    }
    this.ramSize = ramSize;
    const bytes = ramSize + romReserve;
    if (state !== undefined && state.byteLength < layoutBytes(bytes)) {
      throw new MemoryConfigError(`the state buffer (${state.byteLength} bytes) is smaller than the ${layoutBytes(bytes)} bytes RAM and ROMs need`);
    }
    const buf = state ?? new ArrayBuffer(bytes);
    const at = state !== undefined ? Layout.RAM : 0;
    this.mem = new Uint8Array(buf, at, bytes);
    this.mem16 = new Uint16Array(buf, at, bytes >>> 1);
    this.mem32 = new Int32Array(buf, at, bytes >>> 2);
    this.codePages = new Uint8Array(bytes >>> PAGE_SHIFT);
    this.dirtyPages = new Uint8Array(bytes >>> PAGE_SHIFT).fill(1);
    this._romTop = ramSize;
    for (let p = 0; p < 1 << 20; p++) {
      this.pageMap[p] = p < ramSize >>> PAGE_SHIFT ? p << PAGE_SHIFT : PageFlag.SLOW;
    }
  }

  /**
   * Place a ROM image at physical address `base` (page aligned), read-only.
   * Returns the host offset of its copy, so it can be aliased elsewhere.
   */
  addRom(base: number, data: Uint8Array): number {
    const size = Math.ceil(data.length / PAGE_SIZE) * PAGE_SIZE;
    if (this._romTop + size > this.mem.length) {
      throw new MemoryConfigError(`ROM of ${data.length} bytes does not fit in the ROM space`);
    }
    const host = this._romTop;
    this.mem.set(data, host);
    this._romTop += size;
    this.mapHost(base, host, size, PageFlag.READONLY);
    return host;
  }

  /** Reserve zeroed host bytes (page multiple) without mapping them, e.g. a device's framebuffer. Returns the host offset. */
  reserve(size: number): number {
    size = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (this._romTop + size > this.mem.length) throw new MemoryConfigError(`no room to reserve ${size} bytes of device memory`);
    const host = this._romTop;
    this._romTop += size;
    return host;
  }

  /** Make physical [base, base+size) decode to nothing (reads all-ones, writes dropped). */
  unmap(base: number, size: number): void {
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const p = ((base + off) >>> PAGE_SHIFT) & 0xfffff;
      this.pageMap[p] = PageFlag.SLOW;
      this._mmioIndex[p] = -1;
    }
    this.onMapChange();
  }

  /** Map physical [base, base+size) to host bytes at `host` with the given flags. */
  mapHost(base: number, host: number, size: number, flags: number): void {
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const p = ((base + off) >>> PAGE_SHIFT) & 0xfffff;
      this.pageMap[p] = (host + off) | flags;
      this._mmioIndex[p] = -1;
    }
    this.onMapChange();
  }

  /** Route physical [base, base+size) to a device (slow path). Mapping the same handlers again reuses their slot. */
  addMmio(base: number, size: number, h: MmioHandlers): void {
    let idx = this._mmio.indexOf(h);
    if (idx < 0) {
      idx = this._mmio.length;
      this._mmio.push(h);
    }
    for (let off = 0; off < size; off += PAGE_SIZE) {
      const p = ((base + off) >>> PAGE_SHIFT) & 0xfffff;
      this.pageMap[p] = PageFlag.SLOW;
      this._mmioIndex[p] = idx;
    }
    this.onMapChange();
  }

  /**
   * How one physical page is mapped now, as an opaque pair, so that a window
   * laid over it (the local APIC page, which the CPU can move anywhere) can
   * put it back with restorePage().
   */
  savePage(phys: number): [number, number] {
    const p = (phys >>> PAGE_SHIFT) & 0xfffff;
    return [this.pageMap[p], this._mmioIndex[p]];
  }

  /** Put back a page mapping taken by savePage(). */
  restorePage(phys: number, saved: [number, number]): void {
    const p = (phys >>> PAGE_SHIFT) & 0xfffff;
    this.pageMap[p] = saved[0];
    this._mmioIndex[p] = saved[1];
    this.onMapChange();
  }

  /**
   * Start a new dirty-page epoch: every RAM page clean. The TLB is flushed
   * (onMapChange) so that its entries are filled again with the first-write
   * trap. ROM and video memory are not tracked (they stay marked).
   */
  markClean(): void {
    this.cleanMarks++;
    this.dirtyPages.fill(0, 0, this.ramSize >>> PAGE_SHIFT);
    this.onMapChange();
  }

  /** Mark host bytes [off, off+len) written (a writer that bypasses the TLB and the slow path). */
  markWritten(off: number, len: number): void {
    if (len <= 0) return;
    this.dirtyPages.fill(1, off >>> PAGE_SHIFT, ((off + len - 1) >>> PAGE_SHIFT) + 1);
  }

  /** RAM pages written since the last markClean(), one bit per 4 KiB page, LSB first (the snapshot page stream's bitmap). */
  dirtyRamBitmap(): Uint8Array {
    const pages = this.ramSize >>> PAGE_SHIFT;
    const out = new Uint8Array(Math.ceil(pages / 8));
    const d = this.dirtyPages;
    for (let p = 0; p < pages; p++) if (d[p] !== 0) out[p >> 3] |= 1 << (p & 7);
    return out;
  }

  /** Byte offset into `mem` for a physical address on a non-slow page, or -1. */
  hostOffset(phys: number): number {
    const e = this.pageMap[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (e & PageFlag.SLOW) return -1;
    return (e & ~0xfff) | (phys & 0xfff);
  }

  // Slow-path physical accesses (MMIO, unmapped, ROM writes, devices doing DMA).
  read8(phys: number): number {
    const e = this.pageMap[(phys >>> PAGE_SHIFT) & 0xfffff];
    if ((e & PageFlag.SLOW) === 0) return this.mem[(e & ~0xfff) | (phys & 0xfff)];
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    return i >= 0 ? this._mmio[i].read8(phys >>> 0) & 0xff : 0xff;
  }

  write8(phys: number, v: number): void {
    const e = this.pageMap[(phys >>> PAGE_SHIFT) & 0xfffff];
    if ((e & (PageFlag.SLOW | PageFlag.READONLY)) === 0) {
      if (this.codePages[e >>> PAGE_SHIFT] !== 0) this.onCodeWrite(e >>> PAGE_SHIFT);
      this.dirtyPages[e >>> PAGE_SHIFT] = 1;
      this.mem[(e & ~0xfff) | (phys & 0xfff)] = v;
      return;
    }
    if (e & PageFlag.READONLY) return;
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (i >= 0) this._mmio[i].write8(phys >>> 0, v & 0xff);
  }

  read16(phys: number): number {
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (i >= 0 && (phys & 0xfff) <= 0xffe) {
      const h = this._mmio[i];
      if (h.read16) return h.read16(phys >>> 0) & 0xffff;
    }
    return this.read8(phys) | (this.read8(phys + 1) << 8);
  }

  write16(phys: number, v: number): void {
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (i >= 0 && (phys & 0xfff) <= 0xffe) {
      const h = this._mmio[i];
      if (h.write16) return h.write16(phys >>> 0, v & 0xffff);
    }
    this.write8(phys, v & 0xff);
    this.write8(phys + 1, (v >>> 8) & 0xff);
  }

  read32(phys: number): number {
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (i >= 0 && (phys & 0xfff) <= 0xffc) {
      const h = this._mmio[i];
      if (h.read32) return h.read32(phys >>> 0) | 0;
    }
    return this.read16(phys) | (this.read16(phys + 2) << 16);
  }

  write32(phys: number, v: number): void {
    const i = this._mmioIndex[(phys >>> PAGE_SHIFT) & 0xfffff];
    if (i >= 0 && (phys & 0xfff) <= 0xffc) {
      const h = this._mmio[i];
      if (h.write32) return h.write32(phys >>> 0, v | 0);
    }
    this.write16(phys, v & 0xffff);
    this.write16(phys + 2, (v >>> 16) & 0xffff);
  }
}
