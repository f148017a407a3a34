// Memtest86+ from Debian's memtest86+ package, booted the way a user would:
// `tsvm run -kernel /boot/memtest86+ia32.bin` (its Linux-boot-protocol
// image) with its screen mirrored on the serial console. The test rebuilds
// the screen from the console's cursor-addressing escapes, waits until the
// status area says the first pass is complete, and checks it found no errors.
//
// RAM is 5 MiB, the smallest size memtest86+ v6 runs in: it relocates itself
// between the first 4 MiB and the memory above, so it needs some above 4 MiB.
// The first pass is memtest's own shortened pass (a third of the iterations
// of later passes) and includes every default test, the bit fade test's two
// 80-second waits among them. docs/guest-memtest.md has the figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { TsvmChild } from '../helpers/child.js';
/** Debian's memtest86+ package (tools/setup.sh installs it). */
const MEMTEST = '/boot/memtest86+ia32.bin';
/** Ctrl-A X: quit tsvm from its console. */
const QUIT = '\x01x';

/** User + system CPU seconds a process has used so far (Linux's /proc), or null where that is not readable. */
function hostCpuSeconds(pid: number | undefined): number | null {
  try {
    // the fields after the command name, which is in parentheses and may hold spaces
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /s, '').split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

/** Just enough of a VT100 to follow memtest86+'s serial console: CUP, ED 2, EL and SGR. */
class Screen {
  readonly rows: string[][];
  private _row = 0;
  private _col = 0;
  private _esc = '';

  constructor(
    readonly height = 25,
    readonly width = 80,
  ) {
    this.rows = Array.from({ length: height }, () => Array<string>(width).fill(' '));
  }

  feed(text: string): void {
    for (const ch of text) {
      if (this._esc) {
        this._esc += ch;
        if (this._esc === '\x1b[' || !/[@-~]/.test(ch) || this._esc.length === 1) continue;
        this._control(this._esc);
        this._esc = '';
        continue;
      }
      if (ch === '\x1b') this._esc = ch;
      else if (ch === '\r') this._col = 0;
      else if (ch === '\n') this._row = Math.min(this._row + 1, this.height - 1);
      else if (ch >= ' ') {
        if (this._col < this.width) this.rows[this._row][this._col] = ch;
        this._col++;
      }
    }
  }

  private _control(seq: string): void {
    const m = /^\x1b\[([?\d;]*)([@-~])$/.exec(seq);
    if (!m) return;
    const args = m[1].split(';').map((a) => parseInt(a, 10));
    switch (m[2]) {
      case 'H':
      case 'f':
        this._row = Math.min(Math.max((args[0] || 1) - 1, 0), this.height - 1);
        this._col = Math.min(Math.max((args[1] || 1) - 1, 0), this.width - 1);
        break;
      case 'J':
        if (args[0] === 2) for (const r of this.rows) r.fill(' ');
        break;
      case 'K':
        this.rows[this._row].fill(' ', this._col);
        break;
    }
  }

  text(): string {
    return this.rows.map((r) => r.join('').trimEnd()).join('\n');
  }
}

test('memtest86+ completes its first pass over the guest RAM without errors', { timeout: 3_600_000, skip: !existsSync(MEMTEST) && `${MEMTEST} is missing (apt-get install memtest86+)` }, async (t) => {
  const screen = new Screen();
  let raw = '';
  const s = new TsvmChild(['run', '-m', '5M', '-kernel', MEMTEST, '-append', 'console=ttyS0 nopause', '-timeout', '3000'], {
    onStdout: (text) => {
      raw += text;
      screen.feed(text);
    },
  });
  const started = Date.now();
  // the status area: "| Pass:  N        Errors: M"
  const passDone = (): boolean => Number(/\| Pass:\s+(\d+)\s+Errors:\s+(\d+)/.exec(screen.text())?.[1] ?? 0) >= 1;
  try {
    await s.waitFor(passDone, 0, 3_300_000, "memtest's first pass").catch((e: Error) => {
      throw new Error(`${e.message}\nscreen:\n${screen.text()}`);
    });
    const text = screen.text();
    const cpu = hostCpuSeconds(s.child.pid);
    t.diagnostic(
      `first pass complete: memtest's ${/Time:\s*[\d:]+/.exec(text)?.[0] ?? 'Time: ?'} of guest time, ` +
        `${((Date.now() - started) / 1000).toFixed(0)} s of wall time${cpu === null ? '' : `, ${cpu.toFixed(0)} s of host CPU`}`,
    );
    for (const row of text.split('\n').slice(7, 9)) t.diagnostic(row);

    assert.match(text, /Memtest86\+ v6\.\d+/);
    assert.match(text, /tsvm virtual IA-32 processor/);
    assert.match(text, /Memory\s*:\s*5MB/);
    assert.match(text, /\| Pass:\s+1\s+Errors:\s+0\b/, `screen:\n${text}`);
    assert.match(text, /Status: Pass/, `screen:\n${text}`);
    // no error report (memtest lists errors under a "pCPU  Pass  Test  Failing Address" header)
    assert.doesNotMatch(raw, /Failing Address|Failed!/);

    s.child.stdin.write(QUIT);
    assert.equal(await s.exit(), 0, s.stderr);
  } finally {
    s.kill();
  }
});
