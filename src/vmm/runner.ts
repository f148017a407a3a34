/**
 * The VM runner: one object that owns a machine's life. It creates the
 * machine, runs it in slices paced to wall time, applies host input at slice
 * boundaries, and stops it for a reason (the guest powered off, halted or
 * triple-faulted; the host asked; a limit ran out). Pause, resume, save and
 * restore happen between slices, so the machine is always in a consistent
 * state when they do. An exception thrown inside the machine (an emulator
 * bug) puts the runner in the 'error' state with the reason and a state
 * dump; it never escapes to the caller's event loop.
 *
 * The CLI, the daemon, benchmarks and tests all drive this class; none of
 * them has a run loop of its own.
 */
import './v8flags.js'; // V8's settings for the wasm tier, before any region is compiled, whoever drives the runner
import { Machine, NS_PER_INSTRUCTION, type MachineState, type StopReason } from '../board/machine.js';
import { formatCpuState } from '../board/dump.js';
import type { HostCharSink } from '../host/node/chardev.js';
import type { MachineSpec } from './spec.js';
import { encodeSnapshot, restoreSnapshot, type RestoreStats, type SnapshotFile, type SnapshotMeta } from './snapshot.js';
import { typeTerminalBytes, writeScreendump, type TextScreenLike } from '../host/node/textscreen.js';
import { encodePng } from '../host/node/png.js';

/** Where a runner is in its life. */
export type RunnerState = 'created' | 'running' | 'paused' | 'stopped' | 'error';

/**
 * Why a run ended: the guest's own stop reasons, or
 * 'quit' (the host asked), 'run-for' (the guest-time limit), 'timeout' (the
 * wall-time limit), 'reset' (the guest reset with noReboot), 'error' (an
 * exception inside the machine; see `error`).
 */
export type StopCause = Exclude<StopReason, 'running'> | 'quit' | 'run-for' | 'timeout' | 'reset' | 'error';

/** Host input, queued by front ends and applied at the next slice boundary. */
export type HostInput =
  | { kind: 'serial'; port: number; bytes: Uint8Array }
  /** Bytes typed at a terminal, turned into PS/2 key presses. */
  | { kind: 'terminal-keys'; bytes: Uint8Array }
  | { kind: 'key'; code: number; down: boolean }
  | { kind: 'mouse'; dx: number; dy: number; buttons: number; dz: number }
  /** Work that must see the machine between slices (monitor commands, saves). */
  | { kind: 'call'; fn: () => void };

/** What went wrong when the runner is in the 'error' state. */
export interface RunnerError {
  reason: string;
  /** CPU registers and the machine's position when it happened. */
  dump: string;
  /** The exception's stack, for a bug report. */
  stack: string;
}

export interface RunnerOptions {
  /** Stop after this much guest time (ns). */
  runForNs?: number;
  /** Stop after this much wall time (ms) spent running. */
  timeoutMs?: number;
  /** End the run when the guest resets instead of rebooting it. */
  noReboot?: boolean;
  /** Character sinks the machine writes to; flushed every tick and closed at dispose(). */
  sinks?: HostCharSink[];
  /** The spec the machine was built from (resources.ts), kept for snapshot headers. */
  spec?: MachineSpec;
  /** Other host resources (disks) released at dispose(). */
  closers?: (() => void)[];
  /** The shortest idle sleep in ms (IDLE_SLEEP_MIN_MS; 0: one wake-up per guest timer). */
  idleSleepMinMs?: number;
  /** The shortest idle sleep in ms once the guest has been quiet for DEEP_IDLE_AFTER_MS (IDLE_SLEEP_DEEP_MS; at most 50). */
  idleSleepDeepMs?: number;
}

export interface RunnerEvents {
  /** The state changed. */
  state: (s: RunnerState) => void;
  /** A tick of slices ended and output was flushed (front ends redraw here). */
  tick: (wallMs: number) => void;
  /** The run ended. */
  stop: (cause: StopCause) => void;
}

