/**
 * A one-line status display on stderr (progress while an image builds or a
 * guest boots). On a terminal it redraws in place; otherwise it prints each
 * new message once, so logs stay readable.
 */
export class StatusLine {
  private _shown = '';
  private readonly _tty: boolean;
  /** Set when nothing should be drawn (output already flowing). */
  silent = false;

  constructor(private readonly _out: NodeJS.WriteStream) {
    this._tty = Boolean(_out.isTTY);
  }

  show(msg: string): void {
    if (this.silent) return;
    if (this._tty) {
      const cols = this._out.columns || 80;
      this._out.write('\r\x1b[2K' + ('tsvm: ' + msg).slice(0, cols - 1));
      this._shown = msg;
    } else if (msg.replace(/[\d.]+ s\b/, '') !== this._shown.replace(/[\d.]+ s\b/, '')) {
      this._out.write(`tsvm: ${msg}\n`);
      this._shown = msg;
    }
  }

  /** Replace the status with a permanent line. */
  done(msg: string): void {
    this.clear();
    this._out.write(`tsvm: ${msg}\n`);
  }

  clear(): void {
    if (this._tty && this._shown) this._out.write('\r\x1b[2K');
    this._shown = '';
  }
}
