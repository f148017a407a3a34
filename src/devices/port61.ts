/**
 * Port 0x61: PC/AT system control port B, as the PIIX3 provides it (NMI Status
 * and Control Register, "NMISC").
 *
 * Reference: Intel 82371SB (PIIX3) datasheet, NMISC register: bit 0 timer
 * counter 2 GATE (R/W), bit 1 speaker data enable (R/W), bits 2-3 PCI SERR# and
 * IOCHK# NMI disables (R/W), bit 4 refresh cycle toggle (RO), bit 5 timer
 * counter 2 OUT status (RO), bits 6-7 IOCHK# / SERR# NMI sources (RO, never set
 * here). The refresh toggle flips every 15.085 us (the AT refresh period: PIT
 * counter 1 in mode 2 with a count of 18); SeaBIOS and Linux time short delays
 * with it, so it is computed from guest time.
 */
import type { IoPorts } from '../bus/ports.js';
import type { Clock } from '../time/clock.js';
import { defineState, loadChecked, saveFields, u8 } from '../state/schema.js';
import { PIT_HZ } from './i8254.js';

/** Bits of port 0x61. */
export const enum Nmisc {
  TIM2_GATE = 0x01,
  SPKR_DAT_EN = 0x02,
  PCI_SERR_DIS = 0x04,
  IOCHK_DIS = 0x08,
  REF_TOGGLE = 0x10,
  TIM2_OUT = 0x20,
  IOCHK_NMI = 0x40,
  SERR_NMI = 0x80,
}

export const PORT_61 = 0x61;
/** The writable bits. */
const NMISC_WRITABLE = Nmisc.TIM2_GATE | Nmisc.SPKR_DAT_EN | Nmisc.PCI_SERR_DIS | Nmisc.IOCHK_DIS;
/** DRAM refresh request period: 18 PIT clocks. */
const REFRESH_CLOCKS = 18;
export const REFRESH_TOGGLE_NS = (REFRESH_CLOCKS * 1e9) / PIT_HZ;

/** What port 0x61 needs from the PIT: counter 2's GATE and OUT. */
export interface SpeakerTimer {
  setGate(counter: number, level: boolean): void;
  out(counter: number): boolean;
}

/** Speaker counter on the PIT. */
const SPEAKER_COUNTER = 2;

export interface Port61State {
  [field: string]: number;
  value: number;
}

/** Dependencies the board passes to port 0x61. */
export interface Port61Deps {
  ports: IoPorts;
  clock: Clock;
  /** The PIT (its counter 2). */
  timer: SpeakerTimer;
}

export class Port61 {
  /** NMI status and control: the writable bits (the others are read live from the PIT and the clock). */
  static readonly stateSchema = defineState<Port61>('port61', 1, { value: u8.at('_value').range(0, NMISC_WRITABLE) }, { transient: ['_clock', '_timer'] });
  readonly id: string;
  private readonly _clock: Clock;
  private readonly _timer: SpeakerTimer;
  private _value = 0;

  constructor(id: string, deps: Port61Deps) {
    this.id = id;
    this._clock = deps.clock;
    this._timer = deps.timer;
    deps.ports.register(id, PORT_61, 1, {
      read8: () => this._read(),
      write8: (_p, v) => this._write(v),
    });
  }

  /** Whether the speaker is sounding: data enabled and counter 2's OUT high (for a host audio backend). */
  speakerLevel(): boolean {
    return (this._value & Nmisc.SPKR_DAT_EN) !== 0 && this._timer.out(SPEAKER_COUNTER);
  }

  reset(): void {
    this._write(0);
  }

  saveState(): Port61State {
    return saveFields(Port61.stateSchema.fields, this) as Port61State;
  }

  loadState(s: Port61State): void {
    loadChecked(this.id, Port61.stateSchema, this, s);
  }

  private _read(): number {
    const refresh = Math.floor(this._clock.nowNs / REFRESH_TOGGLE_NS) & 1;
    return (
      this._value |
      (refresh ? Nmisc.REF_TOGGLE : 0) |
      (this._timer.out(SPEAKER_COUNTER) ? Nmisc.TIM2_OUT : 0)
    );
  }

  private _write(v: number): void {
    this._value = v & NMISC_WRITABLE;
    this._timer.setGate(SPEAKER_COUNTER, (v & Nmisc.TIM2_GATE) !== 0);
  }
}