/** Host time between checks for input, output flushes and the limits. */
export const TICK_MS = 15;
/** How far guest time may run ahead of wall time while the guest idles. */
export const MAX_AHEAD_NS = 10e6;
/**
 * How far an idle (halted) guest's clock may run ahead of the wall clock:
 * its idle skip stops here (Machine.idleHorizonNs) and the runner sleeps
 * until the wall clock reaches its next timer deadline, or host input comes.
 */
export const IDLE_AHEAD_NS = 1e6;
/**
 * The shortest idle sleep (ms, RunnerOptions.idleSleepMinMs): an idle guest
 * whose next timer is nearer is woken this late, and serves the timers due
 * meanwhile back to back (docs/vmm.md, "Two guest timers per wake-up").
 */
export const IDLE_SLEEP_MIN_MS = 8;
/**
 * The shortest idle sleep of a quiet guest (RunnerOptions.idleSleepDeepMs):
 * one that for DEEP_IDLE_AFTER_MS has had no host input and has done no work
 * beyond its timers (at most BUSY_SHARE of its guest time spent running).
 * Host input ends the sleep at once and makes the guest active again.
 */
export const IDLE_SLEEP_DEEP_MS = 32;
export const DEEP_IDLE_AFTER_MS = 1000;
/** A tick in which the guest ran more than this share of the guest time it covered is work, not idling. */
const BUSY_SHARE = 0.1;
/** Instructions per runSlice call; the machine ends a slice early at timer deadlines. */
const SLICE_INSTRUCTIONS = 200_000;

export class VmRunner {
  private _state: RunnerState = 'created';
  private readonly _queue: HostInput[] = [];
  private readonly _listeners: { [K in keyof RunnerEvents]: RunnerEvents[K][] } = { state: [], tick: [], stop: [] };
  private _stopRequest: StopCause | null = null;
  private _pauseRequested = false;
  private _wake: (() => void) | null = null;
  /** performance.now() at the last host input or guest work (a quiet guest sleeps longer: IDLE_SLEEP_DEEP_MS). */
  private _activeAt = 0;
  private _idleLeast = 0;
  private _disposed = false;
  /** Wall time spent in the 'running' state (ms), and guest time at creation (ns; moved by restores, see _applyInput). */
  private _wallMs = 0;
  private _startNs: number;
  /**
   * Pacing: wall time (ms, performance.now(): Date.now()'s whole milliseconds made an idle
   * guest's 1 ms of slack jitter by a whole step) and guest time (ns) at the start of the
   * current stretch, which guest time is held to.
   */
  private _paceWall = 0;
  private _paceNs = 0;
  private _cpuLimit: number | null = null;
  /**
   * The CPU clock the cap measures busy time with (ms), or null for the
   * tick's wall time. A VM alone in its process sets the process's CPU time
   * (every thread: V8's compilers and GC count against the VM too).
   */
  cpuClock: (() => number) | null = null;
  /** Set once the run ends. */
  stopCause: StopCause | null = null;
  error: RunnerError | null = null;

  constructor(
    readonly machine: Machine,
    private readonly _opts: RunnerOptions = {},
  ) {
    this._startNs = machine.clock.nowNs;
  }

  /** The spec the machine was built from, when it was built from one. */
  get spec(): MachineSpec | undefined {
    return this._opts.spec;
  }

  /** The exception chain of a triple fault (the stop cause 'triple-fault'). */
  get tripleFaultChain(): string {
    return this.machine.tripleFaultChain;
  }

  get state(): RunnerState {
    return this._state;
  }

  /** Wall time the machine has spent running, in ms. */
  get wallMs(): number {
    return this._wallMs;
  }

  /** Guest time run since the runner was created, in ns (a loaded state's jump in guest time does not count). */
  get guestNs(): number {
    return this.machine.clock.nowNs - this._startNs;
  }

  /** How far guest time is ahead of wall time since the pacing base, in ns (negative: behind). An idle guest is held to MAX_AHEAD_NS; a busy one runs as fast as the host can. */
  get paceAheadNs(): number {
    return this.machine.clock.nowNs - this._paceNs - (performance.now() - this._paceWall) * 1e6;
  }

