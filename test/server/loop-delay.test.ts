/**
 * The daemon's event-loop delay in GET /api/daemon, as an operator reads
 * it: a stall of the daemon's loop shows as that much delay, in the figures
 * since the start and in the window that held it. The daemon runs in this
 * process, so the test can stall its loop (a busy wait of 400 ms, as a long
 * synchronous task in the daemon would); every answer is checked against
 * the OpenAPI document. No VM runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FolderStore } from '../../src/server/store.js';
import { VmHost } from '../../src/server/host.js';
import { createDaemonServer } from '../../src/server/server.js';
import { LOOP_DELAY_WINDOW_MS } from '../../src/server/loop-delay.js';
import { ApiClient } from '../helpers/daemon.js';

interface Figures {
  samples: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
  seconds: number;
}
interface DaemonInfo {
  pid: number;
  eventLoopDelay: { resolutionMs: number; window: Figures & { endedAt: string | null }; sinceStart: Figures };
}

test("GET /api/daemon: the daemon's event-loop delay; a stall of its loop shows in it", async (t) => {
  const host = new VmHost(new FolderStore(mkdtempSync(join(tmpdir(), 'tsvm-loopdelay-'))));
  const token = 'c'.repeat(64);
  const daemon = createDaemonServer({ host, token, log: () => {} });
  t.after(() => daemon.close());
  await new Promise<void>((r) => daemon.server.listen(0, '127.0.0.1', r));
  const client = await new ApiClient(`http://127.0.0.1:${(daemon.server.address() as AddressInfo).port}`, token).load();
  const info = async () => {
    const r = await client.api('GET', '/api/daemon');
    assert.equal(r.status, 200);
    return r.json as DaemonInfo;
  };

  const first = await info();
  assert.equal(first.pid, process.pid);
  assert.equal(first.eventLoopDelay.resolutionMs, 10);
  assert.deepEqual([first.eventLoopDelay.window.endedAt, first.eventLoopDelay.window.samples, first.eventLoopDelay.window.maxMs], [null, 0, null], 'no window has ended yet: no figures, rather than zeros');

  // the daemon's loop stalls for 400 ms, as under a long synchronous task
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  while (Date.now() - t0 < 400);
  await new Promise((r) => setTimeout(r, 100));
  const after = (await info()).eventLoopDelay.sinceStart;
  assert.ok(after.samples > 0, `the loop's timer was measured: ${JSON.stringify(after)}`);
  // the stall, less the 10 ms the timer waits anyway and a rounding: the loop was at least this late
  assert.ok((after.maxMs as number) >= 380, `the stall shows as the worst delay since the start: ${JSON.stringify(after)}`);
  assert.ok((after.p50Ms as number) <= (after.p99Ms as number) && (after.p99Ms as number) <= (after.maxMs as number), JSON.stringify(after));

  // the first window ends and holds the stall too
  let w = (await info()).eventLoopDelay.window;
  for (let i = 0; i < 100 && w.endedAt === null; i++) {
    await new Promise((r) => setTimeout(r, LOOP_DELAY_WINDOW_MS / 20));
    w = (await info()).eventLoopDelay.window;
  }
  assert.ok(w.endedAt !== null, `a window ended: ${JSON.stringify(w)}`);
  assert.ok(w.samples > 0 && w.seconds > 0, JSON.stringify(w));
  assert.ok((w.maxMs as number) >= 380, `the window that held the stall shows it: ${JSON.stringify(w)}`);
});
