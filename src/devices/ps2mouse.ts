/**
 * PS/2 mouse with the IntelliMouse extensions. References: IBM PS/2 Hardware
 * Interface Technical Reference, "Pointing Device" (commands, status bytes,
 * 2:1 scaling table); Microsoft IntelliMouse and IntelliMouse Explorer
 * protocol notes (sample-rate knock sequences 200/100/80 -> ID 3 with a wheel
 * byte, 200/200/80 -> ID 4 with wheel and buttons 4/5); QEMU hw/input/ps2.c.
 *
 * Modelled: reset (FA AA 00), identify, set sample rate / resolution, 1:1 and
 * 2:1 scaling, stream and remote mode, enable/disable data reporting, status
 * request, read data, wrap (echo) mode, resend, defaults; 3-byte packets (4
 * with ID 3 or 4); a 16-byte output buffer that Reset, Set Defaults and
 * Disable clear. Movement
 * from the host accumulates and goes out as packets while the buffer has room
 * (large moves are split into several packets), so nothing is lost.
 *
 * Not modelled: the sample rate as a packet rate (packets go out as the host
 * reports movement), resolution scaling of host deltas (host counts are sent
 * as device counts).
 */
import { bool, defineState, i32, loadChecked, saveFields, u8, u8s } from '../state/schema.js';
import type { MouseInput } from './backends.js';
import type { Ps2Device, Ps2Port } from './ps2.js';

/** Mouse commands (from the controller, via 0xD4). */
export const enum MouseCmd {
  SET_SCALING_1_1 = 0xe6,
  SET_SCALING_2_1 = 0xe7,
  SET_RESOLUTION = 0xe8,
  STATUS_REQUEST = 0xe9,
  SET_STREAM = 0xea,
  READ_DATA = 0xeb,
  RESET_WRAP = 0xec,
  SET_WRAP = 0xee,
  SET_REMOTE = 0xf0,
  GET_ID = 0xf2,
  SET_SAMPLE_RATE = 0xf3,
  ENABLE = 0xf4,
  DISABLE = 0xf5,
  SET_DEFAULTS = 0xf6,
  RESEND = 0xfe,
  RESET = 0xff,
}

/** Mouse replies. */
export const enum MouseReply {
  ACK = 0xfa,
  BAT_OK = 0xaa,
  RESEND = 0xfe, // invalid command or argument
}

/** Device IDs: standard PS/2 mouse, IntelliMouse (wheel), IntelliMouse Explorer (wheel, 5 buttons). */
export const enum MouseId {
  PS2 = 0,
  INTELLIMOUSE = 3,
  EXPLORER = 4,
}

/** First packet byte. */
const enum Pkt {
  LEFT = 0x01,
  RIGHT = 0x02,
  MIDDLE = 0x04,
  ALWAYS_1 = 0x08,
  X_SIGN = 0x10,
  Y_SIGN = 0x20,
}

/** Status request byte 1. */
const enum StatusByte {
  RIGHT = 0x01,
  MIDDLE = 0x02,
  LEFT = 0x04,
  SCALING_2_1 = 0x10,
  ENABLED = 0x20,
  REMOTE = 0x40,
}

export const MOUSE_BUFFER_BYTES = 16;
const DEFAULT_SAMPLE_RATE = 100;
/** 4 counts/mm. */
const DEFAULT_RESOLUTION = 2;
const VALID_SAMPLE_RATES = [10, 20, 40, 60, 80, 100, 200];
const MAX_RESOLUTION = 3;
/** Movement per packet: 9-bit two's complement. */
const MAX_DELTA = 255;
/** Wheel per packet: 4-bit two's complement, as IntelliMouse reports it. */
const MAX_WHEEL = 7;
const MIN_WHEEL = -8;
/** Accumulated movement beyond this is dropped (a host flooding a guest that does not read). */
const MAX_PENDING = 1 << 20;
/** The 2:1 scaling table for |delta| 0..5; beyond, delta x 2 (IBM reference). */
const SCALE_2_1 = [0, 1, 1, 3, 6, 9];
const BUTTONS_3 = 0x07;
const BUTTONS_5 = 0x1f;
const BUTTON_4_5_SHIFT = 1; // buttons 4/5 (host bits 3/4) go to wheel-byte bits 4/5

