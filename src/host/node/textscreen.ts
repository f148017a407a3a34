/**
 * The VGA text screen in the user's terminal (`-display curses`): the
 * characters with their colours and the cursor, redrawn with ANSI escape
 * sequences when they change; and the terminal's keys turned into PS/2 key
 * presses. Also the `-screendump` writer (PNG or text).
 */
import { writeFileSync } from 'node:fs';
import { KEY, type KeyboardInput } from '../../devices/backends.js';
import { encodePng } from './png.js';

/** PS/2 key codes by DOM KeyboardEvent.code name, for front ends that take keys by name. */
export { KEY };

export interface TextScreenLike {
  cols: number;
  rows: number;
  chars: string[];
  attrs: Uint8Array;
  cursor: { x: number; y: number; visible: boolean };
}

/** VGA colour index -> ANSI colour number (VGA's order is BGR, ANSI's RGB). */
const ANSI = [0, 4, 2, 6, 1, 5, 3, 7];

function sgr(attr: number): string {
  const fg = attr & 7;
  const bright = (attr & 8) !== 0;
  const bg = (attr >> 4) & 7;
  return `\x1b[0;${bright ? 90 + ANSI[fg] : 30 + ANSI[fg]};${40 + ANSI[bg]}m`;
}

export class TerminalScreen {
  private _last: string[] = [];
  private _lastAttrs = new Uint8Array(0);
  private _started = false;

  constructor(private readonly _out: NodeJS.WriteStream = process.stdout) {}

  /** Redraw the rows that changed since the last call. */
  draw(s: TextScreenLike): void {
    let out = '';
    if (!this._started) {
      out += '\x1b[?1049h\x1b[2J';
      this._started = true;
      this._last = [];
    }
    for (let y = 0; y < s.rows; y++) {
      const row = s.chars[y] ?? '';
      const a = s.attrs.subarray(y * s.cols, (y + 1) * s.cols);
      const prevA = this._lastAttrs.subarray(y * s.cols, (y + 1) * s.cols);
      if (this._last[y] === row && a.length === prevA.length && a.every((v, i) => v === prevA[i])) continue;
      out += `\x1b[${y + 1};1H`;
      let cur = -1;
      for (let x = 0; x < s.cols; x++) {
        if (a[x] !== cur) {
          cur = a[x];
          out += sgr(cur);
        }
        out += row[x] ?? ' ';
      }
    }
    out += '\x1b[0m';
    out += s.cursor.visible ? `\x1b[${s.cursor.y + 1};${s.cursor.x + 1}H\x1b[?25h` : '\x1b[?25l';
    this._last = s.chars.slice();
    this._lastAttrs = s.attrs.slice();
    this._out.write(out);
  }

  /** Leave the alternate screen and restore the cursor. */
  close(): void {
    if (this._started) this._out.write('\x1b[0m\x1b[?25h\x1b[?1049l');
    this._started = false;
  }
}

/** Characters a US keyboard types, by the key that types them and whether Shift is held. */
const CHAR_KEYS: Record<string, [string, boolean]> = {};
const ROWS: [string, string, string][] = [
  ['`1234567890-=', '~!@#$%^&*()_+', 'Backquote Digit1 Digit2 Digit3 Digit4 Digit5 Digit6 Digit7 Digit8 Digit9 Digit0 Minus Equal'],
  ['qwertyuiop[]\\', 'QWERTYUIOP{}|', 'KeyQ KeyW KeyE KeyR KeyT KeyY KeyU KeyI KeyO KeyP BracketLeft BracketRight Backslash'],
  ["asdfghjkl;'", 'ASDFGHJKL:"', 'KeyA KeyS KeyD KeyF KeyG KeyH KeyJ KeyK KeyL Semicolon Quote'],
  ['zxcvbnm,./', 'ZXCVBNM<>?', 'KeyZ KeyX KeyC KeyV KeyB KeyN KeyM Comma Period Slash'],
];
for (const [plain, shifted, names] of ROWS) {
  const n = names.split(' ');
  for (let i = 0; i < n.length; i++) {
    CHAR_KEYS[plain[i]] = [n[i], false];
    CHAR_KEYS[shifted[i]] = [n[i], true];
  }
}
CHAR_KEYS[' '] = ['Space', false];
CHAR_KEYS['\r'] = ['Enter', false];
CHAR_KEYS['\n'] = ['Enter', false];
CHAR_KEYS['\t'] = ['Tab', false];
CHAR_KEYS['\x7f'] = ['Backspace', false];
CHAR_KEYS['\x08'] = ['Backspace', false];
CHAR_KEYS['\x1b'] = ['Escape', false];

