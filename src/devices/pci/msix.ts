/**
 * MSI-X (PCI Local Bus 3.0, 6.8.2): a capability in configuration space and
 * a table of message address/data/mask entries plus a pending-bit array in a
 * memory BAR. A function signals vector n by writing the entry's data to its
 * address; the board turns that write into a local APIC delivery.
 *
 *   capability: +0 id 0x11, +1 next, +2 message control (bits 10:0 table
 *   size - 1, bit 14 function mask, bit 15 enable), +4 table offset | BIR,
 *   +8 PBA offset | BIR.
 *   table entry (16 bytes): address low, address high, data, vector control
 *   (bit 0 masked; set at reset).
 *
 * A masked vector (or all vectors, under the function mask) that fires sets
 * its pending bit; unmasking delivers it and clears the bit.
 */
import { u32s, type Fields } from '../../state/schema.js';

export const PCI_CAP_ID_MSIX = 0x11;
export const enum MsixCtrl {
  ENABLE = 0x8000,
  FUNCTION_MASK = 0x4000,
}
const ENTRY_MASKED = 1;

/** Where a message goes: the board delivers it to the local APIC. */
export type MsiSink = (addrLo: number, addrHi: number, data: number) => void;

/** The declared state of `vectors` MSI-X vectors (the owner's schema holds it as a struct): the table and the pending bits. */
export function msixFields(vectors: number): Fields {
  return { table: u32s(4 * vectors), pba: u32s(Math.ceil(vectors / 32)) };
}
/** Msix properties that are not state: the size (configuration), message control (the owner's configuration space holds it) and the sink (wiring). */
export const MSIX_TRANSIENT = ['vectors', 'control', 'sink'];

export class Msix {
  /** 4 dwords per vector. */
  readonly table: Uint32Array;
  readonly pba: Uint32Array;
  /** Message control as configuration space holds it (the owner mirrors writes here). */
  control = 0;
  sink: MsiSink = () => {};

  constructor(readonly vectors: number) {
    this.table = new Uint32Array(4 * vectors);
    this.pba = new Uint32Array(Math.ceil(vectors / 32));
    this.reset();
  }

  get enabled(): boolean {
    return (this.control & MsixCtrl.ENABLE) !== 0;
  }

  reset(): void {
    this.table.fill(0);
    for (let v = 0; v < this.vectors; v++) this.table[4 * v + 3] = ENTRY_MASKED;
    this.pba.fill(0);
    this.control = 0;
  }

  /** The guest wrote message control: unmasking may release pending vectors. */
  setControl(v: number): void {
    this.control = v & (MsixCtrl.ENABLE | MsixCtrl.FUNCTION_MASK);
    this._releasePending();
  }

  /** Signal `vector`. False when MSI-X is disabled (the caller uses INTx) or the vector does not exist. */
  notify(vector: number): boolean {
    if (!this.enabled) return false;
    if (vector < 0 || vector >= this.vectors) return true; // NO_VECTOR: the driver asked for silence
    if (this.control & MsixCtrl.FUNCTION_MASK || this.table[4 * vector + 3] & ENTRY_MASKED) {
      this.pba[vector >>> 5] |= 1 << (vector & 31);
      return true;
    }
    this._send(vector);
    return true;
  }

  private _send(vector: number): void {
    const t = this.table;
    this.sink(t[4 * vector], t[4 * vector + 1], t[4 * vector + 2]);
  }

  private _releasePending(): void {
    if (!this.enabled || this.control & MsixCtrl.FUNCTION_MASK) return;
    for (let v = 0; v < this.vectors; v++) {
      const bit = 1 << (v & 31);
      if (this.pba[v >>> 5] & bit && !(this.table[4 * v + 3] & ENTRY_MASKED)) {
        this.pba[v >>> 5] &= ~bit;
        this._send(v);
      }
    }
  }

  /** A dword read of the table (offset within it). Out of range reads 0. */
  readTable(off: number): number {
    const i = off >>> 2;
    return i < this.table.length ? this.table[i] : 0;
  }

  writeTable(off: number, v: number): void {
    const i = off >>> 2;
    if (i >= this.table.length) return;
    if ((i & 3) === 3) {
      this.table[i] = v & ENTRY_MASKED;
      this._releasePending();
    } else {
      this.table[i] = v >>> 0;
    }
  }

  /** The PBA is read-only. */
  readPba(off: number): number {
    const i = off >>> 2;
    return i < this.pba.length ? this.pba[i] : 0;
  }
}

/**
 * The local APIC's view of an MSI write (Intel SDM vol. 3, 11.11): address
 * 0xFEEx_xxxx with destination ID in bits 19:12 and destination mode in bit
 * 2; data with the vector in bits 7:0 and delivery mode in bits 10:8.
 * Returns null for an address outside the interrupt window (the write is
 * dropped, as a bus would master-abort it).
 */
export function decodeMsi(addrLo: number, addrHi: number, data: number): { vector: number; mode: number; logical: boolean; dest: number } | null {
  if (addrHi !== 0 || addrLo >>> 20 !== 0xfee) return null;
  return { vector: data & 0xff, mode: (data >>> 8) & 7, logical: (addrLo & 4) !== 0, dest: (addrLo >>> 12) & 0xff };
}