  /** Start a new pacing stretch here: after a pause, or a restore that moved guest time. */
  private _rebasePacing(): void {
    this._paceWall = performance.now();
    this._activeAt = this._paceWall; // a start, a resume or a loaded state: not quiet yet
    this._paceNs = this.machine.clock.nowNs;
  }

  on<K extends keyof RunnerEvents>(event: K, fn: RunnerEvents[K]): void {
    this._listeners[event].push(fn);
  }

  private _emit<K extends keyof RunnerEvents>(event: K, ...args: Parameters<RunnerEvents[K]>): void {
    for (const fn of this._listeners[event]) (fn as (...a: Parameters<RunnerEvents[K]>) => void)(...args);
  }

  private _setState(s: RunnerState): void {
    if (this._state === s) return;
    this._state = s;
    this._emit('state', s);
  }

  /**
   * A cap on the host CPU this run loop takes, in percent of one core (1-100),
   * or null for none. After each tick of slices the loop sleeps long enough
   * that its busy share stays under the cap: busy / (busy + sleep) = cap. The
   * sleep is not cut short by input, so a stream of input cannot lift the
   * cap; input waits at most one sleep. Busy time is wall time spent in the
   * tick (a thread's own CPU clock is not available to JS), so a preempted
   * loop counts its wait as busy and runs a little less, never more; with a
   * `cpuClock` it is that clock's time over the tick (a VM process's CPU
   * time, all its threads), and the sleep makes the tick's wall time up to
   * busy / cap.
   */
  get cpuLimitPercent(): number | null {
    return this._cpuLimit;
  }
  set cpuLimitPercent(p: number | null) {
    if (p !== null && !(p >= 1 && p <= 100)) throw new RangeError(`a CPU limit is a percent from 1 to 100, not ${p}`);
    this._cpuLimit = p === 100 ? null : p;
  }

  /** The shortest sleep (ms) the last idle wait allowed: 0 behind the wall clock, IDLE_SLEEP_MIN_MS, or IDLE_SLEEP_DEEP_MS once quiet. */
  get idleSleepMs(): number {
    return this._idleLeast;
  }

  /** Queue host input; it reaches the machine at the next slice boundary. */
  input(i: HostInput): void {
    this._queue.push(i);
    // what reaches the guest makes it active; work between slices (stats, monitor commands, saves) does not
    if (i.kind !== 'call') this._activeAt = performance.now();
    this._wakeUp();
  }

  /** Run `fn` at the next slice boundary (or now, when the machine is not running), and return its result. */
  call<T>(fn: () => T): Promise<T> {
    if (this._state !== 'running') {
      try {
        return Promise.resolve(this._keepingTime(fn));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.input({
        kind: 'call',
        fn: () => {
          try {
            resolve(fn());
          } catch (e) {
            reject(e);
          }
        },
      });
    });
  }

  /** Ask the run to end at the next slice boundary. */
  stop(cause: StopCause = 'quit'): void {
    if (this._stopRequest === null) this._stopRequest = cause;
    this._wakeUp();
  }

  /** Stop running slices until resume(); guest time stands still. */
  pause(): void {
    if (this._state === 'running') this._pauseRequested = true;
  }

  resume(): void {
    this._pauseRequested = false;
    if (this._state === 'paused') this._setState('running');
    this._wakeUp();
  }

  /** The whole machine state (a copy). Call between slices: from a 'call' input, or while not running. */
  saveState(): MachineState {
    return this.machine.saveState();
  }

  /** Load a machine state; refused (and the machine left as it was) when it does not fit. */
  loadState(s: MachineState): void {
    this.machine.loadState(s);
  }

  /** The whole machine as snapshot-file bytes, taken at a slice boundary (the machine is not changed). */
  snapshot(meta: SnapshotMeta = {}): Promise<Uint8Array> {
    const spec = this._opts.spec;
    if (!spec) return Promise.reject(new Error('this machine was not built from a spec, so it cannot be snapshotted'));
    return this.call(() => encodeSnapshot(this.machine, spec, meta));
  }

