/**
 * The VM's screen on a canvas: text mode drawn from the rows the daemon sends
 * (characters and VGA attribute bytes), graphics modes from the daemon's
 * screenshot. Keys pressed on the canvas go to the VM by DOM code name.
 */

/** The 16 colours of the VGA text palette (the default DAC values). */
const PALETTE = ['#000', '#0000aa', '#00aa00', '#00aaaa', '#aa0000', '#aa00aa', '#aa5500', '#aaaaaa', '#555', '#5555ff', '#55ff55', '#55ffff', '#ff5555', '#ff55ff', '#ffff55', '#fff'];
const CELL_W = 9;
const CELL_H = 16;

export interface ScreenMessage {
  type: 'screen';
  full: boolean;
  mode: string;
  cols: number;
  rows: number;
  changed: { row: number; text: string; attrs: number[] }[];
  cursor: { x: number; y: number; visible: boolean };
}

export class ScreenView {
  private readonly _ctx: CanvasRenderingContext2D;
  private _rows: { text: string; attrs: number[] }[] = [];
  private _cols = 80;
  private _cursor = { x: 0, y: 0, visible: false };
  mode = '';

  constructor(readonly canvas: HTMLCanvasElement) {
    this._ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  }

  /** Apply a message from the screen socket. */
  update(m: ScreenMessage): void {
    const was = this.mode;
    this.mode = m.mode;
    if (m.mode === 'blank' && was !== 'blank') this.clear();
    if (m.mode !== 'text') return;
    if (m.full || m.cols !== this._cols || m.rows !== this._rows.length) {
      this._cols = m.cols;
      this._rows = Array.from({ length: m.rows }, () => ({ text: ' '.repeat(m.cols), attrs: new Array<number>(m.cols).fill(7) }));
      this.canvas.width = m.cols * CELL_W;
      this.canvas.height = m.rows * CELL_H;
      for (let r = 0; r < m.rows; r++) this._drawRow(r);
    }
    const oldCursorRow = this._cursor.y;
    for (const c of m.changed) {
      this._rows[c.row] = { text: c.text, attrs: c.attrs };
      this._drawRow(c.row);
    }
    this._cursor = m.cursor;
    if (oldCursorRow < this._rows.length) this._drawRow(oldCursorRow);
    if (this._cursor.y < this._rows.length) this._drawRow(this._cursor.y);
  }

  private _drawRow(r: number): void {
    const row = this._rows[r];
    if (!row) return;
    const ctx = this._ctx;
    ctx.font = `${CELL_H - 2}px monospace`;
    ctx.textBaseline = 'top';
    for (let c = 0; c < this._cols; c++) {
      const a = row.attrs[c] ?? 7;
      ctx.fillStyle = PALETTE[(a >> 4) & 7];
      ctx.fillRect(c * CELL_W, r * CELL_H, CELL_W, CELL_H);
      const ch = row.text[c] ?? ' ';
      if (ch !== ' ') {
        ctx.fillStyle = PALETTE[a & 15];
        ctx.fillText(ch, c * CELL_W, r * CELL_H + 1, CELL_W);
      }
    }
    if (this._cursor.visible && this._cursor.y === r) {
      ctx.fillStyle = PALETTE[(row.attrs[this._cursor.x] ?? 7) & 15];
      ctx.fillRect(this._cursor.x * CELL_W, r * CELL_H + CELL_H - 3, CELL_W, 2);
    }
  }

  /** A blank screen: black, at the text screen's size. */
  clear(): void {
    this.canvas.width = 80 * CELL_W;
    this.canvas.height = 25 * CELL_H;
    this._ctx.fillStyle = '#000';
    this._ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this._rows = [];
  }

  /** A graphics-mode frame: the daemon's PNG of the screen. */
  async drawImage(blob: Blob): Promise<void> {
    const img = await createImageBitmap(blob);
    this.canvas.width = img.width;
    this.canvas.height = img.height;
    this._ctx.drawImage(img, 0, 0);
  }
}
