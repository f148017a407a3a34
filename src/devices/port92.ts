/**
 * System control port A (port 92h): fast A20 gate and fast CPU reset.
 *
 * Reference: Intel 82371AB PIIX4 datasheet, Port 92h register (bit 0
 * INIT_NOW / fast reset, bit 1 ALT_A20 / fast A20); IBM PS/2 system control
 * port A. Guest-visible behaviour follows QEMU hw/i386/port92.c: every write
 * drives the A20 output from bit 1, a 0 -> 1 transition of bit 0 requests a
 * reset, and reads return the last value written.
 */
import type { IoPorts } from '../bus/ports.js';
import { defineState, loadChecked, saveFields, u8 } from '../state/schema.js';

export const PORT92 = 0x92;

export const enum Port92Bit {
  /** Write 0 -> 1: pulse the CPU's INIT (reset). */
  FAST_RESET = 0x01,
  /** 1 = address line 20 enabled. */
  A20 = 0x02,
}

export interface Port92State {
  value: number;
}

export class Port92 {
  /** The register as the guest last wrote it. */
  static readonly stateSchema = defineState<Port92>('port92', 1, { value: u8.at('_value') });
  readonly id: string;
  /** Board hook: the A20 gate output (true = A20 passes). Called on every write, as QEMU does. */
  onA20: (enabled: boolean) => void = () => {};
  /** Board hook: fast reset requested. */
  onReset: () => void = () => {};
  private _value = 0;

  constructor(id: string, ports: IoPorts) {
    this.id = id;
    ports.register(id, PORT92, 1, {
      read8: () => this._value,
      write8: (_p, v) => this._write(v),
    });
  }

  private _write(v: number): void {
    const old = this._value;
    this._value = v & 0xff;
    this.onA20((v & Port92Bit.A20) !== 0);
    if (v & Port92Bit.FAST_RESET && !(old & Port92Bit.FAST_RESET)) this.onReset();
  }

  /** Power-on / PCI reset: the register reads 00h (A20 gated by this port off). */
  reset(): void {
    this._value = 0;
  }

  saveState(): Port92State {
    return saveFields(Port92.stateSchema.fields, this) as unknown as Port92State;
  }

  loadState(s: Port92State): void {
    loadChecked(this.id, Port92.stateSchema, this, s);
  }
}
