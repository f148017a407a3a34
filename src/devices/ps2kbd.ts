/**
 * PS/2 (MF2) keyboard. References: IBM PS/2 Hardware Interface Technical
 * Reference, "Keyboards (101- and 102-Key)": commands, replies, scan code sets
 * and typematic; QEMU hw/input/ps2.c for what SeaBIOS and Linux expect.
 *
 * Modelled: the keyboard commands (reset with BAT, identify AB 83, LEDs, echo,
 * scan code set get/set for sets 1 and 2, typematic rate/delay, enable,
 * disable, defaults, resend); the 16-byte output buffer, cleared by Reset,
 * Enable and the default commands; make/break codes in set 2 (default) or set 1; the
 * typematic repeat of the last key held, timed in guest time.
 *
 * Host input (KeyboardInput in backends.ts): keyDown/keyUp with set-2 make
 * codes (KEY names them). Key events wait in a host-side queue of
 * KEY_QUEUE_EVENTS and enter the output buffer whole, as it has room, so a
 * burst of keys is not lost while the guest is busy.
 *
 * Not modelled: scan code set 3 (answered with Resend, as keyboards without
 * it do), the set-3 key-type commands (acknowledged, ignored), the BAT delay.
 */
import { bool, defineState, f64, i32, loadChecked, saveFields, u8, u8s, u32, u32s } from '../state/schema.js';
import type { Clock, Timer } from '../time/clock.js';
import type { KeyboardInput } from './backends.js';
import { translateSet2, type Ps2Device, type Ps2Port } from './ps2.js';

/** Keyboard commands (from the controller). */
export const enum KbdCmd {
  SET_LEDS = 0xed,
  ECHO = 0xee,
  SCAN_CODE_SET = 0xf0,
  IDENTIFY = 0xf2,
  SET_TYPEMATIC = 0xf3,
  ENABLE = 0xf4,
  DEFAULT_DISABLE = 0xf5,
  SET_DEFAULT = 0xf6,
  SET3_ALL_FIRST = 0xf7, // 0xF7-0xFD: set-3 key types
  SET3_ALL_LAST = 0xfd,
  RESEND = 0xfe,
  RESET = 0xff,
}

/** Keyboard replies. */
export const enum KbdReply {
  ACK = 0xfa,
  BAT_OK = 0xaa,
  ECHO = 0xee,
  RESEND = 0xfe,
  ID1 = 0xab, // MF2 keyboard
  ID2 = 0x83,
  OVERRUN_SET2 = 0x00,
  OVERRUN_SET1 = 0xff,
}

/** The keyboard's output buffer (IBM: 16 bytes). */
export const KBD_BUFFER_BYTES = 16;
/** Host key events waiting for the output buffer; more are dropped and counted. */
export const KEY_QUEUE_EVENTS = 256;
/** The longest make or break sequence (Pause: E1 14 77 E1 F0 14 F0 77). */
const MAX_SEQUENCE = 8;
/** Power-on typematic setting: 10.9 characters/s after 500 ms. */
const TYPEMATIC_DEFAULT = 0x2b;
const TYPEMATIC_DELAY_UNIT_NS = 250_000_000;
/** Typematic period = (8 + A) x 2^B x 4.17 ms, A = bits 2:0, B = bits 4:3 (IBM reference). */
const TYPEMATIC_PERIOD_UNIT_NS = 4_166_667;
/** Key codes (backends.ts KeyboardInput). */
const PAUSE_CODE = 0xe11477;
const PRINT_SCREEN_CODE = 0xe07c;
const EXTENDED = 0xe0;
const EXTENDED_CODE_BASE = 0xe000;
const LAST_PLAIN_CODE = 0x83;
const KEY_UP_FLAG = 0x1000000;

export interface Ps2KeyboardState {
  out: Uint8Array;
  outHead: number;
  outCount: number;
  events: Uint32Array;
  eventHead: number;
  eventCount: number;
  held: Uint8Array;
  scanSet: number;
  scanning: boolean;
  leds: number;
  typematic: number;
  pendingCmd: number;
  lastSent: number;
  repeatCode: number;
  repeatDeadlineNs: number;
}

