// tsvm start --force-boot through a running daemon: the CLI hands the start
// to the daemon (POST /api/vms/NAME/start {"forceBoot": true}), which
// discards the VM's suspended state and boots it afresh; a malformed request
// changes nothing. The suspended state here is one that cannot be resumed
// (bytes that are no snapshot), as a user meets after a damaged save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { TsvmChild } from '../helpers/child.js';

test('tsvm start --force-boot with a daemon running: the suspended state is discarded and the VM boots', { timeout: 300_000 }, async (t) => {
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  t.after(() => events.ws.close());
  assert.equal((await d.api('POST', '/api/vms', { name: 'fw', guest: 'firmware', memoryMiB: 32 })).status, 201);
  const sus = join(d.dir, 'fw.tsvm', 'suspended.snap');
  writeFileSync(sus, 'not a snapshot\n');
  const info = (await d.api('GET', '/api/vms/fw')).json as { suspended: boolean; state: string };
  assert.equal(info.suspended, true, 'the daemon sees the suspended state');

  // refused, and nothing changes
  const bad = await d.api('POST', '/api/vms/fw/start', { forceBoot: 'yes' });
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.text, /forceBoot must be true or false/);
  const unknown = await d.api('POST', '/api/vms/fw/start', { force: true });
  assert.equal(unknown.status, 400, unknown.text);
  assert.match(unknown.text, /unknown field 'force'/);
  assert.ok(existsSync(sus), 'a refused start keeps the suspended state');
  assert.equal(((await d.api('GET', '/api/vms/fw')).json as { state: string }).state, 'stopped');

  const start = new TsvmChild(['start', 'fw', '--force-boot', '--dir', d.dir]);
  assert.equal(await start.exit(), 0, start.tail());
  await events.waitFor((e) => e.vm === 'fw' && e.state === 'running', 60_000, 'fw running');
  assert.ok(!existsSync(sus), 'the suspended state is gone');
  assert.equal(((await d.api('GET', '/api/vms/fw')).json as { suspended: boolean }).suspended, false);
  assert.match(readFileSync(join(d.dir, 'fw.tsvm', 'vm.log'), 'utf8'), /suspended state discarded \(force boot\)/);
  // and it runs: guest time advances
  let s = (await d.sampledStats('fw')) as { guestSeconds: number };
  const g0 = s.guestSeconds;
  for (let i = 0; i < 100 && s.guestSeconds <= g0; i++) s = (await d.sampledStats('fw')) as typeof s;
  assert.ok(s.guestSeconds > g0, 'guest time advances');

  // tsvm stop returns once the VM has stopped: the API says so right after
  const stop = new TsvmChild(['stop', 'fw', '--dir', d.dir]);
  assert.equal(await stop.exit(), 0, stop.tail());
  assert.equal(stop.out, 'fw: stopped\n');
  const after = (await d.api('GET', '/api/vms/fw')).json as { state: string; reason: string | null; pid: number | null };
  assert.deepEqual([after.state, after.reason, after.pid], ['stopped', 'quit', null], `the VM after tsvm stop: ${JSON.stringify(after)}`);
  assert.equal(await d.stop(), 0);
});
