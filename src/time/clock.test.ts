/** The guest clock: timers fire in deadline order, and a timer that keeps time from moving on stops the run with its name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clock, ClockError, STUCK_FIRINGS } from './clock.js';

test('timers fire in deadline order, each once, with the time they fired at', () => {
  const c = new Clock();
  const seen: string[] = [];
  const a = c.timer('a', (now) => seen.push(`a@${now}`));
  const b = c.timer('b', (now) => seen.push(`b@${now}`));
  c.arm(b, 200);
  c.arm(a, 100);
  c.advanceTo(150);
  assert.deepEqual(seen, ['a@150']);
  c.advanceTo(1000);
  assert.deepEqual(seen, ['a@150', 'b@1000']);
  assert.equal(c.nextDeadline(), Infinity);
});

test('a periodic timer catching up re-arms after its last deadline and is not stuck', () => {
  const c = new Clock();
  let n = 0;
  const t = c.timer('tick', () => {
    n++;
    c.arm(t, (n + 1) * 10);
  });
  c.arm(t, 10);
  c.advanceTo(STUCK_FIRINGS * 10 * 3);
  assert.equal(n, STUCK_FIRINGS * 3);
});

test('a timer that re-arms at the deadline it fired for throws ClockError naming it, instead of spinning', () => {
  const c = new Clock();
  const t = c.timer('lapic-timer', () => c.arm(t, 500));
  c.arm(t, 500);
  assert.throws(
    () => c.advanceTo(600),
    (e: unknown) => e instanceof ClockError && /lapic-timer/.test(e.message) && /cannot move on/.test(e.message),
  );
});