export class Ps2Keyboard implements Ps2Device, KeyboardInput {
  /**
   * The output buffer, the host key-event queue, which keys are held, the
   * keyboard's settings, a command waiting for its argument, the last byte
   * sent (for RESEND) and the typematic repeat; loading re-arms the repeat.
   */
  static readonly stateSchema = defineState<Ps2Keyboard>(
    'ps2-kbd',
    1,
    {
      out: u8s(KBD_BUFFER_BYTES).at('_out'),
      outHead: u32.at('_outHead').range(0, KBD_BUFFER_BYTES - 1),
      outCount: u32.at('_outCount').range(0, KBD_BUFFER_BYTES),
      events: u32s(KEY_QUEUE_EVENTS).at('_events'),
      eventHead: u32.at('_eventHead').range(0, KEY_QUEUE_EVENTS - 1),
      eventCount: u32.at('_eventCount').range(0, KEY_QUEUE_EVENTS),
      held: u8s(64).at('_held'),
      scanSet: u8.at('_scanSet').range(1, 2),
      scanning: bool.at('_scanning'),
      leds: u8.at('_leds').range(0, 7),
      typematic: u8.at('_typematic').range(0, 0x7f),
      pendingCmd: u8.at('_pendingCmd'),
      lastSent: u8.at('_lastSent'),
      repeatCode: i32.at('_repeatCode'),
      repeatDeadlineNs: f64.at('_repeatDeadlineNs'),
    },
    {
      transient: ['droppedEvents', '_port', '_clock', '_repeatTimer', '_seq', '_xlat'],
      postLoad: (k) => {
        for (let i = 0; i < KEY_QUEUE_EVENTS; i++) k._events[i] &= KEY_UP_FLAG | (KEY_UP_FLAG - 1);
        const p = k._pendingCmd;
        if (p !== KbdCmd.SET_LEDS && p !== KbdCmd.SET_TYPEMATIC && p !== KbdCmd.SCAN_CODE_SET) k._pendingCmd = 0;
        if (heldBit(k._repeatCode) < 0) k._repeatCode = -1;
        const d = k._repeatDeadlineNs;
        k._setRepeat(k._repeatCode >= 0 && d >= 0 ? d : -1);
      },
    },
  );
  readonly id: string;
  /** Host key events dropped because the event queue was full. */
  droppedEvents = 0;

  private readonly _port: Ps2Port;
  private readonly _clock: Clock;
  private readonly _repeatTimer: Timer;

  private readonly _out = new Uint8Array(KBD_BUFFER_BYTES);
  private _outHead = 0;
  private _outCount = 0;
  private readonly _events = new Uint32Array(KEY_QUEUE_EVENTS);
  private _eventHead = 0;
  private _eventCount = 0;
  /** Keys down: bit per plain code (0-255) and per extended code (256 + low byte). */
  private readonly _held = new Uint8Array(64);
  private _scanSet = 2;
  private _scanning = true;
  private _leds = 0;
  private _typematic = TYPEMATIC_DEFAULT;
  private _pendingCmd = 0;
  private _lastSent = 0;
  private _repeatCode = -1;
  private _repeatDeadlineNs = -1;
  private readonly _seq = new Uint8Array(MAX_SEQUENCE);
  private readonly _xlat = { f0: false };

  constructor(id: string, clock: Clock, port: Ps2Port) {
    this.id = id;
    this._clock = clock;
    this._port = port;
    this._repeatTimer = clock.timer(`${id}.typematic`, () => this._repeat());
    port.attach(this);
  }

  /** Power-on state: defaults, scanning enabled, buffers empty, no keys held. */
  reset(): void {
    this._setDefaults();
    this._scanning = true;
    this._leds = 0;
    this._pendingCmd = 0;
    this._outHead = this._outCount = 0;
    this._eventHead = this._eventCount = 0;
    this._held.fill(0);
    this._lastSent = 0;
  }

  /** The LED state the guest set: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock. */
  get leds(): number {
    return this._leds;
  }

  // ---- host side

  keyDown(code: number): void {
    const bit = heldBit(code);
    if (bit < 0 && code !== PAUSE_CODE) return;
    if (bit >= 0) {
      if (this._held[bit >>> 3] & (1 << (bit & 7))) return; // the keyboard repeats held keys itself
      this._held[bit >>> 3] |= 1 << (bit & 7);
    }
    if (!this._scanning) return;
    this._queueEvent(code);
    if (code !== PAUSE_CODE) {
      this._repeatCode = code;
      this._setRepeat(this._clock.nowNs + this._typematicDelayNs());
    }
  }

