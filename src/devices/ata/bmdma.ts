/**
 * Bus-master IDE DMA for one channel (SFF-8038i "Bus Master Programming
 * Interface for IDE ATA Controllers", rev 1.0; Intel 82371SB PIIX3 datasheet
 * section 2.7, BMICx/BMISx/BMIDTPx).
 *
 * Eight bytes per channel at BAR4 (+0 primary, +8 secondary): Command (start
 * bit, direction), Status (active, error, interrupt, drive DMA-capable bits)
 * and the Descriptor Table Pointer. The table is a list of Physical Region
 * Descriptors: a 32-bit memory address (bit 0 ignored), a 16-bit byte count
 * (0 means 64 KiB) and, in the last word, bit 15 marking the last entry.
 *
 * A transfer here runs in one go when the device and the start bit are both
 * ready, so no PRD cursor survives between timer events and none is saved.
 * Bad tables never hang the host: at most PRD_MAX_ENTRIES entries are walked,
 * and an entry or buffer outside guest memory is a PCI master abort, which
 * sets the Error bit.
 */
import type { DmaView } from '../../bus/dma.js';
import { u8, u32, type Fields } from '../../state/schema.js';
import { BmCmd, BmStatus, PRD_ENTRY_BYTES, PRD_EOT, PRD_MAX_BYTES, PRD_MAX_ENTRIES } from './regs.js';

/** How a transfer through the PRD table ended. */
export const enum PrdResult {
  /** Every byte moved. */
  OK = 0,
  /** The table ended (EOT) before the device's data did. */
  SHORT = 1,
  /** A descriptor or buffer was outside memory, or the table had no end. */
  FAULT = 2,
}

/** Writable bits of the status register (bits 1 and 2 are write-1-to-clear). */
const BM_STATUS_RW = BmStatus.DRIVE0_DMA_CAPABLE | BmStatus.DRIVE1_DMA_CAPABLE;
const BM_STATUS_W1C = BmStatus.ERROR | BmStatus.INTERRUPT;
/** The descriptor table pointer is dword aligned (bits 1:0 read as zero). */
const PRD_ADDR_MASK = 0xffff_fffc;

export interface BusMasterState {
  [field: string]: number;
  cmd: number;
  status: number;
  prdAddr: number;
}

export class BusMaster {
  cmd = 0;
  status = 0;
  prdAddr = 0;
  /** Called when the start bit goes from 0 to 1 (the channel runs a waiting DMA command). */
  onStart: () => void = () => {};

  // Walk cursor, valid only inside one transfer.
  private _entry = 0;
  private _addr = 0;
  private _left = 0;
  private _eot = false;
  private readonly _prd = new Uint8Array(PRD_ENTRY_BYTES);

  constructor(private readonly _dma: DmaView) {}

  reset(): void {
    this.cmd = 0;
    this.status = 0;
    this.prdAddr = 0;
  }

  get started(): boolean {
    return (this.cmd & BmCmd.START) !== 0;
  }

  /** Register read; `off` is 0-7 within the channel's block. */
  read8(off: number): number {
    switch (off) {
      case 0:
        return this.cmd;
      case 2:
        return this.status;
      case 4:
      case 5:
      case 6:
      case 7:
        return (this.prdAddr >>> ((off - 4) * 8)) & 0xff;
      default:
        return 0;
    }
  }

  write8(off: number, v: number): void {
    switch (off) {
      case 0: {
        const was = this.cmd;
        this.cmd = v & (BmCmd.START | BmCmd.WRITE_TO_MEMORY);
        if (!(v & BmCmd.START)) {
          // Stopping the engine ends any transfer; Active drops (SFF-8038i 2.1).
          this.status &= ~BmStatus.ACTIVE;
        } else if (!(was & BmCmd.START)) {
          this.status |= BmStatus.ACTIVE;
          this.onStart();
        }
        return;
      }
      case 2:
        this.status = (this.status & ~BM_STATUS_RW & ~(v & BM_STATUS_W1C)) | (v & BM_STATUS_RW);
        return;
      case 4:
      case 5:
      case 6:
      case 7: {
        const shift = (off - 4) * 8;
        this.prdAddr = ((this.prdAddr & ~(0xff << shift)) | ((v & 0xff) << shift)) & PRD_ADDR_MASK;
        this.prdAddr >>>= 0;
        return;
      }
      default:
        return;
    }
  }

  /** Start walking the table from its first entry. */
  begin(): void {
    this._entry = 0;
    this._left = 0;
    this._eot = false;
  }

  /** True when the last descriptor was used up exactly (the table is exhausted). */
  get exhausted(): boolean {
    return this._eot && this._left === 0;
  }

  /** Load the next descriptor: SHORT after the end-of-table entry, FAULT on a bus error or a table without an end. */
  private _next(): PrdResult {
    if (this._eot) return PrdResult.SHORT;
    if (this._entry >= PRD_MAX_ENTRIES) return PrdResult.FAULT;
    const at = this.prdAddr + this._entry * PRD_ENTRY_BYTES;
    this._entry++;
    if (!this._dma.read(at, this._prd)) return PrdResult.FAULT;
    const p = this._prd;
    this._addr = (p[0] | (p[1] << 8) | (p[2] << 16) | (p[3] << 24)) >>> 0;
    this._addr &= ~1;
    const count = p[4] | (p[5] << 8);
    this._left = count === 0 ? PRD_MAX_BYTES : count;
    this._eot = ((p[6] | (p[7] << 8)) & PRD_EOT) !== 0;
    return PrdResult.OK;
  }

  /** Move `buf` into guest memory (toMemory) or fill it from guest memory, through the table. */
  transfer(buf: Uint8Array, toMemory: boolean): PrdResult {
    let done = 0;
    while (done < buf.length) {
      if (this._left === 0) {
        const r = this._next();
        if (r !== PrdResult.OK) return r;
      }
      const n = Math.min(this._left, buf.length - done);
      const part = buf.subarray(done, done + n);
      const ok = toMemory ? this._dma.write(this._addr, part) : this._dma.read(this._addr, part);
      if (!ok) return PrdResult.FAULT;
      this._addr += n;
      this._left -= n;
      done += n;
    }
    return PrdResult.OK;
  }
}

/** The bus master's registers (the PRD walk cursor lives only inside one transfer); loading masks reserved bits (IdeChannel.stateFields). */
export const BUS_MASTER_FIELDS: Fields = { cmd: u8, status: u8, prdAddr: u32 };
export const BUS_MASTER_TRANSIENT = ['onStart', '_dma', '_entry', '_addr', '_left', '_eot', '_prd'];

/** After a load: keep only the bits the registers implement. */
export function busMasterLoaded(bm: BusMaster): void {
  bm.cmd &= BmCmd.START | BmCmd.WRITE_TO_MEMORY;
  bm.status &= BmStatus.ACTIVE | BmStatus.ERROR | BmStatus.INTERRUPT | BM_STATUS_RW;
  bm.prdAddr = (bm.prdAddr & PRD_ADDR_MASK) >>> 0;
}
