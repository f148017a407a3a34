/**
 * Intel 8042 keyboard controller as on PS/2-compatible PCs (ports 0x60/0x64).
 * References: Intel UPI-41A/42 datasheet (the 8042 part), IBM PS/2 Hardware
 * Interface Technical Reference "Keyboard/Auxiliary Device Controller", and
 * QEMU hw/input/pckbd.c for what SeaBIOS and Linux expect.
 *
 * Modelled: the status register; the one-byte output buffer shared by
 * controller replies, the keyboard (IRQ 1) and the auxiliary device (IRQ 12);
 * the 32-byte internal RAM whose byte 0 is the command byte (interrupt enables,
 * system flag, port disables, XLATE); the controller commands SeaBIOS, Linux
 * and DOS use (RAM read/write, self-test, interface tests, port enable/disable,
 * input and output port read/write with the A20 gate and reset lines, write
 * to the output buffer as keyboard or mouse, write to the mouse, reset pulse,
 * A20 on/off); set 2 -> set 1 translation of keyboard bytes while XLATE is set.
 *
 * Bytes move between the controller and its devices at once (no 11-bit serial
 * frame time): a device queues bytes and the controller takes the next one
 * as soon as its output buffer is empty and the port is enabled. The
 * controller's own replies come first, then the keyboard, then the mouse.
 * A byte sent to an empty connector times out: status TIMEOUT and 0xFE, as a
 * PS/2 controller reports a missing device.
 */
import type { IrqLine } from '../bus/irq.js';
import type { IoPorts } from '../bus/ports.js';
import { bool, defineState, loadChecked, saveFields, u8, u8s } from '../state/schema.js';
import { translateSet2, type Ps2Device, type Ps2Port } from './ps2.js';

/** The data port (output buffer / input buffer as data). */
export const I8042_DATA_PORT = 0x60;
/** The status port (read) / command port (write). */
export const I8042_CMD_PORT = 0x64;

/** Status register (port 0x64 read). */
export const enum Status {
  OBF = 0x01, // output buffer full
  IBF = 0x02, // input buffer full (always 0: writes are processed at once)
  SYS = 0x04, // system flag: set by self-test or the command byte
  A2 = 0x08, // last write went to the command port
  INH = 0x10, // keyboard not inhibited (the keylock switch: unlocked)
  AUX_OBF = 0x20, // the output buffer holds a byte from the auxiliary device
  TIMEOUT = 0x40,
  PARITY = 0x80,
}

/** The command byte (controller RAM byte 0). */
export const enum Ccb {
  KBD_INT = 0x01,
  AUX_INT = 0x02,
  SYS = 0x04,
  KBD_DISABLE = 0x10,
  AUX_DISABLE = 0x20,
  XLATE = 0x40,
}

/** Controller commands (port 0x64 write). */
export const enum Cmd {
  READ_RAM = 0x20, // 0x20-0x3F: read RAM byte (0x20: the command byte)
  WRITE_RAM = 0x60, // 0x60-0x7F: write RAM byte from the next data byte
  PASSWORD_TEST = 0xa4,
  AUX_DISABLE = 0xa7,
  AUX_ENABLE = 0xa8,
  AUX_TEST = 0xa9,
  SELF_TEST = 0xaa,
  KBD_TEST = 0xab,
  KBD_DISABLE = 0xad,
  KBD_ENABLE = 0xae,
  READ_INPUT = 0xc0,
  READ_OUTPUT = 0xd0,
  WRITE_OUTPUT = 0xd1,
  WRITE_KBD_OBUF = 0xd2,
  WRITE_AUX_OBUF = 0xd3,
  WRITE_AUX = 0xd4,
  A20_DISABLE = 0xdd, // HP Vectra style, also in QEMU
  A20_ENABLE = 0xdf,
  READ_TEST_INPUTS = 0xe0,
  PULSE = 0xf0, // 0xF0-0xFF: pulse output port bits 3:0 that are 0 in the command
}

/** Output port bits (P2). */
export const enum OutPort {
  RESET = 0x01, // 0 = hold the CPU in reset
  A20 = 0x02,
  KBD_IRQ = 0x10, // output buffer full, from the keyboard
  AUX_IRQ = 0x20, // output buffer full, from the mouse
}