export interface Ps2MouseState {
  out: Uint8Array;
  outHead: number;
  outCount: number;
  remote: boolean;
  enabled: boolean;
  scaling21: boolean;
  wrap: boolean;
  resolution: number;
  sampleRate: number;
  deviceId: number;
  rateHistory: Uint8Array;
  pendingCmd: number;
  lastSent: number;
  dx: number;
  dy: number;
  dz: number;
  buttons: number;
  reportPending: boolean;
}


export class Ps2Mouse implements Ps2Device, MouseInput {
  /** The mouse's output buffer, modes, settings, pending movement and the command awaiting its argument. */
  static readonly stateSchema = defineState<Ps2Mouse>(
    'ps2-mouse',
    1,
    {
      out: u8s(MOUSE_BUFFER_BYTES).at('_out'),
      outHead: u8.at('_outHead').range(0, MOUSE_BUFFER_BYTES - 1),
      outCount: u8.at('_outCount').range(0, MOUSE_BUFFER_BYTES),
      remote: bool.at('_remote'),
      enabled: bool.at('_enabled'),
      scaling21: bool.at('_scaling21'),
      wrap: bool.at('_wrap'),
      resolution: u8.at('_resolution').range(0, MAX_RESOLUTION),
      sampleRate: u8.at('_sampleRate'),
      deviceId: u8.at('_deviceId'),
      rateHistory: u8s(3).at('_rateHistory'),
      pendingCmd: u8.at('_pendingCmd'),
      lastSent: u8.at('_lastSent'),
      dx: i32.at('_dx').range(-MAX_PENDING, MAX_PENDING),
      dy: i32.at('_dy').range(-MAX_PENDING, MAX_PENDING),
      dz: i32.at('_dz').range(-MAX_PENDING, MAX_PENDING),
      buttons: u8.at('_buttons').range(0, BUTTONS_5),
      reportPending: bool.at('_reportPending'),
    },
    {
      transient: ['_port'],
      postLoad: (m) => {
        // values only some settings allow: anything else is what a reset leaves
        if (m._deviceId !== MouseId.INTELLIMOUSE && m._deviceId !== MouseId.EXPLORER) m._deviceId = MouseId.PS2;
        if (m._pendingCmd !== MouseCmd.SET_SAMPLE_RATE && m._pendingCmd !== MouseCmd.SET_RESOLUTION) m._pendingCmd = 0;
      },
    },
  );
  readonly id: string;
  private readonly _port: Ps2Port;

  private readonly _out = new Uint8Array(MOUSE_BUFFER_BYTES);
  private _outHead = 0;
  private _outCount = 0;
  private _remote = false;
  private _enabled = false;
  private _scaling21 = false;
  private _wrap = false;
  private _resolution = DEFAULT_RESOLUTION;
  private _sampleRate = DEFAULT_SAMPLE_RATE;
  private _deviceId: number = MouseId.PS2;
  /** The last three sample rates set, oldest first (the IntelliMouse knock). */
  private readonly _rateHistory = new Uint8Array(3);
  private _pendingCmd = 0;
  private _lastSent = 0;
  /** Movement not yet reported, in PS/2 convention (y positive up). */
  private _dx = 0;
  private _dy = 0;
  private _dz = 0;
  private _buttons = 0;
  /** Buttons changed (or movement arrived) since the last packet. */
  private _reportPending = false;

  constructor(id: string, port: Ps2Port) {
    this.id = id;
    this._port = port;
    port.attach(this);
  }

  reset(): void {
    this._setDefaults();
    this._deviceId = MouseId.PS2;
    this._rateHistory.fill(0);
    this._wrap = false;
    this._pendingCmd = 0;
    this._outHead = this._outCount = 0;
    this._lastSent = 0;
    this._buttons = 0;
  }

  /** The protocol the guest enabled: 0 (3-byte packets), 3 (wheel) or 4 (wheel and 5 buttons). */
  get deviceId(): number {
    return this._deviceId;
  }

  // ---- host side

