/**
 * An emulator (tsvm, QEMU, v86's runner) as a child process driven on its
 * console, the way the benches use it: output collected as it comes, waits
 * that end at a match, at their deadline or when the child exits (with its
 * status and last lines), commands typed at the guest's shell, and tsvm's
 * monitor reached with Ctrl-A C.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Console text as a terminal shows it: no carriage returns, no escape sequences. */
export function plain(s: string): string {
  return s.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

/** The last few non-empty lines of console output, quoted, for an error message. */
export function lastLines(s: string, n = 3): string {
  const lines = plain(s).split('\n').filter((l) => l.trim());
  return JSON.stringify(lines.slice(-n).join('\n').slice(-400));
}

export class Session {
  /** Standard output and standard error, interleaved as they arrived (latin1). */
  out = '';
  readonly child: ChildProcessWithoutNullStreams;
  /** How the child ended ("exit status 0", "killed by SIGKILL"), once it has. */
  exitStatus: string | undefined;
  /** Resolves with exitStatus when the child ends. */
  readonly exited: Promise<string>;
  private waiters: (() => void)[] = [];

  /** `nice`: a niceness for the child (two guests on a shared machine). */
  constructor(cmd: string, args: string[], opts: { nice?: number } = {}) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (opts.nice && this.child.pid) setPriority(this.child.pid, opts.nice);
    const wake = () => {
      for (const w of this.waiters.splice(0)) w();
    };
    const take = (b: Buffer) => {
      this.out += b.toString('latin1');
      wake();
    };
    this.child.stdout.on('data', take);
    this.child.stderr.on('data', take);
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((res) => {
      this.child.on('error', (e) => {
        this.exitStatus = `could not start: ${e.message}`;
        wake();
        res(this.exitStatus);
      });
      this.child.on('exit', (code, sig) => {
        this.exitStatus = sig ? `killed by ${sig}` : `exit status ${code}`;
        wake();
        res(this.exitStatus);
      });
    });
  }

  /** CPU seconds (user + system, all threads) the child has used so far, from /proc; NaN once it is gone. */
  cpuSeconds(): number {
    try {
      const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in USER_HZ ticks
    } catch {
      return NaN;
    }
  }

  /** Nanoseconds on a CPU per thread of the child so far (/proc/PID/task/TID/schedstat); empty where /proc has none. */
  threadCpu(): Map<string, number> {
    const ns = new Map<string, number>();
    try {
      for (const tid of readdirSync(`/proc/${this.child.pid}/task`))
        try {
          ns.set(tid, Number(readFileSync(`/proc/${this.child.pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]));
        } catch {
          // the thread ended meanwhile
        }
    } catch {
      // the child is gone, or there is no /proc
    }
    return ns;
  }

  /**
   * CPU seconds the child used since `mark` (a threadCpu() taken before), to
   * the nanosecond where cpuSeconds() counts 10 ms ticks: for runs of a tenth
   * of a second. Threads started since count whole; a thread that ended since
   * loses its time after the mark (an idle worker's, as QEMU's I/O threads
   * end after 10 s without work). NaN where /proc has no schedstat.
   */
  cpuSince(mark: Map<string, number>): number {
    const now = this.threadCpu();
    if (!mark.size || !now.size) return NaN;
    let ns = 0;
    for (const [tid, t] of now) ns += t - (mark.get(tid) ?? 0);
    return ns / 1e9;
  }

  /** The output from `from` on, as plain text. */
  text(from = 0): string {
    return plain(this.out.slice(from));
  }

  /** Resolves with the host time (performance.now()) at which the output after `from`, as plain text, first matched `re`. */
  async waitFor(re: RegExp, from: number, limitMs: number, what: string): Promise<number> {
    const deadline = performance.now() + limitMs;
    for (;;) {
      if (re.test(this.text(from))) return performance.now();
      if (this.exitStatus) throw new Error(`${what}: the emulator ended (${this.exitStatus}); last output: ${lastLines(this.out)}`);
      if (performance.now() > deadline) throw new Error(`${what}: not seen after ${limitMs / 1000} s; last output: ${lastLines(this.out)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  /**
   * Type `line` at the guest's shell and wait for `prompt` after its echo:
   * the seconds that took, and what was printed between the echo and the prompt.
   */
  async cmd(line: string, prompt: RegExp, limitMs = 600_000): Promise<{ secs: number; text: string }> {
    const from = this.out.length;
    const t0 = performance.now();
    this.child.stdin.write(line + '\n');
    const t1 = await this.waitFor(prompt, from + line.length, limitMs, `the prompt after ${line.slice(0, 60)}`);
    const all = this.text(from);
    const echo = all.indexOf(line);
    const after = echo >= 0 ? all.slice(echo + line.length).replace(/^\n/, '') : all;
    const at = after.search(prompt);
    return { secs: (t1 - t0) / 1000, text: at >= 0 ? after.slice(0, at) : after };
  }

  /** A tsvm monitor command (Ctrl-A C, the line, Ctrl-A C back): the plain output up to where `re` matched. */
  async monitor(line: string, re: RegExp, limitMs = 60_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(`\x01c${line}\r`);
    try {
      await this.waitFor(re, from, limitMs, `the monitor's answer to ${line}`);
      return this.text(from);
    } finally {
      this.child.stdin.write('\x01c');
    }
  }
}
