/**
 * The daemon's event-loop delay: how late its loop gets to run what is
 * due, which is how late it gets to an API request, a console byte or a
 * VM's message. Measured with perf_hooks.monitorEventLoopDelay: a timer
 * every LOOP_DELAY_RESOLUTION_MS in libuv, each firing recording the time
 * since the last one. The figures here are that time less the resolution,
 * so 0 is a loop that ran each timer on time, and 250 a loop that was busy
 * (or not scheduled) for a quarter of a second past its due time. Shown in
 * GET /api/daemon, over the last window of LOOP_DELAY_WINDOW_MS and since
 * the daemon started.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export const LOOP_DELAY_RESOLUTION_MS = 10;
/** The recent window: its figures are replaced by the next window's as each one ends. */
export const LOOP_DELAY_WINDOW_MS = 5000;

/** A distribution of delays (ms), or nulls while it has no sample. */
export interface DelayFigures {
  /** Timer firings measured. */
  samples: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
}

export interface LoopDelay {
  resolutionMs: number;
  /** The last whole window (LOOP_DELAY_WINDOW_MS, or longer when the loop was late to end it); nulls before the first has ended. */
  window: DelayFigures & { seconds: number; endedAt: string | null };
  /** Since the daemon started. */
  sinceStart: DelayFigures & { seconds: number };
}

const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - LOOP_DELAY_RESOLUTION_MS) * 10) / 10);

function figures(h: IntervalHistogram): DelayFigures {
  if (h.count === 0) return { samples: 0, p50Ms: null, p99Ms: null, maxMs: null, meanMs: null };
  return { samples: h.count, p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max), meanMs: ms(h.mean) };
}

export class LoopDelayMonitor {
  private readonly _total = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  private readonly _window = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  private readonly _started = Date.now();
  private _windowStart = Date.now();
  private _last: LoopDelay['window'] = { samples: 0, p50Ms: null, p99Ms: null, maxMs: null, meanMs: null, seconds: 0, endedAt: null };
  private readonly _timer: NodeJS.Timeout;

  constructor() {
    this._total.enable();
    this._window.enable();
    this._timer = setInterval(() => this._rotate(), LOOP_DELAY_WINDOW_MS);
    this._timer.unref();
  }

  private _rotate(): void {
    const now = Date.now();
    this._last = { ...figures(this._window), seconds: Math.round((now - this._windowStart) / 100) / 10, endedAt: new Date(now).toISOString() };
    this._window.reset();
    this._windowStart = now;
  }

  figures(): LoopDelay {
    return { resolutionMs: LOOP_DELAY_RESOLUTION_MS, window: this._last, sinceStart: { ...figures(this._total), seconds: Math.round((Date.now() - this._started) / 100) / 10 } };
  }

  stop(): void {
    clearInterval(this._timer);
    this._total.disable();
    this._window.disable();
  }
}
