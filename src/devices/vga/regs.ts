/**
 * VGA register file and I/O ports: the attribute controller (with its
 * index/data flip-flop), sequencer, graphics controller, CRT controller,
 * DAC, Miscellaneous Output, Feature Control and Input Status 0/1.
 *
 * References: IBM VGA Technical Reference (Personal System/2 Hardware
 * Interface Technical Reference, "Video Subsystem"), register by register;
 * FreeVGA (http://www.osdever.net/FreeVGA/vga/vga.htm). What SeaVGABIOS and
 * Linux (vgacon, vga16fb, bochs-drm) rely on was checked against QEMU's
 * hw/display/vga.c (write masks, index masking, DAC state).
 *
 * Modelling choices:
 * - The CRTC and Input Status 1 answer at 0x3Dx when Miscellaneous Output
 *   bit 0 is set and at 0x3Bx when it is clear; the other set reads 0xFF.
 * - Input Status 1 derives display-enable and vertical-retrace from guest
 *   time (a fixed 640x480@60 Hz raster). Reads that find the clock unchanged
 *   since the previous read each add STALE_READ_NS, so a polling loop ends
 *   even when the board advances the clock only at slice boundaries.
 * - Attribute palette registers are writable whatever the PAS bit (as QEMU);
 *   with PAS clear the screen is blanked (as the hardware does).
 * - The DAC stores 8 bits per component; in 6-bit mode reads return the low
 *   6 bits and rendering expands 6 to 8 bits.
 */
import type { Clock } from '../../time/clock.js';
import { bool, f64, u8, u8s, u32, type Fields } from '../../state/schema.js';

/** Port addresses (colour set; the mono CRTC/ST1 are at 0x3Bx). */
export const enum VgaPort {
  ATTR_INDEX = 0x3c0,
  ATTR_DATA_READ = 0x3c1,
  /** Write: Miscellaneous Output. Read: Input Status 0. */
  MISC_WRITE = 0x3c2,
  VGA_ENABLE = 0x3c3,
  SEQ_INDEX = 0x3c4,
  SEQ_DATA = 0x3c5,
  DAC_MASK = 0x3c6,
  /** Write: DAC read index. Read: DAC state. */
  DAC_READ_INDEX = 0x3c7,
  DAC_WRITE_INDEX = 0x3c8,
  DAC_DATA = 0x3c9,
  FEATURE_READ = 0x3ca,
  MISC_READ = 0x3cc,
  GC_INDEX = 0x3ce,
  GC_DATA = 0x3cf,
  CRTC_INDEX_MONO = 0x3b4,
  CRTC_DATA_MONO = 0x3b5,
  /** Read: Input Status 1. Write: Feature Control. */
  ST1_MONO = 0x3ba,
  CRTC_INDEX_COLOR = 0x3d4,
  CRTC_DATA_COLOR = 0x3d5,
  ST1_COLOR = 0x3da,
}

/** Sequencer register indices. */
export const enum Seq {
  RESET = 0,
  CLOCKING_MODE = 1,
  MAP_MASK = 2,
  CHAR_MAP_SELECT = 3,
  MEMORY_MODE = 4,
}
export const SEQ_REGS = 8;

/** Clocking Mode (SR1) bits. */
export const enum SeqClocking {
  /** 8-dot character clock (clear: 9 dots). */
  DOT8 = 0x01,
  /** Dot clock divided by 2 (320/360-pixel modes). */
  DOT_CLOCK_DIV2 = 0x08,
  SCREEN_OFF = 0x20,
}

/** Memory Mode (SR4) bits. */
export const enum SeqMemMode {
  EXT_MEM = 0x02,
  /** Set: sequential addressing; clear: odd/even (CPU A0 picks plane 0/2 or 1/3). */
  ODD_EVEN_DISABLE = 0x04,
  CHAIN4 = 0x08,
}