/** Reply of a passing self-test (0xAA). */
export const SELF_TEST_OK = 0x55;
/** Reply of a passing interface test (0xA9, 0xAB). */
export const INTERFACE_TEST_OK = 0x00;
/** Reply to 0xA4: no password installed. */
const NO_PASSWORD = 0xf1;
/** What the controller puts in the output buffer when a device does not answer (with Status.TIMEOUT). */
const NO_DEVICE_REPLY = 0xfe;
/** Input port (P1) as read by 0xC0: bit 7 = keyboard not inhibited; the board jumpers read 0. */
const INPUT_PORT = 0x80;
/** Output port after reset: the 8042's quasi-bidirectional pins come up high (A20 on, CPU running), bits 6/7 (clock, data) idle high. */
const OUTPUT_PORT_RESET = 0xcf;
/** Command byte after reset (as QEMU: both interrupts enabled; firmware rewrites it). */
const CCB_RESET = Ccb.KBD_INT | Ccb.AUX_INT;
const RAM_BYTES = 32;
const PULSE_RESET_BIT = 0x01;

/** What the board does for the controller's output port lines. */
export interface I8042Hooks {
  /** The A20 gate changed (output port bit 1). Called from inside the port write. */
  onA20(enabled: boolean): void;
  /** The controller pulsed or held the CPU reset line. Called from inside the port write: request a reset, do not perform it re-entrantly. */
  onReset(): void;
}

const NO_HOOKS: I8042Hooks = { onA20() {}, onReset() {} };

/** Where the byte in the output buffer (or the pending reply) came from. */
const enum Src {
  KBD = 0,
  AUX = 1,
}

export interface I8042State {
  ram: Uint8Array;
  status: number; // SYS, A2 and TIMEOUT (the other bits are derived)
  outPort: number;
  obf: boolean;
  obData: number;
  obAux: boolean;
  pendingCmd: number;
  replyPending: boolean;
  reply: number;
  replyAux: boolean;
  xlatF0: boolean;
}

/** One connector of the controller. */
class Connector implements Ps2Port {
  dev: Ps2Device | null = null;
  constructor(private readonly _ready: () => void) {}
  attach(dev: Ps2Device): void {
    this.dev = dev;
  }
  dataReady(): void {
    this._ready();
  }
}

export class I8042 {
  /**
   * The controller's RAM (the command byte first), status bits that are
   * not derived, the output port, the output buffer, a command waiting for
   * its data byte, a queued reply and the scan-code translator's F0 latch.
   */
  static readonly stateSchema = defineState<I8042>(
    'i8042',
    1,
    {
      ram: u8s(RAM_BYTES).at('_ram'),
      status: u8.at('_status'),
      outPort: u8.at('_outPort'),
      obf: bool.at('_obf'),
      obData: u8.at('_obData'),
      obAux: bool.at('_obAux'),
      pendingCmd: u8.at('_pendingCmd'),
      replyPending: bool.at('_replyPending'),
      reply: u8.at('_reply'),
      replyAux: bool.at('_replyAux'),
      xlatF0: bool.via(
        (k: I8042) => k._xlat.f0,
        (k: I8042, v: boolean) => (k._xlat.f0 = v),
      ),
    },
    {
      transient: ['kbdPort', 'auxPort', '_kbdIrq', '_auxIrq', '_hooks', '_kbd', '_aux', '_xlat', '_filling', '_kbdLevel', '_auxLevel'],
      postLoad: (k) => {
        k._status &= Status.SYS | Status.A2 | Status.TIMEOUT;
        const c = k._pendingCmd;
        const takesData = (c & 0xe0) === Cmd.WRITE_RAM || (c >= Cmd.WRITE_OUTPUT && c <= Cmd.WRITE_AUX);
        if (!takesData) k._pendingCmd = 0;
        k._updateIrq(true);
      },
    },
  );
  readonly id: string;
  /** The keyboard connector: pass it to the PS/2 keyboard's constructor. */
  readonly kbdPort: Ps2Port;
  /** The auxiliary (mouse) connector: pass it to the PS/2 mouse's constructor. */
  readonly auxPort: Ps2Port;

  private readonly _kbdIrq: IrqLine;
  private readonly _auxIrq: IrqLine;
  private readonly _hooks: I8042Hooks;
  private readonly _kbd: Connector;
  private readonly _aux: Connector;

  private readonly _ram = new Uint8Array(RAM_BYTES);
  private _status = 0;
  private _outPort = OUTPUT_PORT_RESET;
  private _obf = false;
  private _obData = 0;
  private _obAux = false;
  private _pendingCmd = 0;
  private _replyPending = false;
  private _reply = 0;
  private _replyAux = false;
  private readonly _xlat = { f0: false };
  private _filling = false;
  private _kbdLevel = 0;
  private _auxLevel = 0;