  /** Load a checked snapshot at a slice boundary; refused (and nothing changed) when it does not fit this machine. */
  restore(file: SnapshotFile): Promise<RestoreStats> {
    const spec = this._opts.spec;
    if (!spec) return Promise.reject(new Error('this machine was not built from a spec, so it cannot load a snapshot'));
    return this.call(() => restoreSnapshot(this.machine, spec, file));
  }

  /** The screen as text rows, or null in a graphics mode. */
  textScreen(): TextScreenLike | null {
    const vga = this.machine.vga;
    return vga.displayMode() === 'text' ? vga.renderText() : null;
  }

  /** Write the screen to a file: PNG if the path ends in .png, else the text rows. */
  screendump(path: string): void {
    writeScreendump(path, this.machine.vga);
  }

  /** The screen as a PNG image (QMP's screendump, the daemon's screenshot); call between slices (call()). */
  screenshotPng(): Uint8Array {
    const f = this.machine.vga.renderPixels();
    return encodePng(f.width, f.height, new Uint8Array(f.rgba.buffer, f.rgba.byteOffset, f.rgba.byteLength));
  }

  /** Registers and position, as the monitor's `info registers` shows them. */
  cpuDump(): string {
    return formatCpuState(this.machine.cpu);
  }

  private _wakeUp(): void {
    const w = this._wake;
    this._wake = null;
    w?.();
  }

  /**
   * Run work between slices that may load a state (loadvm, a restore): guest
   * time then jumps to the state's, and pacing and the guest-time limit
   * start again from there instead of holding the guest to the old clock
   * (a later snapshot would otherwise idle at a crawl until wall time caught
   * up, an earlier one run unpaced).
   */
  private _keepingTime<T>(fn: () => T): T {
    const m = this.machine;
    const before = m.clock.nowNs;
    try {
      return fn();
    } finally {
      if (m.clock.nowNs !== before) {
        this._startNs += m.clock.nowNs - before;
        this._rebasePacing();
      }
    }
  }

  private _applyInput(): void {
    this._keepingTime(() => this._applyQueue());
  }

  private _applyQueue(): void {
    const m = this.machine;
    while (this._queue.length) {
      const i = this._queue.shift() as HostInput;
      switch (i.kind) {
        case 'serial':
          m.serial[i.port]?.receive(i.bytes);
          break;
        case 'terminal-keys':
          typeTerminalBytes(m.keyboard, i.bytes);
          break;
        case 'key':
          if (i.down) m.keyboard.keyDown(i.code);
          else m.keyboard.keyUp(i.code);
          break;
        case 'mouse':
          m.mouse.move(i.dx, i.dy, i.buttons, i.dz);
          break;
        case 'call':
          i.fn();
          break;
      }
    }
  }

  private _flush(): void {
    for (const s of this._opts.sinks ?? []) s.flush();
  }