/** Graphics controller register indices. */
export const enum Gc {
  SET_RESET = 0,
  ENABLE_SET_RESET = 1,
  COLOR_COMPARE = 2,
  DATA_ROTATE = 3,
  READ_MAP_SELECT = 4,
  MODE = 5,
  MISC = 6,
  COLOR_DONT_CARE = 7,
  BIT_MASK = 8,
}
export const GC_REGS = 9;

/** Graphics Mode (GR5) bits. */
export const enum GcMode {
  WRITE_MODE = 0x03,
  READ_MODE = 0x08,
  HOST_ODD_EVEN = 0x10,
  SHIFT_SHIFT = 5,
  SHIFT_MASK = 0x03,
}

/** Shift register control (GR5 bits 6:5): how plane bytes become pixels. */
export const enum ShiftMode {
  PLANAR16 = 0,
  CGA4 = 1,
  COLOR256 = 2,
}

/** Miscellaneous Graphics (GR6) bits. */
export const enum GcMisc {
  GRAPHICS = 0x01,
  CHAIN_ODD_EVEN = 0x02,
  MAP_SHIFT = 2,
  MAP_MASK = 0x03,
}

/** GR6 memory map select values. */
export const enum MemMap {
  A0000_128K = 0,
  A0000_64K = 1,
  B0000_32K = 2,
  B8000_32K = 3,
}

/** CRT controller register indices. */
export const enum Crtc {
  H_TOTAL = 0x00,
  H_DISPLAY_END = 0x01,
  OVERFLOW = 0x07,
  PRESET_ROW_SCAN = 0x08,
  MAX_SCAN_LINE = 0x09,
  CURSOR_START = 0x0a,
  CURSOR_END = 0x0b,
  START_HI = 0x0c,
  START_LO = 0x0d,
  CURSOR_HI = 0x0e,
  CURSOR_LO = 0x0f,
  V_RETRACE_START = 0x10,
  V_RETRACE_END = 0x11,
  V_DISPLAY_END = 0x12,
  OFFSET = 0x13,
  UNDERLINE = 0x14,
  V_BLANK_START = 0x15,
  V_BLANK_END = 0x16,
  MODE = 0x17,
  LINE_COMPARE = 0x18,
}
export const CRTC_REGS = 0x19;

/** CRTC bit fields. */
export const enum CrtcBits {
  /** CR11 bit 7: CR0-CR7 are write protected (CR7 bit 4 excepted). */
  PROTECT = 0x80,
  OVERFLOW_LINE_COMPARE8 = 0x10,
  MSL_LINE_COMPARE9 = 0x40,
  OVERFLOW_VDE8 = 0x02,
  OVERFLOW_VDE9 = 0x40,
  MSL_DOUBLE_SCAN = 0x80,
  MSL_MASK = 0x1f,
  CURSOR_DISABLE = 0x20,
  CURSOR_LINE_MASK = 0x1f,
  /** CR17 bit 0 clear: row-scan bit 0 replaces address bit 13 (CGA banks). */
  MODE_CGA_BANKS = 0x01,
  /** CR17 bit 1 clear: row-scan bit 1 replaces address bit 14 (Hercules banks). */
  MODE_HGC_BANKS = 0x02,
  MODE_BYTE = 0x40,
}

/** Attribute controller register indices. */
export const enum Attr {
  PALETTE0 = 0x00,
  MODE = 0x10,
  OVERSCAN = 0x11,
  PLANE_ENABLE = 0x12,
  H_PANNING = 0x13,
  COLOR_SELECT = 0x14,
}
export const ATTR_REGS = 0x15;

/** Attribute Mode Control (AR10) bits. */
export const enum AttrMode {
  GRAPHICS = 0x01,
  MONO = 0x02,
  LINE_GRAPHICS = 0x04,
  BLINK = 0x08,
  /** Pixel panning mode: panning applies only above the line-compare split. */
  PIXEL_PANNING = 0x20,
  PIXEL_WIDTH_8 = 0x40,
  P54_SELECT = 0x80,
}

