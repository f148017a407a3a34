/**
 * Text-mode rendering: the character/attribute cells as text (CP437 decoded)
 * for terminals, and as pixels drawn with the font the BIOS (or the guest)
 * loaded into plane 2.
 *
 * References: IBM VGA Technical Reference ("Alphanumeric Modes", Character
 * Map Select, Cursor Start/End, Attribute Mode Control); FreeVGA "VGA Text
 * Mode Operation".
 *
 * In the compact plane layout (planes.ts) cell i of the screen is plane
 * offset start + i: the character in plane 0 and the attribute in plane 1.
 * Glyph rows are at plane 2 offset fontBase + char * 32 + row; the Character
 * Map Select register picks the font for attribute bit 3 = 1 (map A) and = 0
 * (map B). With 9-dot characters, codes 0xC0-0xDF repeat their eighth column
 * in the ninth when line graphics are enabled. Cursor and blink phases come
 * from guest time (cursor: 16 frames, blink: 32 frames, as the VGA's
 * vertical-sync counter divides them).
 */
import { CP437 } from './cp437.js';
import { attrToDac, blankFrame, dacRgb, MAX_SCAN_LINES } from './graphics.js';
import type { PixelFrame } from './graphics.js';
import { Attr, AttrMode, Crtc, CrtcBits, FRAME_NS, Seq, SeqClocking } from './regs.js';
import type { VgaRegs } from './regs.js';

/** What a text console needs: cells as strings and attribute bytes, and the cursor. */
export interface TextScreen {
  cols: number;
  rows: number;
  /** One string of `cols` characters per row. */
  chars: string[];
  /** Attribute byte of each cell, row-major. */
  attrs: Uint8Array;
  cursor: { x: number; y: number; visible: boolean };
}

const PLANE_OFFSET_MASK = 0xffff;
/** Bytes from one glyph to the next in plane 2. */
const GLYPH_STRIDE = 32;
const FONT_BLOCK_16K = 16384;
const FONT_BLOCK_8K = 8192;
const MAX_COLS = 256;
const LINE_GRAPHICS_FIRST = 0xc0;
const LINE_GRAPHICS_LAST = 0xdf;
const CURSOR_BLINK_FRAMES = 8;
const CHAR_BLINK_FRAMES = 16;

interface TextGeometry {
  cols: number;
  rows: number;
  cellHeight: number;
  doubleScan: number;
  start: number;
  lineOffset: number;
}

function geometry(regs: VgaRegs): TextGeometry {
  const cols = Math.min(regs.crtc[Crtc.H_DISPLAY_END] + 1, MAX_COLS);
  const cellHeight = regs.maxScanLine;
  const doubleScan = regs.crtc[Crtc.MAX_SCAN_LINE] & CrtcBits.MSL_DOUBLE_SCAN ? 2 : 1;
  const lines = Math.min(regs.verticalDisplayLines, MAX_SCAN_LINES);
  const rows = Math.max(1, Math.floor(lines / (cellHeight * doubleScan)));
  const lo = regs.lineOffset;
  return { cols, rows, cellHeight, doubleScan, start: regs.startAddress, lineOffset: lo === 0 ? cols : lo };
}

/** Plane-2 offset of font block n (0-7): blocks 0-3 at 16 KiB steps, 4-7 offset by 8 KiB. */
function fontBlockOffset(n: number): number {
  return (n & 3) * FONT_BLOCK_16K + (n & 4 ? FONT_BLOCK_8K : 0);
}

/** Cursor position relative to the screen, or null when it is off-screen or disabled. */
function cursorCell(regs: VgaRegs, g: TextGeometry): { x: number; y: number; visible: boolean } {
  const cr = regs.crtc;
  const pos = (cr[Crtc.CURSOR_HI] << 8) | cr[Crtc.CURSOR_LO];
  const rel = (pos - g.start) & PLANE_OFFSET_MASK;
  const y = Math.floor(rel / g.lineOffset);
  const x = rel - y * g.lineOffset;
  const startLine = cr[Crtc.CURSOR_START] & CrtcBits.CURSOR_LINE_MASK;
  const endLine = cr[Crtc.CURSOR_END] & CrtcBits.CURSOR_LINE_MASK;
  const onScreen = x < g.cols && y < g.rows;
  const visible = onScreen && !(cr[Crtc.CURSOR_START] & CrtcBits.CURSOR_DISABLE) && startLine <= endLine && startLine < g.cellHeight;
  return { x: onScreen ? x : 0, y: onScreen ? y : 0, visible };
}

