/**
 * A stopped VM's snapshot operations run in a job thread (a raw disk's copy
 * can take minutes): meanwhile the daemon answers, and what would spoil the
 * operation (starting or deleting the VM, cloning it, another snapshot
 * operation) is refused with 409. As in clone-busy.test.ts, the daemon runs in
 * this process with VmHost.holdJobs set, so the save stops after its first
 * disk copied until the test lets it go. No guest runs: bare SeaBIOS with two
 * raw disks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FolderStore } from '../../src/server/store.js';
import { VmHost } from '../../src/server/host.js';
import { createDaemonServer } from '../../src/server/server.js';
import { ApiClient, EventLog, opened, progressOf } from '../helpers/daemon.js';

test("a stopped VM's snapshot save runs off the daemon's thread: the API answers, the VM refuses what would spoil it, then all of it works", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-snapbusy-'));
  const host = new VmHost(new FolderStore(dir));
  const token = 'c'.repeat(64);
  const daemon = createDaemonServer({ host, token, log: () => {} });
  await new Promise<void>((r) => daemon.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(daemon.server.address() as AddressInfo).port}`;
  const client = await new ApiClient(base, token).load(); // every answer checked against the OpenAPI document
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
    await daemon.close();
  });
  const events = new EventLog(client.socket('/api/events'));
  await opened(events.ws);
  t.after(() => events.ws.close());

  const tmp = mkdtempSync(join(tmpdir(), 'tsvm-snapbusy-disks-'));
  for (const n of ['a', 'b']) writeFileSync(join(tmp, `${n}.img`), new Uint8Array(4 << 20).fill(n.charCodeAt(0)));
  const drive = (n: string) => ({ file: join(tmp, `${n}.img`), format: 'raw', mode: 'rw' });
  const spec = { version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: { hda: drive('a'), hdb: drive('b') }, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  assert.equal((await api('POST', '/api/vms', { name: 'vm', machine: spec })).status, 201);
  host.holdJobs = hold;

  let answered = false;
  const saving = api('POST', '/api/vms/vm/snapshots', { name: 'one', description: 'two raw disks' }).then((r) => ((answered = true), r));
  const midway = await events.waitFor((e) => e.type === 'progress' && e.vm === 'vm' && (e.done as number) > 0, 30_000, "the save's first disk copied");
  assert.ok((midway.done as number) < (midway.total as number), `the job is held part of the way: ${JSON.stringify(midway)}`);
  assert.equal(midway.total, 8 << 20, 'the total is the two raw disks');

  const refused = async (method: string, path: string, body: unknown) => {
    const r = await api(method, path, body);
    assert.equal(r.status, 409, `${method} ${path} during the save: ${r.text}`);
    assert.match((r.json.error as { message: string }).message, /VM 'vm' has a snapshot operation under way; try again when it is done/, `${method} ${path}`);
  };
  await refused('POST', '/api/vms/vm/start', undefined);
  await refused('DELETE', '/api/vms/vm', undefined);
  await refused('POST', '/api/vms/vm/clone', { name: 'copy' });
  await refused('POST', '/api/vms/vm/snapshots', { name: 'other' });
  // the daemon answers meanwhile; the save's request is still open
  assert.equal((await api('GET', '/api/vms/vm')).json.state, 'stopped');
  assert.equal((await api('GET', '/api/vms')).status, 200);
  assert.equal(answered, false, 'the save request is still open');

  release();
  const saved = await saving;
  assert.equal(saved.status, 201, saved.text);
  assert.equal(saved.json.name, 'one');
  const steps = await progressOf(events, 'vm', 'snapshot save one');
  assert.deepEqual([steps[0].percent, steps[steps.length - 1].percent], [0, 100], JSON.stringify(steps));

  // then each refused request works: a second snapshot, a revert and a delete (each in the job thread), a start
  assert.equal((await api('POST', '/api/vms/vm/snapshots', { name: 'other' })).status, 201);
  assert.equal((await api('POST', '/api/vms/vm/snapshots/one/revert')).status, 200);
  assert.equal((await api('DELETE', '/api/vms/vm/snapshots/other')).status, 204);
  const tree = (await api('GET', '/api/vms/vm/snapshots')).json as { current: string; snapshots: { id: string; name: string }[] };
  assert.deepEqual(tree.snapshots.map((s) => s.name), ['one']);
  assert.equal(tree.current, tree.snapshots[0].id);
  const bad = await api('POST', '/api/vms/vm/snapshots/nosuch/revert');
  assert.equal(bad.status, 404, `an unknown snapshot, through the job: ${bad.text}`);
  assert.equal((await api('POST', '/api/vms/vm/start')).status, 200);
  await host.injectFault('vm', 'terminate').catch(() => {});
});