  keyUp(code: number): void {
    const bit = heldBit(code);
    if (bit < 0) return;
    if (!(this._held[bit >>> 3] & (1 << (bit & 7)))) return;
    this._held[bit >>> 3] &= ~(1 << (bit & 7));
    if (code === this._repeatCode) {
      this._repeatCode = -1;
      this._setRepeat(-1);
    }
    if (!this._scanning) return;
    this._queueEvent(code | KEY_UP_FLAG);
  }

  private _queueEvent(ev: number): void {
    if (this._eventCount >= KEY_QUEUE_EVENTS) {
      this.droppedEvents++;
      return;
    }
    this._events[(this._eventHead + this._eventCount) % KEY_QUEUE_EVENTS] = ev;
    this._eventCount++;
    this._pump();
  }

  /** Move whole key events into the output buffer while they fit. */
  private _pump(): void {
    if (this._pendingCmd !== 0) return; // the keyboard does not scan while it waits for a command's argument
    let moved = false;
    while (this._eventCount > 0) {
      const ev = this._events[this._eventHead];
      const n = this._sequence(ev & (KEY_UP_FLAG - 1), (ev & KEY_UP_FLAG) !== 0);
      if (n > KBD_BUFFER_BYTES - this._outCount) break;
      for (let i = 0; i < n; i++) this._push(this._seq[i]);
      this._eventHead = (this._eventHead + 1) % KEY_QUEUE_EVENTS;
      this._eventCount--;
      moved = true;
    }
    if (moved) this._port.dataReady();
  }

  /** Build a key's make or break sequence in the current set into _seq; returns its length. */
  private _sequence(code: number, up: boolean): number {
    const s = this._seq;
    let n = 0;
    if (code === PAUSE_CODE) {
      if (up) return 0; // Pause has no break code
      for (const b of [0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]) s[n++] = b;
    } else if (code === PRINT_SCREEN_CODE) {
      // with no modifier held the keyboard sends a fake shift around PrintScreen
      if (up) for (const b of [0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12]) s[n++] = b;
      else for (const b of [0xe0, 0x12, 0xe0, 0x7c]) s[n++] = b;
    } else {
      if (code >= EXTENDED_CODE_BASE) s[n++] = EXTENDED;
      if (up) s[n++] = 0xf0;
      s[n++] = code & 0xff;
    }
    if (this._scanSet === 1) {
      // set 1 is set 2 through the 8042's translation table
      let m = 0;
      this._xlat.f0 = false;
      for (let i = 0; i < n; i++) {
        const b = translateSet2(s[i], this._xlat);
        if (b >= 0) s[m++] = b;
      }
      n = m;
    }
    return n;
  }

  // ---- typematic

  private _typematicDelayNs(): number {
    return (1 + ((this._typematic >>> 5) & 3)) * TYPEMATIC_DELAY_UNIT_NS;
  }

  private _typematicPeriodNs(): number {
    const t = this._typematic;
    return (8 + (t & 7)) * (1 << ((t >>> 3) & 3)) * TYPEMATIC_PERIOD_UNIT_NS;
  }

  private _setRepeat(deadlineNs: number): void {
    this._repeatDeadlineNs = deadlineNs;
    if (deadlineNs < 0) this._clock.disarm(this._repeatTimer);
    else this._clock.arm(this._repeatTimer, deadlineNs);
  }

  private _repeat(): void {
    const due = this._repeatDeadlineNs;
    this._repeatDeadlineNs = -1;
    if (this._repeatCode < 0 || due < 0) return;
    // a repeat is skipped, not queued, while earlier output has not drained
    if (this._scanning && this._eventCount === 0 && this._pendingCmd === 0) {
      const n = this._sequence(this._repeatCode, false);
      if (n <= KBD_BUFFER_BYTES - this._outCount) {
        for (let i = 0; i < n; i++) this._push(this._seq[i]);
        this._port.dataReady();
      }
    }
    this._setRepeat(due + this._typematicPeriodNs());
  }

  // ---- controller side

  read(): number {
    if (this._outCount === 0) return -1;
    const v = this._out[this._outHead];
    this._outHead = (this._outHead + 1) % KBD_BUFFER_BYTES;
    this._outCount--;
    this._lastSent = v;
    this._pump();
    return v;
  }