  constructor(id: string, ports: IoPorts, kbdIrq: IrqLine, auxIrq: IrqLine, hooks: I8042Hooks = NO_HOOKS) {
    this.id = id;
    this._kbdIrq = kbdIrq;
    this._auxIrq = auxIrq;
    this._hooks = hooks;
    this._kbd = new Connector(() => this._fill());
    this._aux = new Connector(() => this._fill());
    this.kbdPort = this._kbd;
    this.auxPort = this._aux;
    ports.register(id, I8042_DATA_PORT, 1, {
      read8: () => this._readData(),
      write8: (_p, v) => this._writeData(v & 0xff),
    });
    ports.register(id, I8042_CMD_PORT, 1, {
      read8: () => this._readStatus(),
      write8: (_p, v) => this._writeCommand(v & 0xff),
    });
    this.reset();
  }

  /** Whether the output port enables the A20 gate (the board reads this after reset or load). */
  get a20(): boolean {
    return (this._outPort & OutPort.A20) !== 0;
  }

  reset(): void {
    this._ram.fill(0);
    this._ram[0] = CCB_RESET;
    this._status = 0;
    this._outPort = OUTPUT_PORT_RESET;
    this._obf = false;
    this._obData = 0;
    this._obAux = false;
    this._pendingCmd = 0;
    this._replyPending = false;
    this._xlat.f0 = false;
    this._fill();
    this._updateIrq(true);
  }

  // ---- ports

  private _readStatus(): number {
    let v = this._status | Status.INH;
    if (this._obf) v |= Status.OBF | (this._obAux ? Status.AUX_OBF : 0);
    return v;
  }

  private _readData(): number {
    const v = this._obData; // an empty buffer reads its last byte again
    if (this._obf) {
      this._obf = false;
      this._updateIrq(false);
      this._fill();
    }
    return v;
  }

  private _writeData(v: number): void {
    this._status &= ~Status.A2;
    const cmd = this._pendingCmd;
    this._pendingCmd = 0;
    if (cmd === 0) {
      // data to the keyboard; sending to it enables the keyboard interface (as QEMU)
      this._ram[0] &= ~Ccb.KBD_DISABLE;
      this._sendTo(this._kbd, v, Src.KBD);
    } else if ((cmd & 0xe0) === Cmd.WRITE_RAM) {
      this._ram[cmd & (RAM_BYTES - 1)] = v;
      if (cmd === Cmd.WRITE_RAM) this._status = (this._status & ~Status.SYS) | (v & Ccb.SYS);
    } else if (cmd === Cmd.WRITE_OUTPUT) {
      this._writeOutPort(v);
    } else if (cmd === Cmd.WRITE_KBD_OBUF) {
      this._queueReply(v, Src.KBD);
    } else if (cmd === Cmd.WRITE_AUX_OBUF) {
      this._queueReply(v, Src.AUX);
    } else if (cmd === Cmd.WRITE_AUX) {
      this._sendTo(this._aux, v, Src.AUX);
    }
    this._fill();
    this._updateIrq(false);
  }

