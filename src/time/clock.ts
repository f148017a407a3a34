/**
 * Virtual time. The machine has one clock, in nanoseconds of guest time, that
 * the board advances as the CPU executes (a fixed number of nanoseconds per
 * instruction) or, in real-time mode, from the host clock sampled only at slice
 * boundaries. Devices read it and arm timers on it; they never read wall time,
 * so a machine can be paused, snapshotted, migrated and replayed.
 */

/** Firings in a row of timers that re-armed themselves without moving on, before Clock.runDue gives up. */
export const STUCK_FIRINGS = 10000;

/** A device's timer that keeps guest time from moving on (Clock.runDue). */
export class ClockError extends Error {
  override name = 'ClockError';
}

/** A callback run when a timer's deadline passes. */
export type TimerCallback = (nowNs: number) => void;

/** One timer owned by a device. Its deadline is device state: save it and re-arm after load. */
export class Timer {
  /** Deadline in guest ns, or -1 when disarmed. */
  deadlineNs = -1;
  constructor(
    readonly name: string,
    readonly callback: TimerCallback,
  ) {}
}

export class Clock {
  private _baseNs = 0;
  private _baseCount = 0;
  private _counter: () => number = () => 0;
  private _nsPerCount = 0;
  /** Called when a timer is armed earlier than `horizonNs` (the board ends its slice early). */
  onEarlierDeadline: () => void = () => {};
  /** The end of the time the board is currently running up to (Infinity when idle). */
  horizonNs = Infinity;
  private readonly _timers: Timer[] = [];

  /**
   * Guest time in ns (float64: exact to the ns for 104 days). Between slice
   * boundaries it advances with the execution counter the board attached, so a
   * device reading it mid-slice sees time move instruction by instruction.
   */
  get nowNs(): number {
    return this._baseNs + (this._counter() - this._baseCount) * this._nsPerCount;
  }

  /** Let time advance with `counter` (e.g. instructions executed), `nsPerCount` ns per step. */
  attachCounter(counter: () => number, nsPerCount: number): void {
    this._baseNs = this.nowNs;
    this._counter = counter;
    this._nsPerCount = nsPerCount;
    this._baseCount = counter();
  }

  /** Create a timer (disarmed). Devices create theirs once, at construction. */
  timer(name: string, cb: TimerCallback): Timer {
    const t = new Timer(name, cb);
    this._timers.push(t);
    return t;
  }

  arm(t: Timer, deadlineNs: number): void {
    t.deadlineNs = deadlineNs;
    if (deadlineNs < this.horizonNs) this.onEarlierDeadline();
  }

  disarm(t: Timer): void {
    t.deadlineNs = -1;
  }

  /** The earliest armed deadline, or Infinity. */
  nextDeadline(): number {
    let d = Infinity;
    for (const t of this._timers) if (t.deadlineNs >= 0 && t.deadlineNs < d) d = t.deadlineNs;
    return d;
  }

  /** Advance to `ns` (never backwards; idle time) and run every timer whose deadline has passed. */
  advanceTo(ns: number): void {
    const now = this.nowNs;
    if (ns > now) {
      this._baseNs = ns;
      this._baseCount = this._counter();
    }
    this.runDue();
  }

  /**
   * Run every timer whose deadline has passed, in deadline order. Time does
   * not move in here, so a callback that re-arms its timer at or before the
   * deadline it fired for would fire again for ever, the host thread spinning
   * and the guest frozen: after STUCK_FIRINGS such firings in a row this
   * throws ClockError naming the timer (the VM stops with that error).
   */
  runDue(): void {
    let stuck = 0;
    for (;;) {
      const now = this.nowNs;
      let due: Timer | null = null;
      for (const t of this._timers) {
        if (t.deadlineNs >= 0 && t.deadlineNs <= now && (due === null || t.deadlineNs < due.deadlineNs)) due = t;
      }
      if (due === null) return;
      const at = due.deadlineNs;
      due.deadlineNs = -1;
      due.callback(now);
      if (due.deadlineNs < 0 || due.deadlineNs > at) stuck = 0;
      else if (++stuck >= STUCK_FIRINGS) {
        throw new ClockError(`clock: timer ${due.name} fired at ${at} ns and re-armed itself for ${due.deadlineNs} ns, ${stuck} times in a row: guest time cannot move on (a device model bug)`);
      }
    }
  }

  saveState(): { nowNs: number } {
    return { nowNs: this.nowNs };
  }

  loadState(s: { nowNs: number }): void {
    this._baseNs = s.nowNs;
    this._baseCount = this._counter();
  }
}