  write(byte: number): void {
    const v = byte & 0xff;
    const cmd = this._pendingCmd;
    if (cmd !== 0) {
      this._pendingCmd = 0;
      this._argument(cmd, v);
      return;
    }
    // Reset, Enable and the two default commands clear the output buffer (IBM reference); others queue behind it
    if (v === KbdCmd.RESET || v === KbdCmd.ENABLE || v === KbdCmd.DEFAULT_DISABLE || v === KbdCmd.SET_DEFAULT) {
      this._outHead = this._outCount = 0;
    }
    switch (v) {
      case KbdCmd.RESET:
        this._setDefaults();
        this._scanning = true;
        this._leds = 0;
        this._reply(KbdReply.ACK);
        this._reply(KbdReply.BAT_OK);
        break;
      case KbdCmd.RESEND:
        // the last byte goes out again, ahead of what was still waiting
        if (this._outCount < KBD_BUFFER_BYTES) {
          this._outHead = (this._outHead + KBD_BUFFER_BYTES - 1) % KBD_BUFFER_BYTES;
          this._out[this._outHead] = this._lastSent;
          this._outCount++;
        }
        break;
      case KbdCmd.SET_DEFAULT:
        this._setDefaults();
        this._scanning = true;
        this._reply(KbdReply.ACK);
        break;
      case KbdCmd.DEFAULT_DISABLE:
        this._setDefaults();
        this._scanning = false;
        this._reply(KbdReply.ACK);
        break;
      case KbdCmd.ENABLE:
        this._scanning = true;
        this._reply(KbdReply.ACK);
        break;
      case KbdCmd.SET_TYPEMATIC:
      case KbdCmd.SET_LEDS:
      case KbdCmd.SCAN_CODE_SET:
        this._pendingCmd = v;
        this._reply(KbdReply.ACK);
        break;
      case KbdCmd.IDENTIFY:
        this._reply(KbdReply.ACK);
        this._reply(KbdReply.ID1);
        this._reply(KbdReply.ID2);
        break;
      case KbdCmd.ECHO:
        this._reply(KbdReply.ECHO);
        break;
      default:
        if (v >= KbdCmd.SET3_ALL_FIRST && v <= KbdCmd.SET3_ALL_LAST) this._reply(KbdReply.ACK);
        else this._reply(KbdReply.RESEND); // not a command: ask the host to send again
    }
    this._pump();
    this._port.dataReady();
  }

  private _argument(cmd: number, v: number): void {
    switch (cmd) {
      case KbdCmd.SET_LEDS:
        this._leds = v & 7;
        this._reply(KbdReply.ACK);
        break;
      case KbdCmd.SET_TYPEMATIC:
        this._typematic = v & 0x7f;
        this._reply(KbdReply.ACK);
        break;
      default: // SCAN_CODE_SET
        if (v === 0) {
          this._reply(KbdReply.ACK);
          this._reply(this._scanSet);
        } else if (v === 1 || v === 2) {
          this._scanSet = v;
          this._reply(KbdReply.ACK);
        } else {
          this._reply(KbdReply.RESEND);
        }
    }
    this._pump();
    this._port.dataReady();
  }

  private _setDefaults(): void {
    this._scanSet = 2;
    this._typematic = TYPEMATIC_DEFAULT;
    this._repeatCode = -1;
    this._setRepeat(-1);
  }

  /** Queue a reply byte (dropped if the buffer is full: key events only enter while whole sequences fit). */
  private _reply(v: number): void {
    if (this._outCount < KBD_BUFFER_BYTES) this._push(v);
  }

  private _push(v: number): void {
    this._out[(this._outHead + this._outCount) % KBD_BUFFER_BYTES] = v;
    this._outCount++;
  }

  // ---- state

  saveState(): Ps2KeyboardState {
    return saveFields(Ps2Keyboard.stateSchema.fields, this) as unknown as Ps2KeyboardState;
  }

  loadState(s: Ps2KeyboardState): void {
    loadChecked(this.id, Ps2Keyboard.stateSchema, this, s);
  }
}

/** Index of a key in the held bitmap, or -1 for a code that is not a key (Pause is not tracked: it has no break). */
function heldBit(code: number): number {
  if (code >= 1 && code <= LAST_PLAIN_CODE) return code;
  if (code > EXTENDED_CODE_BASE && code <= EXTENDED_CODE_BASE + 0x7f) return 256 + (code & 0xff);
  return -1;
}