  move(dx: number, dy: number, buttons: number, dz = 0): void {
    const b = buttons & BUTTONS_5;
    if (b !== this._buttons) this._reportPending = true;
    this._buttons = b;
    const mx = toInt(dx), my = toInt(dy), mz = toInt(dz);
    if (mx || my || mz) this._reportPending = true;
    this._dx = clamp(this._dx + mx, -MAX_PENDING, MAX_PENDING);
    this._dy = clamp(this._dy - my, -MAX_PENDING, MAX_PENDING); // PS/2 reports up as positive
    this._dz = clamp(this._dz + mz, -MAX_PENDING, MAX_PENDING);
    if (this._remote) return; // kept for the next Read Data
    if (!this._enabled) {
      // a disabled mouse in stream mode does not report; its movement is not saved up for later
      this._dx = this._dy = this._dz = 0;
      this._reportPending = false;
      return;
    }
    if (this._pendingCmd === 0 && !this._wrap) this._stream();
  }

  /** Send packets while there is something to report and room for a whole packet. */
  private _stream(): void {
    let sent = false;
    while (this._reportPending && MOUSE_BUFFER_BYTES - this._outCount >= this._packetBytes()) {
      this._packet(this._scaling21);
      sent = true;
    }
    if (sent) this._port.dataReady();
  }

  private _packetBytes(): number {
    return this._deviceId === MouseId.PS2 ? 3 : 4;
  }

  /** Queue one packet from the accumulated movement and take what it reported off it. */
  private _packet(scale: boolean): void {
    const dx = clamp(this._dx, -MAX_DELTA, MAX_DELTA);
    const dy = clamp(this._dy, -MAX_DELTA, MAX_DELTA);
    const dz = clamp(this._dz, MIN_WHEEL, MAX_WHEEL);
    this._dx -= dx;
    this._dy -= dy;
    this._dz -= dz;
    this._reportPending = this._dx !== 0 || this._dy !== 0 || this._dz !== 0;
    const sx = scale ? clamp(scale21(dx), -MAX_DELTA, MAX_DELTA) : dx;
    const sy = scale ? clamp(scale21(dy), -MAX_DELTA, MAX_DELTA) : dy;
    const b = this._buttons;
    this._push(Pkt.ALWAYS_1 | (b & BUTTONS_3) | (sx < 0 ? Pkt.X_SIGN : 0) | (sy < 0 ? Pkt.Y_SIGN : 0));
    this._push(sx & 0xff);
    this._push(sy & 0xff);
    if (this._deviceId === MouseId.INTELLIMOUSE) this._push(dz & 0xff);
    else if (this._deviceId === MouseId.EXPLORER) this._push((dz & 0x0f) | ((b & 0x18) << BUTTON_4_5_SHIFT));
  }

  // ---- controller side

  read(): number {
    if (this._outCount === 0) return -1;
    const v = this._out[this._outHead];
    this._outHead = (this._outHead + 1) % MOUSE_BUFFER_BYTES;
    this._outCount--;
    this._lastSent = v;
    if (this._enabled && !this._remote && this._pendingCmd === 0 && !this._wrap) this._stream();
    return v;
  }