/** Attribute Address register: bit 5 is Palette Address Source (1 = display on). */
export const enum AttrIndex {
  INDEX_MASK = 0x1f,
  PAS = 0x20,
}

/** Miscellaneous Output bits. */
export const enum Misc {
  IO_COLOR = 0x01,
}

/** Input Status 1 bits. */
export const enum St1 {
  DISPLAY_INACTIVE = 0x01,
  VRETRACE = 0x08,
}

/** DAC state register (0x3C7 read). */
export const enum DacState {
  WRITE = 0x00,
  READ = 0x03,
}

export const DAC_ENTRIES = 256;

// Writable bits of each register (reserved bits read 0), after QEMU vga.c.
const SEQ_WMASK = [0x03, 0x3d, 0x0f, 0x3f, 0x0e, 0x00, 0x00, 0xff];
const GC_WMASK = [0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff];
const ATTR_PALETTE_MASK = 0x3f;
const ATTR_MODE_MASK = 0xef; // bit 4 reserved
const ATTR_PLANE_ENABLE_MASK = 0x3f;
const ATTR_H_PANNING_MASK = 0x0f;
const ATTR_COLOR_SELECT_MASK = 0x0f;

// Raster timing for Input Status 1: 640x480 at 60 Hz (25.175 MHz dot clock).
/** One scan line: 800 dots at 25.175 MHz. */
export const LINE_NS = 31_778;
const FRAME_LINES = 525;
const VISIBLE_LINES = 480;
/** Share of a scan line that is active display (640 of 800 dots). */
const H_ACTIVE_NS = Math.round((LINE_NS * 640) / 800);
const VRETRACE_FIRST_LINE = 490;
const VRETRACE_LINES = 2;
export const FRAME_NS = LINE_NS * FRAME_LINES;
/** Guest time one status read is taken to last when the clock has not moved (an ISA I/O cycle, about 1 us). */
export const STALE_READ_NS = 1000;
/** Cap on the stale-read count (one frame's worth), so the product stays exact. */
const STALE_READS_MAX = Math.ceil(FRAME_NS / STALE_READ_NS);

/** Everything the register file holds (the device's state minus memory and VBE). */
export interface VgaRegsState {
  misc: number;
  featureCtl: number;
  seqIndex: number;
  seq: Uint8Array;
  gcIndex: number;
  gc: Uint8Array;
  crtcIndex: number;
  crtc: Uint8Array;
  attrIndex: number;
  /** Attribute flip-flop: false = next 0x3C0 write is an index, true = data. */
  attrFlipFlop: boolean;
  attr: Uint8Array;
  dacWriteIndex: number;
  dacReadIndex: number;
  dacSub: number;
  dacState: number;
  dacCache: Uint8Array;
  dacMask: number;
  dac: Uint8Array;
  st1LastNs: number;
  st1StaleReads: number;
}

/** The VGA register file and its port decoding. */
export class VgaRegs {
  misc = 0;
  featureCtl = 0;
  seqIndex = 0;
  readonly seq = new Uint8Array(SEQ_REGS);
  gcIndex = 0;
  readonly gc = new Uint8Array(GC_REGS);
  crtcIndex = 0;
  readonly crtc = new Uint8Array(CRTC_REGS);
  attrIndex = 0;
  attrFlipFlop = false;
  readonly attr = new Uint8Array(ATTR_REGS);
  dacWriteIndex = 0;
  dacReadIndex = 0;
  dacSub = 0;
  dacState = DacState.WRITE;
  readonly dacCache = new Uint8Array(3);
  dacMask = 0xff;
  /** 256 entries of R, G, B. */
  readonly dac = new Uint8Array(DAC_ENTRIES * 3);
  /** True when the VBE 8-bit DAC bit is set (owned by the VBE block). */
  dac8bit = false;
  private _st1LastNs = -1;
  private _st1StaleReads = 0;
  private readonly _clock: Clock;

