/**
 * `tsvm` as a child process, the way a user meets it on a terminal: output
 * collected as it comes, text typed to its standard input, and waits that end
 * as soon as the awaited text appears, the deadline passes, or the child exits.
 * A child that exits first fails the wait at once, with its exit status and its
 * last output: no test sits out its deadline on a dead process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const TSVM = join(ROOT, 'bin/tsvm.js');
/** The default guest's shell prompt at the start of a line (busybox may follow it with a cursor query, late kernel messages may follow it too). */
export const PROMPT = /(^|\n)tsvm:[^\n]*# /;

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  /** Node options placed before bin/tsvm.js (e.g. an --import preload). */
  nodeArgs?: string[];
  /** Called with every chunk of standard output as it arrives. */
  onStdout?: (text: string) => void;
}

export class ExitedError extends Error {}

export class TsvmChild {
  /** Standard output and standard error, interleaved as they arrived (latin1). */
  out = '';
  stderr = '';
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private _exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private _waiters: (() => void)[] = [];

  constructor(args: string[], opts: ChildOptions = {}) {
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), TSVM, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.child.stdout.on('data', (b: Buffer) => {
      const s = b.toString('latin1');
      this.out += s;
      opts.onStdout?.(s);
      this._wake();
    });
    this.child.stderr.on('data', (b: Buffer) => {
      const s = b.toString('latin1');
      this.out += s;
      this.stderr += s;
      this._wake();
    });
    this.exited = new Promise((res) =>
      this.child.on('close', (code, signal) => {
        this._exit = { code, signal };
        this._wake();
        res(this._exit);
      }),
    );
  }

  /** How the child ended, as a phrase ("exit status 1", "signal SIGKILL"), or null while it runs. */
  get exitDescription(): string | null {
    if (!this._exit) return null;
    return this._exit.signal ? `signal ${this._exit.signal}` : `exit status ${this._exit.code}`;
  }

  /** The last `n` characters of the output, for failure messages. */
  tail(n = 3000): string {
    return this.out.slice(-n);
  }

  /**
   * Wait until `test` accepts the output after offset `from` (a RegExp to match,
   * or a function of that text); returns that text. Rejects at once if the child
   * exits first, and after `limitMs` if it never comes.
   */
  async waitFor(test: RegExp | ((text: string) => boolean), from: number, limitMs: number, what = String(test)): Promise<string> {
    const ok = typeof test === 'function' ? test : (t: string) => test.test(t);
    const deadline = Date.now() + limitMs;
    for (;;) {
      const tail = this.out.slice(from);
      if (ok(tail)) return tail;
      if (this._exit) throw new ExitedError(`tsvm ended (${this.exitDescription}) before ${what} appeared; its last output:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${limitMs / 1000} s; tsvm is still running; output so far:\n${this.tail()}`);
      await new Promise<void>((r) => {
        this._waiters.push(r);
        setTimeout(r, 1000);
      });
    }
  }

  /** Type a command at the default guest's shell and return what it printed before the next prompt. */
  async shell(cmd: string, limitMs = 300_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(cmd + '\n');
    const tail = await this.waitFor(PROMPT, from, limitMs, `the prompt after '${cmd}'`);
    const m = PROMPT.exec(tail) as RegExpExecArray;
    return tail.slice(0, m.index).replace(/\r/g, '');
  }

  /**
   * A monitor command, typed as a user does (Ctrl-A C, the line, Enter), then
   * Ctrl-A C back to the guest; returns the output up to `re` (the command's
   * answer, or an error line it should match too so a failure shows at once).
   */
  async monitor(line: string, re: RegExp, limitMs = 300_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(`\x01c${line}\r`);
    const text = await this.waitFor(re, from, limitMs, `the monitor's answer to '${line}'`);
    if (!this._exit) this.child.stdin.write('\x01c');
    return text;
  }

  /** Wait for the child to end (killing it after `limitMs`); returns its exit status, or null if killed by a signal. */
  async exit(limitMs = 600_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), limitMs);
    try {
      return (await this.exited).code;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (!this._exit) this.child.kill('SIGKILL');
  }

  private _wake(): void {
    for (const w of this._waiters.splice(0)) w();
  }
}

/**
 * A shell line that pings `ip` `n` times, one echo request per busybox `ping -c 1 -W 10`,
 * and prints `PINGS <received>/<n>`. busybox `ping -c N` waits only about two round trips
 * (at least 1 s) for the last reply once it has had one, so on a loaded host (two guests
 * and another test on two cores) a late reply is reported as lost; a single ping waits
 * up to 10 s for its reply. A packet the network drops is still missing from the count.
 */
export function pingLine(ip: string, n: number): string {
  return `r=0; for i in $(seq ${n}); do ping -c 1 -W 10 ${ip} | grep -q '1 packets received' && r=$((r+1)); done; echo PINGS $r/${n}`;
}

/** Whether a process is alive: it exists and is not a zombie (an orphan waits for whoever reaps it). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/**
 * The nice value of a process (`ps -o ni`, /proc/PID/stat field 19) and of
 * each of its threads (/proc/PID/task/TID/stat: on Linux a nice value is a
 * thread's, and `top -H` shows each), by thread id; null when the process
 * is gone.
 */
export function niceValues(pid: number): { process: number; threads: Map<number, number> } | null {
  const nice = (stat: string) => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);
  try {
    const threads = new Map<number, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        threads.set(Number(tid), nice(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')));
      } catch {
        // a thread that ended meanwhile
      }
    }
    return { process: nice(readFileSync(`/proc/${pid}/stat`, 'latin1')), threads };
  } catch {
    return null;
  }
}

/**
 * The guest's output after the line `marker` (echoed by the command as, say,
 * `echo M-$((1+1))`, so the command line's echo does not match), joined by
 * spaces, less the kernel's console lines ("[  12.345] ...").
 */
export function linesAfter(out: string, marker: string): string {
  const at = out.indexOf(`\n${marker}\n`);
  if (at < 0) throw new Error(`no ${marker} line in:\n${out}`);
  return out
    .slice(at + marker.length + 2)
    .split('\n')
    .filter((l) => l && !/^\[\s*\d+\.\d+\] /.test(l))
    .join(' ');
}
