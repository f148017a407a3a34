/**
 * A VM running in a worker of its own, seen from the daemon: a child process
 * (isolation 'process', the default) or a worker thread ('thread'). The
 * worker builds and runs the machine (vm-worker.ts); this handle forwards
 * input and commands over the channel (worker-channel.ts) and turns
 * everything that can end a worker into one 'exit' event with a reason: the
 * guest stopped, the machine failed, the worker threw, ran out of memory or
 * was killed. None of them reaches the daemon's event loop as an exception,
 * and the daemon sees no difference between the two isolations but `pid`.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { FromWorker, ScreenUpdate, SnapshotOp, ToWorker, WorkerStats } from './thread-protocol.js';
import type { MachineSpec } from './spec.js';
import { processOwner, threadOwner, VM_NICENESS, type Isolation, type OwnerEnd } from './worker-channel.js';

export type { ScreenUpdate, SnapshotOp, WorkerStats, Isolation };
export { VM_NICENESS };

/** How a VM worker ended. */
export interface WorkerExit {
  /** 'stopped': the guest or the host ended the run in order; 'crashed': anything else. */
  kind: 'stopped' | 'crashed';
  /** The runner's stop cause ('poweroff', 'quit', 'halt', ...) or what went wrong. */
  reason: string;
}

export interface VmWorkerOptions {
  spec: MachineSpec;
  baseDir: string;
  /** The VM folder the machine runs from (see WorkerInit.folder), or null. */
  folder: string | null;
  /** A child process (the default) or a worker thread of this process. */
  isolation?: Isolation;
  /** The worker's JS heap limit (MiB); guest RAM is outside it. Past it the VM crashes with 'out of memory'. */
  heapLimitMb?: number;
  /** The cap on the VM's host CPU share, percent of one core (see VmRunner.cpuLimitPercent). */
  cpuLimitPercent?: number | null;
  /**
   * The cap on the VM process's whole resident set (bytes), or null for
   * none: a process that stays above it is killed (see RSS_WATCH_MS). Not
   * enforced for a thread, whose memory is the daemon's.
   */
  rssLimitBytes?: number | null;
  /** Where a VM process's standard error goes, line by line (the VM's log); without it, the daemon's standard error. */
  onStderrLine?: (line: string) => void;
  /** How many nice steps below this process a VM process runs (default VM_NICENESS, 10; 0: the same); not for a thread. */
  niceness?: number;
}

export interface VmWorkerEvents {
  state: [state: 'running' | 'paused'];
  resumed: [];
  serial: [bytes: Uint8Array];
  screen: [update: ScreenUpdate];
  exit: [exit: WorkerExit];
}

/** Default worker heap limit: the machine's own structures need far less; guest RAM is an ArrayBuffer outside the heap. */
export const DEFAULT_HEAP_LIMIT_MB = 256;

/** How often the daemon samples a VM process's resident set (ms). */
export const RSS_WATCH_MS = 1000;
/** Consecutive samples above the limit before the process is killed: a moment's peak (a snapshot's buffers) is let through. */
export const RSS_OVER_SAMPLES = 3;