  private _writeCommand(c: number): void {
    this._status |= Status.A2;
    this._pendingCmd = 0;
    if ((c & 0xe0) === Cmd.READ_RAM) {
      this._queueReply(this._ram[c & (RAM_BYTES - 1)], Src.KBD);
      return;
    }
    if ((c & 0xe0) === Cmd.WRITE_RAM) {
      this._pendingCmd = c;
      return;
    }
    if (c >= Cmd.PULSE) {
      if (!(c & PULSE_RESET_BIT)) this._hooks.onReset();
      return;
    }
    switch (c) {
      case Cmd.PASSWORD_TEST:
        this._queueReply(NO_PASSWORD, Src.KBD);
        break;
      case Cmd.AUX_DISABLE:
        this._ram[0] |= Ccb.AUX_DISABLE;
        break;
      case Cmd.AUX_ENABLE:
        this._ram[0] &= ~Ccb.AUX_DISABLE;
        break;
      case Cmd.AUX_TEST:
      case Cmd.KBD_TEST:
        this._queueReply(INTERFACE_TEST_OK, Src.KBD);
        break;
      case Cmd.SELF_TEST:
        this._status |= Status.SYS;
        this._queueReply(SELF_TEST_OK, Src.KBD);
        break;
      case Cmd.KBD_DISABLE:
        this._ram[0] |= Ccb.KBD_DISABLE;
        break;
      case Cmd.KBD_ENABLE:
        this._ram[0] &= ~Ccb.KBD_DISABLE;
        break;
      case Cmd.READ_INPUT:
        this._queueReply(INPUT_PORT, Src.KBD);
        break;
      case Cmd.READ_OUTPUT: {
        let v = this._outPort & ~(OutPort.KBD_IRQ | OutPort.AUX_IRQ);
        if (this._obf) v |= this._obAux ? OutPort.AUX_IRQ : OutPort.KBD_IRQ;
        this._queueReply(v, Src.KBD);
        break;
      }
      case Cmd.WRITE_OUTPUT:
      case Cmd.WRITE_KBD_OBUF:
      case Cmd.WRITE_AUX_OBUF:
      case Cmd.WRITE_AUX:
        this._pendingCmd = c;
        break;
      case Cmd.A20_DISABLE:
        this._writeOutPort(this._outPort & ~OutPort.A20);
        break;
      case Cmd.A20_ENABLE:
        this._writeOutPort(this._outPort | OutPort.A20);
        break;
      case Cmd.READ_TEST_INPUTS:
        this._queueReply(0, Src.KBD);
        break;
      default:
        break; // unknown commands are ignored, as by the 8042 firmware
    }
    this._fill();
    this._updateIrq(false);
  }

  /** A byte to a device; with nothing plugged in, the transmission times out and the controller answers 0xFE. */
  private _sendTo(c: Connector, v: number, src: Src): void {
    if (c.dev) {
      this._status &= ~Status.TIMEOUT;
      c.dev.write(v);
    } else {
      this._status |= Status.TIMEOUT;
      this._queueReply(NO_DEVICE_REPLY, src);
    }
  }

  private _writeOutPort(v: number): void {
    const old = this._outPort;
    this._outPort = v & 0xff;
    if ((old ^ v) & OutPort.A20) this._hooks.onA20((v & OutPort.A20) !== 0);
    if (!(v & OutPort.RESET)) this._hooks.onReset();
  }

  // ---- output buffer

  private _queueReply(v: number, src: Src): void {
    // a reply waits for the output buffer like device data, but goes before it
    this._reply = v & 0xff;
    this._replyAux = src === Src.AUX;
    this._replyPending = true;
    this._fill();
    this._updateIrq(false);
  }

  /** Load the output buffer from the next source that has a byte, if the buffer is empty. */
  private _fill(): void {
    if (this._obf || this._filling) return;
    this._filling = true;
    if (this._replyPending) {
      this._replyPending = false;
      this._load(this._reply, this._replyAux);
    } else {
      const ccb = this._ram[0];
      const kbd = this._kbd.dev;
      if (kbd && !(ccb & Ccb.KBD_DISABLE)) {
        for (;;) {
          let b = kbd.read();
          if (b < 0) break;
          if (ccb & Ccb.XLATE) b = translateSet2(b, this._xlat);
          if (b < 0) continue; // an F0 prefix: its key byte follows
          this._load(b, false);
          break;
        }
      }
      const aux = this._aux.dev;
      if (!this._obf && aux && !(ccb & Ccb.AUX_DISABLE)) {
        const b = aux.read();
        if (b >= 0) this._load(b, true);
      }
    }
    this._filling = false;
    this._updateIrq(false);
  }

  private _load(v: number, aux: boolean): void {
    this._obData = v & 0xff;
    this._obAux = aux;
    this._obf = true;
  }

  private _updateIrq(force: boolean): void {
    const ccb = this._ram[0];
    const k = this._obf && !this._obAux && ccb & Ccb.KBD_INT ? 1 : 0;
    const a = this._obf && this._obAux && ccb & Ccb.AUX_INT ? 1 : 0;
    if (k !== this._kbdLevel || force) {
      this._kbdLevel = k;
      this._kbdIrq.set(k);
    }
    if (a !== this._auxLevel || force) {
      this._auxLevel = a;
      this._auxIrq.set(a);
    }
  }

  // ---- state

  saveState(): I8042State {
    return saveFields(I8042.stateSchema.fields, this) as unknown as I8042State;
  }

  /** Restore; the board then applies `a20` to its memory map (no hook is called). */
  loadState(s: I8042State): void {
    loadChecked(this.id, I8042.stateSchema, this, s);
  }
}