  constructor(clock: Clock) {
    this._clock = clock;
  }

  reset(): void {
    this.misc = 0;
    this.featureCtl = 0;
    this.seqIndex = 0;
    this.seq.fill(0);
    this.gcIndex = 0;
    this.gc.fill(0);
    this.crtcIndex = 0;
    this.crtc.fill(0);
    this.attrIndex = 0;
    this.attrFlipFlop = false;
    this.attr.fill(0);
    this.dacWriteIndex = 0;
    this.dacReadIndex = 0;
    this.dacSub = 0;
    this.dacState = DacState.WRITE;
    this.dacCache.fill(0);
    this.dacMask = 0xff;
    this.dac.fill(0);
    this._st1LastNs = -1;
    this._st1StaleReads = 0;
  }

  /** True when the CRTC and ST1 live at 0x3Dx (colour), false at 0x3Bx. */
  get colorIo(): boolean {
    return (this.misc & Misc.IO_COLOR) !== 0;
  }

  /** Read one byte from a VGA port (0x3B0-0x3DF); unanswered ports read 0xFF. */
  read(port: number): number {
    switch (port) {
      case VgaPort.ATTR_INDEX:
        return this.attrIndex;
      case VgaPort.ATTR_DATA_READ: {
        const i = this.attrIndex & AttrIndex.INDEX_MASK;
        return i < ATTR_REGS ? this.attr[i] : 0;
      }
      case VgaPort.MISC_WRITE:
        return 0; // Input Status 0: no switch sense, no CRT interrupt
      case VgaPort.VGA_ENABLE:
        return 1;
      case VgaPort.SEQ_INDEX:
        return this.seqIndex;
      case VgaPort.SEQ_DATA:
        return this.seq[this.seqIndex];
      case VgaPort.DAC_MASK:
        return this.dacMask;
      case VgaPort.DAC_READ_INDEX:
        return this.dacState;
      case VgaPort.DAC_WRITE_INDEX:
        return this.dacWriteIndex;
      case VgaPort.DAC_DATA:
        return this._dacRead();
      case VgaPort.FEATURE_READ:
        return this.featureCtl;
      case VgaPort.MISC_READ:
        return this.misc;
      case VgaPort.GC_INDEX:
        return this.gcIndex;
      case VgaPort.GC_DATA:
        return this.gcIndex < GC_REGS ? this.gc[this.gcIndex] : 0;
      case VgaPort.CRTC_INDEX_MONO:
      case VgaPort.CRTC_INDEX_COLOR:
        if (this._crtcPortActive(port)) return this.crtcIndex;
        return 0xff;
      case VgaPort.CRTC_DATA_MONO:
      case VgaPort.CRTC_DATA_COLOR:
        if (this._crtcPortActive(port)) return this.crtcIndex < CRTC_REGS ? this.crtc[this.crtcIndex] : 0;
        return 0xff;
      case VgaPort.ST1_MONO:
      case VgaPort.ST1_COLOR:
        if (!this._crtcPortActive(port)) return 0xff;
        this.attrFlipFlop = false;
        return this._inputStatus1();
      default:
        return 0xff;
    }
  }

