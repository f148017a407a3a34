/**
 * The I/O-port space: 65536 ports, each with dense handler arrays per width
 * (v86 io.js style), so dispatch is one array load and one call.
 *
 * A device registers byte handlers and, if it has real 16/32-bit registers,
 * wider ones. Wider accesses to byte-only ports are split into byte accesses
 * (as the ISA bus does). Unmapped ports read all-ones and ignore writes; the
 * misses are counted for the monitor.
 */
export type PortRead = (port: number) => number;
export type PortWrite = (port: number, value: number) => void;

export interface PortHandlers {
  read8?: PortRead;
  write8?: PortWrite;
  read16?: PortRead;
  write16?: PortWrite;
  read32?: PortRead;
  write32?: PortWrite;
}

export class PortConflictError extends Error {}

export class IoPorts {
  readonly read8: PortRead[] = new Array<PortRead>(0x10000);
  readonly write8: PortWrite[] = new Array<PortWrite>(0x10000);
  readonly read16: PortRead[] = new Array<PortRead>(0x10000);
  readonly write16: PortWrite[] = new Array<PortWrite>(0x10000);
  readonly read32: PortRead[] = new Array<PortRead>(0x10000);
  readonly write32: PortWrite[] = new Array<PortWrite>(0x10000);
  private readonly _owner: (string | null)[] = new Array<string | null>(0x10000).fill(null);
  missedReads = 0;
  missedWrites = 0;
  private readonly _unmappedRead8: PortRead;
  private readonly _unmappedWrite8: PortWrite;
  /**
   * Wide accesses that fall back to byte accesses on consecutive ports: one
   * handler each, shared by every port (they take the port as an argument),
   * not four closures per port (262144 of them, some 18 MiB of JS heap).
   */
  private readonly _split16: PortRead;
  private readonly _splitW16: PortWrite;
  private readonly _split32: PortRead;
  private readonly _splitW32: PortWrite;

  constructor() {
    const r8: PortRead = () => {
      this.missedReads++;
      return 0xff;
    };
    const w8: PortWrite = () => {
      this.missedWrites++;
    };
    this._unmappedRead8 = r8;
    this._unmappedWrite8 = w8;
    const rd8 = this.read8;
    const wr8 = this.write8;
    const rd16 = this.read16;
    const wr16 = this.write16;
    this._split16 = (port) => rd8[port](port) | (rd8[(port + 1) & 0xffff]((port + 1) & 0xffff) << 8);
    this._splitW16 = (port, v) => {
      wr8[port](port, v & 0xff);
      wr8[(port + 1) & 0xffff]((port + 1) & 0xffff, (v >>> 8) & 0xff);
    };
    this._split32 = (port) => {
      const lo = rd16[port](port);
      const hi = rd16[(port + 2) & 0xffff]((port + 2) & 0xffff);
      return (lo | (hi << 16)) >>> 0;
    };
    this._splitW32 = (port, v) => {
      wr16[port](port, v & 0xffff);
      wr16[(port + 2) & 0xffff]((port + 2) & 0xffff, (v >>> 16) & 0xffff);
    };
    this.read8.fill(r8);
    this.write8.fill(w8);
    this.read16.fill(this._split16);
    this.write16.fill(this._splitW16);
    this.read32.fill(this._split32);
    this.write32.fill(this._splitW32);
  }

  /** Port `p`'s wide handlers back to the byte-splitting ones. */
  private _setSplit(p: number): void {
    this.read16[p] = this._split16;
    this.write16[p] = this._splitW16;
    this.read32[p] = this._split32;
    this.write32[p] = this._splitW32;
  }

  /** Map `count` ports from `base` to one device. Overlapping registrations are refused. */
  register(owner: string, base: number, count: number, h: PortHandlers): void {
    for (let p = base; p < base + count; p++) {
      const prev = this._owner[p];
      if (prev !== null && prev !== owner) {
        throw new PortConflictError(`port 0x${p.toString(16)} is already used by ${prev}; ${owner} cannot take it`);
      }
    }
    for (let p = base; p < base + count; p++) {
      this._owner[p] = owner;
      if (h.read8) this.read8[p] = h.read8;
      if (h.write8) this.write8[p] = h.write8;
      if (h.read16) this.read16[p] = h.read16;
      if (h.write16) this.write16[p] = h.write16;
      if (h.read32) this.read32[p] = h.read32;
      if (h.write32) this.write32[p] = h.write32;
    }
  }

  /**
   * Give back ports `owner` holds in [base, base+count) (a PCI BAR or a
   * relocatable register block moving). Ports held by others are untouched.
   */
  unregister(owner: string, base: number, count: number): void {
    for (let p = base; p < base + count && p < 0x10000; p++) {
      if (this._owner[p] !== owner) continue;
      this._owner[p] = null;
      this.read8[p] = this._unmappedRead8;
      this.write8[p] = this._unmappedWrite8;
      this._setSplit(p);
    }
  }

  /** True when every port in [base, base+count) is free or already held by `owner`. */
  isFree(owner: string, base: number, count: number): boolean {
    if (base < 0 || base + count > 0x10000) return false;
    for (let p = base; p < base + count; p++) {
      const o = this._owner[p];
      if (o !== null && o !== owner) return false;
    }
    return true;
  }

  ownerOf(port: number): string | null {
    return this._owner[port & 0xffff];
  }
}