/** The text screen as characters and attributes. */
export function renderText(regs: VgaRegs, vram: Uint8Array): TextScreen {
  const g = geometry(regs);
  const attrs = new Uint8Array(g.cols * g.rows);
  const chars: string[] = [];
  const vlen = vram.length;
  for (let r = 0; r < g.rows; r++) {
    let s = '';
    for (let c = 0; c < g.cols; c++) {
      const b = ((g.start + r * g.lineOffset + c) & PLANE_OFFSET_MASK) << 2;
      const ch = b + 1 < vlen ? vram[b] : 0x20;
      attrs[r * g.cols + c] = b + 1 < vlen ? vram[b + 1] : 0;
      s += CP437[ch];
    }
    chars.push(s);
  }
  return { cols: g.cols, rows: g.rows, chars, attrs, cursor: cursorCell(regs, g) };
}

/** Draw the text screen with the plane-2 font. */
export function renderTextPixels(regs: VgaRegs, vram: Uint8Array, nowNs: number, blank: boolean): PixelFrame {
  const g = geometry(regs);
  const cellWidth = regs.seq[Seq.CLOCKING_MODE] & SeqClocking.DOT8 ? 8 : 9;
  const hscale = regs.seq[Seq.CLOCKING_MODE] & SeqClocking.DOT_CLOCK_DIV2 ? 2 : 1;
  const width = g.cols * cellWidth * hscale;
  const height = g.rows * g.cellHeight * g.doubleScan;
  const frame = blankFrame(width, height);
  if (blank) return frame;
  const rgba = frame.rgba;
  const pal = dacRgb(regs);
  const dac16 = new Uint8Array(16);
  for (let i = 0; i < 16; i++) dac16[i] = attrToDac(regs, i);
  const arMode = regs.attr[Attr.MODE];
  const blinkMode = (arMode & AttrMode.BLINK) !== 0;
  const lineGraphics = (arMode & AttrMode.LINE_GRAPHICS) !== 0;
  const frameNo = Math.floor(nowNs / FRAME_NS);
  const cursorOn = Math.floor(frameNo / CURSOR_BLINK_FRAMES) % 2 === 0;
  const blinkOn = Math.floor(frameNo / CHAR_BLINK_FRAMES) % 2 === 0;
  const cms = regs.seq[Seq.CHAR_MAP_SELECT];
  const fontA = fontBlockOffset(((cms >> 5) & 1) << 2 | ((cms >> 2) & 3));
  const fontB = fontBlockOffset(((cms >> 4) & 1) << 2 | (cms & 3));
  const cur = cursorCell(regs, g);
  const curStart = regs.crtc[Crtc.CURSOR_START] & CrtcBits.CURSOR_LINE_MASK;
  const curEnd = Math.min(regs.crtc[Crtc.CURSOR_END] & CrtcBits.CURSOR_LINE_MASK, g.cellHeight - 1);
  const vlen = vram.length;
  const rowPixels = width * 4;
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const b = ((g.start + r * g.lineOffset + c) & PLANE_OFFSET_MASK) << 2;
      if (b + 1 >= vlen) continue;
      const ch = vram[b];
      const at = vram[b + 1];
      const fg = dac16[at & 0xf];
      const bg = dac16[blinkMode ? (at >> 4) & 7 : at >> 4];
      const hideGlyph = blinkMode && (at & 0x80) !== 0 && !blinkOn;
      const font = at & 0x08 ? fontA : fontB;
      const isCursor = cur.visible && cursorOn && cur.x === c && cur.y === r;
      const ninthRepeats = cellWidth === 9 && lineGraphics && ch >= LINE_GRAPHICS_FIRST && ch <= LINE_GRAPHICS_LAST;
      for (let line = 0; line < g.cellHeight; line++) {
        const gi = ((font + ch * GLYPH_STRIDE + line) << 2) + 2;
        let bits = hideGlyph || gi >= vlen ? 0 : vram[gi];
        if (isCursor && line >= curStart && line <= curEnd) bits = 0xff;
        let bits9 = bits << 1;
        if (ninthRepeats || (isCursor && bits === 0xff)) bits9 |= bits & 1;
        for (let s = 0; s < g.doubleScan; s++) {
          const y = (r * g.cellHeight + line) * g.doubleScan + s;
          let o = y * rowPixels + c * cellWidth * hscale * 4;
          for (let x = 0; x < cellWidth; x++) {
            const on = cellWidth === 9 ? (bits9 >> (8 - x)) & 1 : (bits >> (7 - x)) & 1;
            const p = (on ? fg : bg) * 3;
            for (let h = 0; h < hscale; h++, o += 4) {
              rgba[o] = pal[p];
              rgba[o + 1] = pal[p + 1];
              rgba[o + 2] = pal[p + 2];
            }
          }
        }
      }
    }
  }
  return frame;
}