  /** Write one byte to a VGA port; writes to unanswered ports are dropped. */
  write(port: number, v: number): void {
    v &= 0xff;
    switch (port) {
      case VgaPort.ATTR_INDEX:
        if (!this.attrFlipFlop) {
          this.attrIndex = v & (AttrIndex.INDEX_MASK | AttrIndex.PAS);
        } else {
          this._attrWrite(this.attrIndex & AttrIndex.INDEX_MASK, v);
        }
        this.attrFlipFlop = !this.attrFlipFlop;
        return;
      case VgaPort.MISC_WRITE:
        this.misc = v;
        return;
      case VgaPort.SEQ_INDEX:
        this.seqIndex = v & (SEQ_REGS - 1);
        return;
      case VgaPort.SEQ_DATA:
        this.seq[this.seqIndex] = v & SEQ_WMASK[this.seqIndex];
        return;
      case VgaPort.DAC_MASK:
        this.dacMask = v;
        return;
      case VgaPort.DAC_READ_INDEX:
        this.dacReadIndex = v;
        this.dacSub = 0;
        this.dacState = DacState.READ;
        return;
      case VgaPort.DAC_WRITE_INDEX:
        this.dacWriteIndex = v;
        this.dacSub = 0;
        this.dacState = DacState.WRITE;
        return;
      case VgaPort.DAC_DATA:
        this.dacCache[this.dacSub++] = v;
        if (this.dacSub === 3) {
          this.dac.set(this.dacCache, this.dacWriteIndex * 3);
          this.dacSub = 0;
          this.dacWriteIndex = (this.dacWriteIndex + 1) & 0xff;
        }
        return;
      case VgaPort.GC_INDEX:
        this.gcIndex = v & 0x0f;
        return;
      case VgaPort.GC_DATA:
        if (this.gcIndex < GC_REGS) this.gc[this.gcIndex] = v & GC_WMASK[this.gcIndex];
        return;
      case VgaPort.CRTC_INDEX_MONO:
      case VgaPort.CRTC_INDEX_COLOR:
        if (this._crtcPortActive(port)) this.crtcIndex = v;
        return;
      case VgaPort.CRTC_DATA_MONO:
      case VgaPort.CRTC_DATA_COLOR:
        if (this._crtcPortActive(port)) this._crtcWrite(this.crtcIndex, v);
        return;
      case VgaPort.ST1_MONO:
      case VgaPort.ST1_COLOR:
        if (this._crtcPortActive(port)) this.featureCtl = v;
        return;
      default:
        return;
    }
  }

  private _crtcPortActive(port: number): boolean {
    return ((port & 0xfff0) === 0x3d0) === this.colorIo;
  }

  private _attrWrite(i: number, v: number): void {
    if (i <= 0x0f) this.attr[i] = v & ATTR_PALETTE_MASK;
    else if (i === Attr.MODE) this.attr[i] = v & ATTR_MODE_MASK;
    else if (i === Attr.OVERSCAN) this.attr[i] = v;
    else if (i === Attr.PLANE_ENABLE) this.attr[i] = v & ATTR_PLANE_ENABLE_MASK;
    else if (i === Attr.H_PANNING) this.attr[i] = v & ATTR_H_PANNING_MASK;
    else if (i === Attr.COLOR_SELECT) this.attr[i] = v & ATTR_COLOR_SELECT_MASK;
  }

  private _crtcWrite(i: number, v: number): void {
    if (i >= CRTC_REGS) return;
    if (this.crtc[Crtc.V_RETRACE_END] & CrtcBits.PROTECT && i <= Crtc.OVERFLOW) {
      // Only the line-compare bit 8 of the overflow register stays writable.
      if (i === Crtc.OVERFLOW) {
        this.crtc[i] = (this.crtc[i] & ~CrtcBits.OVERFLOW_LINE_COMPARE8) | (v & CrtcBits.OVERFLOW_LINE_COMPARE8);
      }
      return;
    }
    this.crtc[i] = v;
  }

  private _dacRead(): number {
    const v = this.dac[this.dacReadIndex * 3 + this.dacSub];
    if (++this.dacSub === 3) {
      this.dacSub = 0;
      this.dacReadIndex = (this.dacReadIndex + 1) & 0xff;
    }
    return this.dac8bit ? v : v & 0x3f;
  }