/** Terminal escape sequences for special keys. */
const SEQUENCES: [string, string][] = [
  ['\x1b[A', 'ArrowUp'],
  ['\x1b[B', 'ArrowDown'],
  ['\x1b[C', 'ArrowRight'],
  ['\x1b[D', 'ArrowLeft'],
  ['\x1b[H', 'Home'],
  ['\x1b[F', 'End'],
  ['\x1b[2~', 'Insert'],
  ['\x1b[3~', 'Delete'],
  ['\x1b[5~', 'PageUp'],
  ['\x1b[6~', 'PageDown'],
  ['\x1bOP', 'F1'],
  ['\x1bOQ', 'F2'],
  ['\x1bOR', 'F3'],
  ['\x1bOS', 'F4'],
  ['\x1b[15~', 'F5'],
  ['\x1b[17~', 'F6'],
  ['\x1b[18~', 'F7'],
  ['\x1b[19~', 'F8'],
  ['\x1b[20~', 'F9'],
  ['\x1b[21~', 'F10'],
];

function tap(kbd: KeyboardInput, name: string, shift: boolean, ctrl = false): void {
  if (shift) kbd.keyDown(KEY.ShiftLeft);
  if (ctrl) kbd.keyDown(KEY.ControlLeft);
  kbd.keyDown(KEY[name]);
  kbd.keyUp(KEY[name]);
  if (ctrl) kbd.keyUp(KEY.ControlLeft);
  if (shift) kbd.keyUp(KEY.ShiftLeft);
}

/** Turn bytes typed in a terminal into key presses on a PS/2 keyboard. */
export function typeTerminalBytes(kbd: KeyboardInput, bytes: Uint8Array): void {
  const s = Buffer.from(bytes).toString('latin1');
  for (let i = 0; i < s.length; ) {
    const seq = SEQUENCES.find(([q]) => s.startsWith(q, i));
    if (seq) {
      tap(kbd, seq[1], false);
      i += seq[0].length;
      continue;
    }
    const ch = s[i++];
    const code = ch.charCodeAt(0);
    const k = CHAR_KEYS[ch];
    if (k) tap(kbd, k[0], k[1]);
    else if (code >= 1 && code <= 26) tap(kbd, `Key${String.fromCharCode(64 + code)}`, false, true); // Ctrl-letter
  }
}

/** Write the screen to `path`: a PNG image if it ends in .png, otherwise the text rows. */
export function writeScreendump(
  path: string,
  screen: { renderText(): TextScreenLike; renderPixels(): { width: number; height: number; rgba: Uint8ClampedArray }; displayMode(): string },
): void {
  if (path.toLowerCase().endsWith('.png')) {
    const f = screen.renderPixels();
    writeFileSync(path, encodePng(f.width, f.height, new Uint8Array(f.rgba.buffer, f.rgba.byteOffset, f.rgba.byteLength)));
    return;
  }
  const t = screen.displayMode() === 'text' ? screen.renderText() : null;
  writeFileSync(path, t ? t.chars.map((r) => r.replace(/\s+$/, '')).join('\n') + '\n' : '');
}
