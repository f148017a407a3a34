/**
 * The user's terminal as a serial console, in the manner of QEMU's
 * `-nographic`: raw mode when stdin is a terminal, every byte forwarded to the
 * guest, and an escape prefix Ctrl-A: Ctrl-A X quits, Ctrl-A C toggles the
 * monitor, Ctrl-A H lists the keys, Ctrl-A Ctrl-A sends a literal Ctrl-A.
 */
export const ESCAPE = 0x01; // Ctrl-A

export interface ConsoleHandlers {
  /** Bytes for the guest's serial port. */
  toGuest(bytes: Uint8Array): void;
  /** Ctrl-A X. */
  quit(): void;
  /** A line typed at the monitor prompt. */
  monitorLine(line: string): void;
}

export class TerminalConsole {
  private _escape = false;
  private _monitor = false;
  private _line = '';
  private _rawWas = false;
  private readonly _onData = (b: Buffer) => this._input(b);

  constructor(
    private readonly _h: ConsoleHandlers,
    private readonly _stdin: NodeJS.ReadStream = process.stdin,
    private readonly _stdout: NodeJS.WriteStream = process.stdout,
  ) {}

  /** Start reading the terminal (raw mode if it is a TTY). */
  start(): void {
    if (this._stdin.isTTY) {
      this._rawWas = this._stdin.isRaw;
      this._stdin.setRawMode(true);
    }
    this._stdin.on('data', this._onData);
    this._stdin.resume();
  }

  /** Restore the terminal. */
  stop(): void {
    this._stdin.off('data', this._onData);
    if (this._stdin.isTTY) this._stdin.setRawMode(this._rawWas);
    this._stdin.pause();
  }

  get inMonitor(): boolean {
    return this._monitor;
  }

  /** Print text from the monitor (converts \n to \r\n for raw terminals). */
  print(text: string): void {
    this._stdout.write(text.replace(/\r?\n/g, '\r\n'));
  }

  private _input(data: Buffer): void {
    const guest: number[] = [];
    for (const b of data) {
      if (this._escape) {
        this._escape = false;
        const k = String.fromCharCode(b).toLowerCase();
        if (k === 'x') {
          this._flush(guest);
          this.print('\nQEMU-style escape: terminating tsvm\n');
          this._h.quit();
          return;
        } else if (k === 'c') {
          this._monitor = !this._monitor;
          this.print(this._monitor ? '\ntsvm monitor (help lists the commands; Ctrl-A C returns to the console)\n(tsvm) ' : '\n');
        } else if (k === 'h') {
          this.print('\nC-a x  exit tsvm\nC-a c  switch between console and monitor\nC-a h  this help\nC-a C-a  send C-a to the guest\n');
        } else if (b === ESCAPE) {
          if (!this._monitor) guest.push(ESCAPE);
        }
        continue;
      }
      if (b === ESCAPE) {
        this._escape = true;
        continue;
      }
      if (this._monitor) this._monitorKey(b);
      else guest.push(b);
    }
    this._flush(guest);
  }

  private _flush(guest: number[]): void {
    if (guest.length) this._h.toGuest(Uint8Array.from(guest));
  }

  private _monitorKey(b: number): void {
    if (b === 0x0d || b === 0x0a) {
      this.print('\n');
      const line = this._line.trim();
      this._line = '';
      if (line) this._h.monitorLine(line);
      if (this._monitor) this.print('(tsvm) ');
    } else if (b === 0x7f || b === 0x08) {
      if (this._line.length) {
        this._line = this._line.slice(0, -1);
        this._stdout.write('\b \b');
      }
    } else if (b >= 0x20 && b < 0x7f) {
      this._line += String.fromCharCode(b);
      this._stdout.write(String.fromCharCode(b));
    }
  }

  /** Leave monitor mode (after `quit` etc.). */
  leaveMonitor(): void {
    this._monitor = false;
  }
}