  /**
   * Run until the machine stops or the host stops it; resolves with the cause.
   * Never rejects for a failure inside the machine: that ends the run with
   * cause 'error' and `error` set.
   */
  async run(): Promise<StopCause> {
    if (this._state !== 'created' && this._state !== 'stopped') throw new Error(`the VM is ${this._state}; it cannot be started`);
    const m = this.machine;
    const runForNs = this._opts.runForNs ?? Infinity;
    const timeoutMs = this._opts.timeoutMs ?? Infinity;
    this._stopRequest = null;
    this.stopCause = null;
    this._setState('running');
    // host input for the machine's devices (a frame from the network) ends an idle sleep at once
    m.onHostInput = () => {
      this._activeAt = performance.now(); // a frame for the guest
      this._wakeUp();
    };
    let cause: StopCause;
    // pacing: from wall time and guest time at the start of the current running stretch
    this._rebasePacing();
    // wall time running: since the start, less the time spent paused
    const wallBase = Date.now() - this._wallMs;
    let pausedMs = 0;
    for (;;) {
      if (this._pauseRequested) {
        this._pauseRequested = false;
        this._setState('paused');
        this._flush();
        const pausedAt = Date.now();
        while (this.state === 'paused' && this._stopRequest === null) {
          await new Promise<void>((r) => {
            this._wake = r;
            if (this._queue.length) r();
          });
          try {
            this._applyInput(); // monitor commands and saves work while paused
          } catch (e) {
            cause = this._fail(e);
            break;
          }
        }
        if (this.error) {
          cause = 'error';
          break;
        }
        pausedMs += Date.now() - pausedAt;
        if (this.state === 'paused') this._setState('running');
        this._rebasePacing();
      }
      const tickStart = Date.now();
      // the process's CPU clock is a system call: read it only for a cap
      const tickCpu = this.cpuClock && this._cpuLimit !== null ? this.cpuClock() : 0;
      const tickEnd = tickStart + TICK_MS;
      const tickInstr = m.cpu.instructionCount();
      const tickNs = m.clock.nowNs;
      let resets = 0;
      let failed: StopCause | null = null;
      try {
        this._applyInput();
        while (Date.now() < tickEnd && this._stopRequest === null && !this._pauseRequested) {
          const before = m.resets;
          // an idle guest's clock follows the wall clock: it may not skip past it to its next deadline
          m.idleHorizonNs = m.clock.nowNs - this.paceAheadNs + IDLE_AHEAD_NS;
          const r = m.runSlice(SLICE_INSTRUCTIONS);
          resets += m.resets - before;
          if (r !== 'running' || this.guestNs >= runForNs) break;
          if (m.cpu.halted && (this.paceAheadNs > MAX_AHEAD_NS || m.clock.nowNs >= m.idleHorizonNs)) break;
          if (this._queue.length) this._applyInput();
        }
      } catch (e) {
        failed = this._fail(e);
      }
      this._wallMs = Date.now() - wallBase - pausedMs;
      this._flush();
      if (failed) {
        cause = failed;
        break;
      }
      this._emit('tick', this._wallMs);
      if (this._stopRequest !== null) {
        cause = this._stopRequest;
        break;
      }
      if (this._opts.noReboot && resets > 0) {
        cause = 'reset';
        break;
      }
      if (m.stopReason !== 'running') {
        cause = m.stopReason;
        break;
      }
      if (this.guestNs >= runForNs) {
        cause = 'run-for';
        break;
      }
      if (this._wallMs > timeoutMs) {
        cause = 'timeout';
        break;
      }
      // the CPU cap: sleep off this tick's share, whatever input arrives meanwhile
      if (this._cpuLimit !== null) {
        const busyMs = this.cpuClock ? this.cpuClock() - tickCpu : Date.now() - tickStart;
        const oweMs = (busyMs * 100) / this._cpuLimit - (Date.now() - tickStart);
        if (oweMs >= 1) await new Promise<void>((r) => setTimeout(r, oweMs));
        if (this._stopRequest !== null || this._pauseRequested || this._queue.length) continue;
      }
      // pace an idle guest to wall time; yield to the event loop for input either way.
      // A busy guest (the CPU still running at the tick's end) is not slept: guest
      // time is 20 ns per instruction, so pacing it would cap a compiled tier at
      // 50 M instructions/s of wall time. What it ran ahead beyond MAX_AHEAD_NS is
      // forgiven (the base moves), so once it idles it is held as before.
      const busy = !m.cpu.halted;
      // guest work (not only its timers) keeps the short idle sleeps for DEEP_IDLE_AFTER_MS
      if (busy || (m.cpu.instructionCount() - tickInstr) * NS_PER_INSTRUCTION > (m.clock.nowNs - tickNs) * BUSY_SHARE) this._activeAt = performance.now();
      if (busy && this.paceAheadNs > MAX_AHEAD_NS) {
        this._paceWall = performance.now();
        this._paceNs = m.clock.nowNs - MAX_AHEAD_NS;
      }
      // an idle guest that fell behind the wall clock (it ran slower than real time, a boot on a
      // loaded host) is not let catch up: that would mean skipping through its timers faster than
      // the wall clock, so that a TCP retransmission timer or ping's next second comes before a
      // reply already on its way (two guests booted at load 13 pinged every 50 ms of wall time)
      if (!busy && this.paceAheadNs < -MAX_AHEAD_NS) {
        this._paceWall = performance.now();
        this._paceNs = m.clock.nowNs;
      }
      // idle: sleep until the wall clock reaches the guest's next timer deadline, at most 50 ms;
      // host input (a frame) ends the sleep at once. One wake-up per guest timer: the sleep is
      // rounded up to whole milliseconds, since Node truncates a timer's delay to whole ms and
      // counts it from the event loop's cached time (up to a millisecond and this tick's work
      // old), so a fractional delay woke before the deadline was in reach (more than
      // IDLE_AHEAD_NS away), the guest could only skip to the horizon, and a second sleep of
      // "less than 1 ms" (a 0 ms timer, already due) followed: about two wake-ups and four
      // slices per tick of an idle Linux guest (250 Hz), where one of each does. Waking up to
      // a millisecond late costs nothing the guest can see: it skips to its deadline, and its
      // clock keeps to the pacing base. A guest idle up to its horizon (caught up with the wall
      // clock) sleeps at least IDLE_SLEEP_MIN_MS: the timers due meanwhile run back to back,
      // two kernel ticks of 4 ms for one wake-up, and once quiet for DEEP_IDLE_AFTER_MS (no host
      // input, no work beyond its timers) IDLE_SLEEP_DEEP_MS; one behind the wall clock (it ran
      // slowly) is not held back further.
      let idleMs = 0;
      if (!busy) {
        const ahead = this.paceAheadNs;
        const next = m.clock.nextDeadline();
        const quiet = performance.now() - this._activeAt > DEEP_IDLE_AFTER_MS;
        const least = m.clock.nowNs < m.idleHorizonNs ? 0 : quiet ? (this._opts.idleSleepDeepMs ?? IDLE_SLEEP_DEEP_MS) : (this._opts.idleSleepMinMs ?? IDLE_SLEEP_MIN_MS);
        idleMs = next === Infinity ? 50 : (next - m.clock.nowNs + ahead) / 1e6;
        this._idleLeast = least;
        idleMs = Math.ceil(Math.max(idleMs, ahead / 1e6, least));
      }
      // A busy guest only yields to the event loop (input, sockets, timers): setImmediate, not
      // setTimeout(0), which Node stretches to 1 ms, a sleep after every 15 ms tick that cost
      // a CPU-bound guest about 7% of its wall time.
      await new Promise<void>((r) => {
        const cancel = idleMs >= 1 ? clearTimeout.bind(null, setTimeout(r, Math.min(idleMs, 50))) : clearImmediate.bind(null, setImmediate(r));
        this._wake = () => {
          cancel();
          r();
        };
      });
      this._wake = null;
    }
    m.onHostInput = null;
    m.idleHorizonNs = Infinity;
    this._flush();
    this.stopCause = cause;
    this._setState(cause === 'error' ? 'error' : 'stopped');
    this._emit('stop', cause);
    return cause;
  }

  /** An exception inside the machine: record it and end the run. */
  private _fail(e: unknown): StopCause {
    const err = e instanceof Error ? e : new Error(String(e));
    let dump: string;
    try {
      const m = this.machine;
      dump = `${formatCpuState(m.cpu)}\nguest time ${(m.clock.nowNs / 1e9).toFixed(6)} s, resets ${m.resets}`;
    } catch (e2) {
      dump = `(no state dump: ${(e2 as Error).message})`;
    }
    this.error = { reason: err.message, dump, stack: err.stack ?? err.message };
    return 'error';
  }

  /** Release every host resource (flush and close sinks, close disks). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    for (const s of this._opts.sinks ?? []) s.close();
    for (const c of this._opts.closers ?? []) c();
  }
}
