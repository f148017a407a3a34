/**
 * `-rtc base=utc|localtime|DATE`, as QEMU spells it: where the guest's real-time
 * clock starts. The board never reads the host clock (a machine must replay the
 * same way); the host's time is taken here, once, at power-on, and from then on
 * the RTC advances with guest time (QEMU's `clock=vm`).
 */
import { UsageError } from './options.js';

/** Earliest and latest start the MC146818 with its century byte can hold: 1970-01-01 to 2099-12-31. */
const MIN_EPOCH = 0;
const MAX_EPOCH = Date.UTC(2100, 0, 1) / 1000 - 1;

const HELP = "use base=utc (the host's time, the default), base=localtime, or a date such as base=2024-05-01 or base=2024-05-01T12:30:00";

/**
 * The RTC's power-on time, in seconds since 1970 as the guest will read it, for an
 * `-rtc` value (undefined: the default, the host's current UTC time). `nowMs` and
 * `tzOffsetMin` (minutes east of UTC) are the host's, passed in so tests can fix them.
 */
export function rtcStartSeconds(spec: string | undefined, nowMs: number, tzOffsetMin: number): number {
  let base = 'utc';
  for (const part of (spec ?? '').split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'base') base = value;
    else if (key === 'clock') {
      if (value !== 'vm') throw new UsageError(`run: -rtc clock=${value} is not supported: tsvm's RTC always follows guest time (clock=vm), so runs replay the same way`);
    } else if (key === 'driftfix') {
      if (value !== 'none') throw new UsageError(`run: -rtc driftfix=${value} is not supported; tsvm delivers every RTC interrupt in guest time (driftfix=none)`);
    } else throw new UsageError(`run: -rtc '${part}' is not an RTC setting; ${HELP}`);
  }
  let sec: number;
  if (base === 'utc') sec = Math.floor(nowMs / 1000);
  else if (base === 'localtime') sec = Math.floor(nowMs / 1000) + tzOffsetMin * 60;
  else {
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/.exec(base);
    if (!m) throw new UsageError(`run: -rtc base='${base}' is not utc, localtime or a date; ${HELP}`);
    const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
    const ms = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(ms);
    if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
      throw new UsageError(`run: -rtc base='${base}' is not a real date and time`);
    }
    sec = ms / 1000;
  }
  if (sec < MIN_EPOCH || sec > MAX_EPOCH) throw new UsageError(`run: -rtc base='${base}' is outside what the PC's RTC holds (1970 to 2099)`);
  return sec;
}
