/**
 * Virtual time. The machine has one clock, in nanoseconds of guest time, that
 * the board advances as the CPU executes (a fixed number of nanoseconds per
 * instruction) or, in real-time mode, from the host clock sampled only at slice
 * boundaries. Devices read it and arm timers on it; they never read wall time,
 * so a machine can be paused, snapshotted, migrated and replayed.
 */

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
  /** Guest time in ns (float64: exact to the ns for 104 days). */
  nowNs = 0;
  private readonly _timers: Timer[] = [];

  /** Create a timer (disarmed). Devices create theirs once, at construction. */
  timer(name: string, cb: TimerCallback): Timer {
    const t = new Timer(name, cb);
    this._timers.push(t);
    return t;
  }

  arm(t: Timer, deadlineNs: number): void {
    t.deadlineNs = deadlineNs;
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

  /** Advance to `ns` (never backwards) and run every timer whose deadline has passed, in deadline order. */
  advanceTo(ns: number): void {
    if (ns > this.nowNs) this.nowNs = ns;
    for (;;) {
      let due: Timer | null = null;
      for (const t of this._timers) {
        if (t.deadlineNs >= 0 && t.deadlineNs <= this.nowNs && (due === null || t.deadlineNs < due.deadlineNs)) due = t;
      }
      if (due === null) return;
      due.deadlineNs = -1;
      due.callback(this.nowNs);
    }
  }

  saveState(): { nowNs: number } {
    return { nowNs: this.nowNs };
  }

  loadState(s: { nowNs: number }): void {
    this.nowNs = s.nowNs;
  }
}
