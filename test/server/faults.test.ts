/**
 * Faults stay inside one VM: a VM whose worker thread is terminated, throws,
 * or runs out of heap shows as crashed with the reason, while the daemon
 * answers and another running VM goes on; the on-crash policy restarts it.
 * The daemon runs in this process (so the test can reach a worker thread to
 * kill it) and is driven over real HTTP on loopback. No Linux boot: the VMs
 * are bare SeaBIOS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { FolderStore } from '../../src/server/store.js';
import { VmHost, type HostEvent } from '../../src/server/host.js';
import { createDaemonServer } from '../../src/server/server.js';
import { ApiClient } from '../helpers/daemon.js';

test('a crashed VM stops alone; the daemon and the other VMs go on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-faults-'));
  const log: string[] = [];
  const host = new VmHost(new FolderStore(dir), (l) => log.push(l));
  const events: HostEvent[] = [];
  const waiters: (() => void)[] = [];
  host.on('event', (e) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  const until = async (test: (e: HostEvent) => boolean, what: string, from: number, limitMs = 60_000): Promise<HostEvent> => {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const e = events.slice(from).find(test);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${limitMs / 1000} s; events: ${JSON.stringify(events)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 500);
      });
    }
  };
  const token = 'a'.repeat(64);
  const daemon = createDaemonServer({ host, token, log: () => {} });
  await new Promise<void>((r) => daemon.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(daemon.server.address() as AddressInfo).port}`;
  // every answer checked against the OpenAPI document
  const client = await new ApiClient(base, token).load();
  const api = async (method: string, path: string) => {
    const r = await client.api(method, path);
    return { status: r.status, json: r.json as Record<string, unknown> };
  };
  t.after(async () => {
    for (const n of host.runningNames()) await host.injectFault(n, 'terminate').catch(() => {});
    await daemon.close();
  });

  const spec = { version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  await host.create('victim', spec, { restart: 'on-crash' });
  await host.create('bystander', spec);
  await host.create('tiny-heap', spec, { heapLimitMb: 16 });
  host.start('victim');
  host.start('bystander');
  await until((e) => e.type === 'state' && e.vm === 'victim' && e.state === 'running', 'victim running', 0);
  await until((e) => e.type === 'state' && e.vm === 'bystander' && e.state === 'running', 'bystander running', 0);

  const guestTime = async () => ((await api('GET', '/api/vms/bystander/stats')).json.guestSeconds as number);

  await t.test('a terminated worker: crashed with the reason, restarted by the on-crash policy', async () => {
    const n = events.length;
    await host.injectFault('victim', 'terminate');
    const crashed = await until((e) => e.type === 'state' && e.vm === 'victim' && e.state === 'crashed', 'victim crashed', n);
    assert.match(String((crashed as { reason: string }).reason), /terminated/);
    const info = (await api('GET', '/api/vms/victim')).json;
    assert.ok(info.state === 'crashed' || info.state === 'starting' || info.state === 'running', `state ${String(info.state)}`);
    // the on-crash policy starts it again
    await until((e) => e.type === 'state' && e.vm === 'victim' && e.state === 'running', 'victim running again', n);
    assert.equal((await api('GET', '/api/vms/victim')).json.restarts, 1);
  });

  await t.test('a worker that throws: crashed with the exception as the reason', async () => {
    host.updateSettings('victim', { restart: 'never' });
    const n = events.length;
    await host.injectFault('victim', 'throw');
    const crashed = await until((e) => e.type === 'state' && e.vm === 'victim' && e.state === 'crashed', 'victim crashed', n);
    assert.match(String((crashed as { reason: string }).reason), /injected fault/);
    const info = (await api('GET', '/api/vms/victim')).json;
    assert.equal(info.state, 'crashed');
    assert.match(String(info.reason), /injected fault/);
  });

  await t.test('a worker past its heap limit: crashed, out of memory', async () => {
    const n = events.length;
    host.start('tiny-heap');
    const crashed = await until((e) => e.type === 'state' && e.vm === 'tiny-heap' && e.state === 'crashed', 'tiny-heap crashed', n);
    assert.match(String((crashed as { reason: string }).reason), /out of memory/);
  });

  await t.test('meanwhile the daemon answers and the bystander VM runs on', async () => {
    const b = (await api('GET', '/api/vms/bystander')).json;
    assert.equal(b.state, 'running');
    assert.equal(b.reason, null);
    const g0 = await guestTime();
    let g = g0;
    for (let i = 0; i < 100 && g <= g0; i++) g = await guestTime();
    assert.ok(g > g0, 'its guest time still advances');
    assert.equal((await api('GET', '/api/vms')).status, 200);
    assert.ok(log.some((l) => /VM 'victim' crashed: .*terminated/.test(l)), 'the crash is in the daemon log');
    assert.match(host.log('victim'), /state crashed \(.*injected fault\)/, "and in the VM's log");
  });
});