  private _inputStatus1(): number {
    const now = this._clock.nowNs;
    if (now !== this._st1LastNs) {
      this._st1LastNs = now;
      this._st1StaleReads = 0;
    } else if (this._st1StaleReads < STALE_READS_MAX) {
      this._st1StaleReads++;
    } else {
      this._st1StaleReads = 0; // wrap after a whole frame: the phase repeats
    }
    const t = now + this._st1StaleReads * STALE_READ_NS;
    const inFrame = t % FRAME_NS;
    const line = Math.floor(inFrame / LINE_NS);
    const inLine = inFrame - line * LINE_NS;
    let v = 0;
    if (line >= VISIBLE_LINES || inLine >= H_ACTIVE_NS) v |= St1.DISPLAY_INACTIVE;
    if (line >= VRETRACE_FIRST_LINE && line < VRETRACE_FIRST_LINE + VRETRACE_LINES) v |= St1.VRETRACE;
    return v;
  }

  // ---- decoded values the memory and rendering code use ----

  /** Vertical display end + 1: visible scan lines. */
  get verticalDisplayLines(): number {
    const c = this.crtc;
    const ovf = c[Crtc.OVERFLOW];
    return (c[Crtc.V_DISPLAY_END] | ((ovf & CrtcBits.OVERFLOW_VDE8) << 7) | ((ovf & CrtcBits.OVERFLOW_VDE9) << 3)) + 1;
  }

  /** Line compare (CR18 plus CR7 bit 4 and CR9 bit 6): the split-screen scan line. */
  get lineCompare(): number {
    const c = this.crtc;
    return c[Crtc.LINE_COMPARE] | ((c[Crtc.OVERFLOW] & CrtcBits.OVERFLOW_LINE_COMPARE8) << 4) | ((c[Crtc.MAX_SCAN_LINE] & CrtcBits.MSL_LINE_COMPARE9) << 3);
  }

  /** CRTC start address (in character/word units of the compact plane layout). */
  get startAddress(): number {
    return (this.crtc[Crtc.START_HI] << 8) | this.crtc[Crtc.START_LO];
  }

  /** Scan lines per character row (CR9 bits 4:0 + 1). */
  get maxScanLine(): number {
    return (this.crtc[Crtc.MAX_SCAN_LINE] & CrtcBits.MSL_MASK) + 1;
  }

  /** Line-to-line distance in plane offsets (CR13 counts units of 2 words). */
  get lineOffset(): number {
    return this.crtc[Crtc.OFFSET] * 2;
  }

  /**
   * The register file's state (StdVga.stateSchema holds it as `regs`): every
   * register, index and flip-flop, the DAC and the vertical-retrace model.
   */
  static readonly stateFields: Fields = {
    misc: u8,
    featureCtl: u8,
    seqIndex: u8,
    seq: u8s(SEQ_REGS),
    gcIndex: u8,
    gc: u8s(GC_REGS),
    crtcIndex: u8,
    crtc: u8s(CRTC_REGS),
    attrIndex: u8,
    attrFlipFlop: bool,
    attr: u8s(ATTR_REGS),
    dacWriteIndex: u8,
    dacReadIndex: u8,
    dacSub: u8.range(0, 2),
    dacState: u8.range(DacState.WRITE, DacState.READ),
    dacCache: u8s(3),
    dacMask: u8,
    dac: u8s(DAC_ENTRIES * 3),
    st1LastNs: f64.at('_st1LastNs'),
    st1StaleReads: u32.at('_st1StaleReads').range(0, STALE_READS_MAX),
  };
  /** dac8bit belongs to the VBE block (derived from its registers). */
  static readonly stateTransient = ['dac8bit', '_clock'];

  /** After a load: indices wrap as the hardware decodes them. */
  static loaded(r: VgaRegs): void {
    r.seqIndex &= SEQ_REGS - 1;
    r.gcIndex &= 0x0f;
    r.attrIndex &= AttrIndex.INDEX_MASK | AttrIndex.PAS;
    if (r.dacState !== DacState.READ) r.dacState = DacState.WRITE;
  }
}

/** Clamp to an integer in [lo, hi] (NaN becomes lo). */
export function clampInt(v: number, lo: number, hi: number): number {
  if (!(v >= lo)) return lo;
  if (v > hi) return hi;
  return Math.floor(v);
}
