/**
 * While a clone is under way, what would spoil it is refused with 409:
 * deleting, starting or snapshotting the source, a linked clone of it,
 * deleting, starting or changing the clone, or taking its name. The test
 * makes "under way" certain rather than likely: the daemon runs in this
 * process with VmHost.holdJobs set, so the clone's job stops after its first
 * file copied (and reported) until the test lets it go; every refusal is
 * checked before that. Then the clone finishes and each refused request
 * works. No Linux boot: the source is bare SeaBIOS with a qcow2 disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FolderStore } from '../../src/server/store.js';
import { VmHost } from '../../src/server/host.js';
import { createDaemonServer } from '../../src/server/server.js';
import { ApiClient, EventLog, opened, progressOf } from '../helpers/daemon.js';

test('while a clone is under way, the source and the clone refuse what would spoil it (409); afterwards all of it works', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-clonebusy-'));
  const host = new VmHost(new FolderStore(dir));
  const token = 'b'.repeat(64);
  const daemon = createDaemonServer({ host, token, log: () => {} });
  await new Promise<void>((r) => daemon.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(daemon.server.address() as AddressInfo).port}`;
  // every answer checked against the OpenAPI document, as for a daemon child
  const client = await new ApiClient(base, token).load();
  const api = async (method: string, path: string, body?: unknown) => {
    const r = await client.api(method, path, body);
    return { status: r.status, text: r.text, json: (r.json ?? {}) as Record<string, unknown> };
  };
  const hold = new Int32Array(new SharedArrayBuffer(4));
  const release = () => {
    Atomics.store(hold, 0, 1);
    Atomics.notify(hold, 0);
  };
  t.after(async () => {
    release(); // a failed check must not leave the job waiting
    for (const n of host.runningNames()) await host.injectFault(n, 'terminate').catch(() => {});
    await daemon.close();
  });
  const events = new EventLog(client.socket('/api/events'));
  await opened(events.ws);
  t.after(() => events.ws.close());

  const spec = { version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  await host.create('src', spec, {}, { hda: 4 * 1048576 });
  host.holdJobs = hold;

  let answered = false;
  const cloning = api('POST', '/api/vms/src/clone', { name: 'dst' }).then((r) => ((answered = true), r));
  const midway = await events.waitFor((e) => e.type === 'progress' && e.vm === 'dst' && (e.done as number) > 0, 30_000, "the clone's first file copied");
  assert.ok((midway.done as number) < (midway.total as number), `the job is held part of the way: ${JSON.stringify(midway)}`);

  const refused = async (method: string, path: string, body: unknown, message: RegExp) => {
    const r = await api(method, path, body);
    assert.equal(r.status, 409, `${method} ${path} during the clone: ${r.text}`);
    assert.match((r.json.error as { message: string }).message, message, `${method} ${path}`);
  };
  await refused('DELETE', '/api/vms/src', undefined, /VM 'src' is being cloned; try again when the clone is done/);
  await refused('POST', '/api/vms/src/start', undefined, /being cloned/);
  await refused('POST', '/api/vms/src/snapshots', { name: 'during' }, /being cloned/);
  await refused('POST', '/api/vms/src/clone', { name: 'other', linked: true }, /being cloned/);
  await refused('DELETE', '/api/vms/dst', undefined, /VM 'dst' is being made \(created, or cloned to\); try again when that is done/);
  await refused('POST', '/api/vms/dst/start', undefined, /being made/);
  await refused('PATCH', '/api/vms/dst', { autostart: true }, /being made/);
  await refused('POST', '/api/vms/dst/clone', { name: 'dst3' }, /being made/);
  await refused('POST', '/api/vms', { name: 'dst', guest: 'firmware' }, /a VM named 'dst' already exists/);
  // the daemon answers meanwhile, and nothing of the clone is in place
  assert.equal((await api('GET', '/api/vms/src')).json.state, 'stopped');
  assert.deepEqual(((await api('GET', '/api/vms')).json.vms as { name: string }[]).map((v) => v.name), ['src']);
  assert.ok(!existsSync(join(dir, 'dst.tsvm')), 'the clone is not in place yet');
  assert.equal(answered, false, 'the clone request is still open');
  assert.ok(!events.events.some((e) => e.type === 'created' && e.vm === 'dst'));
  assert.ok(!events.events.some((e) => e.type === 'snapshots' && e.vm === 'src'), 'no snapshot was saved');

  release();
  host.holdJobs = null;
  const done = await cloning;
  assert.equal(done.status, 201, done.text);
  await events.waitFor((e) => e.type === 'created' && e.vm === 'dst', 30_000, 'dst created');
  const prog = await progressOf(events, 'dst', 'clone of src');
  assert.ok(prog.some((p) => p.done > 0 && p.done < p.total), JSON.stringify(prog));

  // what was refused works now
  assert.equal((await api('PATCH', '/api/vms/dst', { autostart: true })).status, 200);
  assert.equal((await api('POST', '/api/vms/src/snapshots', { name: 'after' })).status, 201);
  const n = events.events.length; // (the PATCH sent a state event, 'stopped', of its own)
  assert.equal((await api('POST', '/api/vms/dst/start')).status, 200);
  await events.waitFor((e) => e.type === 'state' && e.vm === 'dst' && e.state === 'running', 60_000, 'dst running', n);
  assert.equal((await api('POST', '/api/vms/dst/stop')).status, 200);
  await events.waitFor((e) => e.type === 'state' && e.vm === 'dst' && e.state === 'stopped', 60_000, 'dst stopped', n);
  for (const vm of ['dst', 'src']) {
    const gone = await api('DELETE', `/api/vms/${vm}`);
    assert.equal(gone.status, 204, gone.text);
  }
});