/** A process's resident set in bytes (VmRSS of /proc/PID/status), or null when it cannot be read (gone, or not Linux). */
export async function processRss(pid: number): Promise<number | null> {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

const MiB = 1024 * 1024;

export class VmWorker extends EventEmitter<VmWorkerEvents> {
  private readonly _end: OwnerEnd;
  private _exit: WorkerExit | null = null;
  private _pendingExit: WorkerExit | null = null;
  private _nextId = 1;
  private readonly _replies = new Map<number, (m: FromWorker) => void>();
  /** Progress listeners of requests under way, by id. */
  private readonly _progress = new Map<number, (done: number, total: number) => void>();
  readonly isolation: Isolation;
  /** The VM process's pid (null for a thread). */
  readonly pid: number | null;
  /** For logs: "process 1234", "worker thread 3". */
  readonly label: string;

  constructor(o: VmWorkerOptions) {
    super();
    const init = { spec: o.spec, baseDir: o.baseDir, folder: o.folder, cpuLimitPercent: o.cpuLimitPercent ?? null };
    const heapLimitMb = o.heapLimitMb ?? DEFAULT_HEAP_LIMIT_MB;
    this._end = (o.isolation ?? 'process') === 'process' ? processOwner({ init, heapLimitMb, onStderrLine: o.onStderrLine, niceness: o.niceness }) : threadOwner({ init, heapLimitMb });
    this.isolation = this._end.isolation;
    this.pid = this._end.pid;
    this.label = this._end.label;
    this._end.onMessage((m) => this._onMessage(m));
    this._end.onEnd((reason) => this._finish(this._overLimit ?? this._pendingExit ?? { kind: 'crashed', reason }));
    this.rssLimitBytes = o.rssLimitBytes ?? null;
    if (this.pid !== null) {
      this._rssTimer = setInterval(() => void this._watchRss(), RSS_WATCH_MS);
      this._rssTimer.unref();
    }
  }

  /** The cap on the process's resident set now (bytes), or null; a process worker only (see VmWorkerOptions.rssLimitBytes). */
  rssLimitBytes: number | null;
  private _rssTimer: NodeJS.Timeout | null = null;
  private _rssOver = 0;
  private _rssReading = false;
  /** Set when the watchdog killed the process: the reason it ended, whatever the pipe still held. */
  private _overLimit: WorkerExit | null = null;

  /** One sample of the process's RSS against its limit; RSS_OVER_SAMPLES in a row above it end the process. */
  private async _watchRss(): Promise<void> {
    if (this._exit || this._rssReading || this.pid === null || this.rssLimitBytes === null) return;
    this._rssReading = true;
    const rss = await processRss(this.pid);
    this._rssReading = false;
    const limit = this.rssLimitBytes;
    if (rss === null || limit === null || this._exit || rss <= limit) {
      this._rssOver = 0;
      return;
    }
    if (++this._rssOver < RSS_OVER_SAMPLES) return;
    this._overLimit = { kind: 'crashed', reason: `over its memory limit: RSS ${Math.round(rss / MiB)} MiB > ${Math.round(limit / MiB)} MiB` };
    void this._end.kill();
  }

  /** Set once the worker has ended. */
  get exited(): WorkerExit | null {
    return this._exit;
  }

  private _finish(exit: WorkerExit): void {
    if (this._exit) return;
    this._exit = exit;
    if (this._rssTimer) clearInterval(this._rssTimer);
    for (const r of this._replies.values()) r({ t: 'failed-to-start', error: exit.reason });
    this._replies.clear();
    this.emit('exit', exit);
  }

  private _onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'state':
        this.emit('state', m.state);
        break;
      case 'serial':
        this.emit('serial', m.bytes);
        break;
      case 'screen':
        this.emit('screen', m.update);
        break;
      case 'stopped':
        this._pendingExit = m.error ? { kind: 'crashed', reason: `the machine failed: ${m.error}` } : { kind: 'stopped', reason: m.cause };
        break;
      case 'failed-to-start':
        this._pendingExit = { kind: 'crashed', reason: `the VM could not start: ${m.error}` };
        break;
      case 'resumed':
        this.emit('resumed');
        break;
      case 'failed':
        this._pendingExit ??= { kind: 'crashed', reason: `the VM ${this.isolation} failed: ${m.error}` };
        break;
      case 'progress':
        this._progress.get(m.id)?.(m.done, m.total);
        break;
      case 'screenshot':
      case 'stats':
      case 'done': {
        const r = this._replies.get(m.id);
        this._replies.delete(m.id);
        r?.(m);
        break;
      }
    }
  }

  /** Send a command or input to the machine; ignored once the worker has ended. */
  send(m: ToWorker): void {
    if (this._exit) return;
    const transfer = 'bytes' in m ? [m.bytes.buffer as ArrayBuffer] : undefined;
    this._end.post(m, transfer);
  }

  private _ask(msg: ToWorker & { id: number }, reply: FromWorker['t']): Promise<FromWorker> {
    if (this._exit) return Promise.reject(new Error(`the VM is not running (${this._exit.reason})`));
    return new Promise((resolve, reject) => {
      this._replies.set(msg.id, (m) => (m.t === reply ? resolve(m) : reject(new Error(`the VM stopped: ${m.t === 'failed-to-start' ? m.error : ''}`))));
      this._end.post(msg);
    });
  }

  /**
   * A snapshot operation on the running machine; resolves with the snapshot
   * node (or null for delete). `progress` hears a save's bytes done of the total.
   */
  async snapshot(req: SnapshotOp, progress?: (done: number, total: number) => void): Promise<unknown> {
    const id = this._nextId++;
    if (progress) this._progress.set(id, progress);
    try {
      const m = (await this._ask({ t: 'snapshot', id, req }, 'done')) as { result: unknown; error: string | null };
      if (m.error !== null) throw new Error(m.error);
      return m.result;
    } finally {
      this._progress.delete(id);
    }
  }

  /** A human-monitor command; resolves with its output. */
  async monitor(line: string): Promise<string> {
    const m = (await this._ask({ t: 'monitor', id: this._nextId++, line }, 'done')) as { result: unknown; error: string | null };
    if (m.error !== null) throw new Error(m.error);
    return String(m.result);
  }

  /** Save the machine into its folder's suspended state; the run then ends. */
  async suspend(): Promise<void> {
    const m = (await this._ask({ t: 'suspend', id: this._nextId++ }, 'done')) as { error: string | null };
    if (m.error !== null) throw new Error(m.error);
  }

  /** The screen as a PNG. */
  async screenshot(): Promise<Uint8Array> {
    const m = await this._ask({ t: 'screenshot', id: this._nextId++ }, 'screenshot');
    return (m as { png: Uint8Array }).png;
  }

  async stats(): Promise<WorkerStats> {
    const m = await this._ask({ t: 'stats', id: this._nextId++ }, 'stats');
    return (m as { stats: WorkerStats }).stats;
  }

  /** End the worker now, wherever the machine is (a hard stop, or a fault test): SIGKILL for a process. */
  terminate(): Promise<void> {
    return this._end.kill();
  }
}