  write(byte: number): void {
    const v = byte & 0xff;
    if (this._pendingCmd !== 0) {
      const cmd = this._pendingCmd;
      this._pendingCmd = 0;
      this._argument(cmd, v);
      this._port.dataReady();
      return;
    }
    // Reset, Set Defaults and Disable abort what was being sent (a half-read packet included)
    if (v === MouseCmd.RESET || v === MouseCmd.SET_DEFAULTS || v === MouseCmd.DISABLE) this._outHead = this._outCount = 0;
    if (this._wrap && v !== MouseCmd.RESET && v !== MouseCmd.RESET_WRAP) {
      this._push(v); // wrap mode echoes every byte
      this._port.dataReady();
      return;
    }
    switch (v) {
      case MouseCmd.RESET:
        this.reset();
        this._push(MouseReply.ACK);
        this._push(MouseReply.BAT_OK);
        this._push(MouseId.PS2);
        break;
      case MouseCmd.RESEND:
        // the last byte goes out again, ahead of what was still waiting
        if (this._outCount < MOUSE_BUFFER_BYTES) {
          this._outHead = (this._outHead + MOUSE_BUFFER_BYTES - 1) % MOUSE_BUFFER_BYTES;
          this._out[this._outHead] = this._lastSent;
          this._outCount++;
        }
        break;
      case MouseCmd.SET_DEFAULTS:
        this._setDefaults();
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.DISABLE:
        this._enabled = false;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.ENABLE:
        this._enabled = true;
        this._dx = this._dy = this._dz = 0;
        this._reportPending = false;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.SET_SAMPLE_RATE:
      case MouseCmd.SET_RESOLUTION:
        this._pendingCmd = v;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.GET_ID:
        this._push(MouseReply.ACK);
        this._push(this._deviceId);
        break;
      case MouseCmd.SET_REMOTE:
        this._remote = true;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.SET_STREAM:
        this._remote = false;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.SET_WRAP:
        this._wrap = true;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.RESET_WRAP:
        this._wrap = false;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.READ_DATA:
        this._push(MouseReply.ACK);
        this._packet(false); // 2:1 scaling applies to stream mode only
        this._reportPending = false;
        this._dx = this._dy = this._dz = 0;
        break;
      case MouseCmd.STATUS_REQUEST: {
        const b = this._buttons;
        this._push(MouseReply.ACK);
        this._push(
          (this._remote ? StatusByte.REMOTE : 0) |
            (this._enabled ? StatusByte.ENABLED : 0) |
            (this._scaling21 ? StatusByte.SCALING_2_1 : 0) |
            (b & 0x01 ? StatusByte.LEFT : 0) |
            (b & 0x04 ? StatusByte.MIDDLE : 0) |
            (b & 0x02 ? StatusByte.RIGHT : 0),
        );
        this._push(this._resolution);
        this._push(this._sampleRate);
        break;
      }
      case MouseCmd.SET_SCALING_2_1:
        this._scaling21 = true;
        this._push(MouseReply.ACK);
        break;
      case MouseCmd.SET_SCALING_1_1:
        this._scaling21 = false;
        this._push(MouseReply.ACK);
        break;
      default:
        this._push(MouseReply.RESEND);
    }
    this._port.dataReady();
  }

  private _argument(cmd: number, v: number): void {
    if (cmd === MouseCmd.SET_RESOLUTION) {
      if (v > MAX_RESOLUTION) {
        this._push(MouseReply.RESEND);
        return;
      }
      this._resolution = v;
      this._push(MouseReply.ACK);
      return;
    }
    // SET_SAMPLE_RATE
    if (!VALID_SAMPLE_RATES.includes(v)) {
      this._push(MouseReply.RESEND);
      return;
    }
    this._sampleRate = v;
    const h = this._rateHistory;
    h[0] = h[1];
    h[1] = h[2];
    h[2] = v;
    if (h[0] === 200 && h[1] === 100 && h[2] === 80) this._deviceId = MouseId.INTELLIMOUSE;
    else if (h[0] === 200 && h[1] === 200 && h[2] === 80) this._deviceId = MouseId.EXPLORER;
    this._push(MouseReply.ACK);
  }

  private _setDefaults(): void {
    this._sampleRate = DEFAULT_SAMPLE_RATE;
    this._resolution = DEFAULT_RESOLUTION;
    this._scaling21 = false;
    this._remote = false;
    this._enabled = false;
    this._dx = this._dy = this._dz = 0;
    this._reportPending = false;
  }

  private _push(v: number): void {
    if (this._outCount >= MOUSE_BUFFER_BYTES) return;
    this._out[(this._outHead + this._outCount) % MOUSE_BUFFER_BYTES] = v & 0xff;
    this._outCount++;
  }

  // ---- state

  saveState(): Ps2MouseState {
    return saveFields(Ps2Mouse.stateSchema.fields, this) as unknown as Ps2MouseState;
  }

  loadState(s: Ps2MouseState): void {
    loadChecked(this.id, Ps2Mouse.stateSchema, this, s);
  }
}

function scale21(d: number): number {
  const a = Math.abs(d);
  const s = a < SCALE_2_1.length ? SCALE_2_1[a] : a * 2;
  return d < 0 ? -s : s;
}

function toInt(v: number): number {
  return Number.isFinite(v) ? Math.trunc(v) : 0;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function clampIndex(v: number, max: number): number {
  if (!Number.isFinite(v) || v < 0) return 0;
  return Math.min(Math.floor(v), max);
}
