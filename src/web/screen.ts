/**
 * The VM's screen on a canvas, from the tiles of the frame that changed (PNG,
 * drawn in the order they came), in every mode: text is drawn by the daemon
 * with the guest's font, so the canvas is the screenshot. Until the first
 * tiles come, a text screen is drawn from its rows (characters and VGA
 * attribute bytes) in a browser font. Keys pressed on
 * the canvas go to the VM by DOM code name, the mouse as PS/2 movement.
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
  width: number;
  height: number;
  tiles: { x: number; y: number; w: number; h: number; png: string }[];
}

export class ScreenView {
  private readonly _ctx: CanvasRenderingContext2D;
  private _rows: { text: string; attrs: number[] }[] = [];
  private _cols = 80;
  private _cursor = { x: 0, y: 0, visible: false };
  /** Tiles are decoded asynchronously; this chain keeps them drawn in order. */
  private _drawing: Promise<void> = Promise.resolve();
  /** Tiles drawn so far (for tests and the status line). */
  tilesDrawn = 0;
  mode = '';
  /** Whether this mode's picture comes as pixel tiles (it does while the socket watches). */
  private _pixels = false;

  constructor(readonly canvas: HTMLCanvasElement) {
    this._ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  }

  /** Apply a message from the screen socket. */
  update(m: ScreenMessage): void {
    const was = this.mode;
    this.mode = m.mode;
    if (m.mode !== was) this._pixels = false;
    if (m.mode === 'blank' && was !== 'blank') this.clear();
    if (m.mode !== 'blank' && m.tiles.length) {
      this._drawTiles(m);
      this._pixels = true;
    }
    // text rows are drawn only until the pixels come (a screen kept from before anyone watched)
    if (m.mode !== 'text' || this._pixels) return;
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
    this._pixels = false;
  }

  private _drawTiles(m: ScreenMessage): void {
    const { width, height } = m;
    const bitmaps = m.tiles.map((t) => createImageBitmap(new Blob([Uint8Array.from(atob(t.png), (c) => c.charCodeAt(0))], { type: 'image/png' })));
    this._drawing = this._drawing.then(async () => {
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      for (let i = 0; i < bitmaps.length; i++) {
        const t = m.tiles[i];
        try {
          this._ctx.drawImage(await bitmaps[i], t.x, t.y);
        } catch {
          // a tile that does not decode is skipped; the next change of its place redraws it
        }
        this.tilesDrawn++;
      }
    });
  }
}
