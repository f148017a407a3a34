/**
 * The daemon's API over real HTTP and WebSockets on loopback, against a
 * `tsvm serve` the test starts: the token, hostile requests refused with
 * nothing changed, a VM's life (bare SeaBIOS: no Linux boot here), and
 * autostart when a daemon starts again on the directory.
 * Every response is checked against the daemon's OpenAPI document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Daemon, EventLog, opened, progressOf } from '../helpers/daemon.js';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

test('the daemon: token, refusals, a VM from create to delete, the event stream', async (t) => {
  const d = await new Daemon(['--max-upload-mib', '2']).ready();
  t.after(() => d.child.kill());

  await t.test('the token is created with mode 0600 and printed with the URL', () => {
    const st = statSync(join(d.dir, 'daemon.token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  await t.test('no token or a wrong token: 401, for requests and WebSockets, each refusal logged', async () => {
    // each refusal is a line of the daemon's log, naming the client, the status and why: a missing token and a wrong one told apart
    const logged = (from: number, re: RegExp, what: string) => d.child.waitFor(re, from, 5000, `${what} in the daemon's log`);
    let from = d.child.out.length;
    const none = await d.api('GET', '/api/vms', undefined, { token: null });
    assert.equal(none.status, 401);
    assert.equal((none.json as { error: { code: string } }).error.code, 'unauthorised');
    await logged(from, /refused GET \/api\/vms from 127\.0\.0\.1: 401 unauthorised: this request needs the daemon's token/, 'the refusal of a request without the token');
    from = d.child.out.length;
    const wrong = await d.api('GET', '/api/vms', undefined, { token: 'f'.repeat(64) });
    assert.equal(wrong.status, 401);
    assert.match((wrong.json as { error: { message: string } }).error.message, /not this daemon's token/);
    await logged(from, /refused GET \/api\/vms from 127\.0\.0\.1: 401 unauthorised: the token given is not this daemon's token/, 'the refusal of a request with a wrong token');
    from = d.child.out.length;
    const page = await fetch(d.url + '/');
    assert.equal(page.status, 401);
    await logged(from, /refused GET \/ from 127\.0\.0\.1: 401 unauthorised/, 'the refusal of the page');
    const refusedSocket = async (token: string | null) => {
      const ws = d.socket('/api/events', token);
      const r = await new Promise<{ status: number; body: string }>((res, rej) => {
        ws.on('unexpected-response', (_req, resp) => {
          let body = '';
          resp.on('data', (b: Buffer) => (body += b.toString()));
          resp.on('end', () => res({ status: resp.statusCode ?? 0, body }));
        });
        ws.on('open', () => rej(new Error(`a WebSocket with ${token === null ? 'no token' : 'a wrong token'} was let in`)));
      });
      assert.equal(r.status, 401);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'unauthorised');
    };
    from = d.child.out.length;
    await refusedSocket(null);
    await logged(from, /refused WebSocket \/api\/events from 127\.0\.0\.1: 401 unauthorised: this WebSocket needs the daemon's token/, 'the refusal of a WebSocket without the token');
    from = d.child.out.length;
    await refusedSocket('0'.repeat(64));
    await logged(from, /refused WebSocket \/api\/events from 127\.0\.0\.1: 401 unauthorised: the token given is not this daemon's token/, 'the refusal of a WebSocket with a wrong token');
    // nothing of a refused WebSocket was opened
    assert.doesNotMatch(d.child.out.slice(from), /WebSocket events opened/);
  });

  await t.test('hostile requests are refused with a JSON 4xx, change nothing and are logged', async () => {
    const before = readdirSync(d.dir).sort();
    const cases: [string, string, unknown, Record<string, string> | undefined, string | undefined, number][] = [
      ['POST', '/api/vms', { name: '../escape', guest: 'firmware' }, undefined, undefined, 400],
      ['POST', '/api/vms', { name: 'a/b', guest: 'firmware' }, undefined, undefined, 400],
      ['POST', '/api/vms/..%2f..%2fetc/start', undefined, undefined, undefined, 400],
      ['GET', '/api/vms/%2e%2e', undefined, undefined, undefined, 400],
      ['DELETE', '/api/vms/..', undefined, undefined, undefined, 400],
      ['POST', '/api/vms', undefined, { 'content-type': 'application/json' }, '{"name": "x",', 400],
      ['POST', '/api/vms', undefined, { 'content-type': 'text/plain' }, '{"name":"x"}', 415],
      ['POST', '/api/vms', undefined, { 'content-type': 'application/json' }, JSON.stringify({ name: 'big', pad: 'x'.repeat(200_000) }), 413],
      ['POST', '/api/vms', { name: 'x', guest: 'floppy' }, undefined, undefined, 400],
      ['POST', '/api/vms', { name: 'x', memoryMiB: -5 }, undefined, undefined, 400],
      ['POST', '/api/vms', { name: 'x', machine: { version: 1, memoryBytes: 'lots' } }, undefined, undefined, 400],
      ['PUT', '/api/vms', { name: 'x' }, undefined, undefined, 405],
      ['GET', '/api/vms/nosuch/start', undefined, undefined, undefined, 405],
      ['POST', '/api/vms/nosuch/start', undefined, undefined, undefined, 404],
      ['GET', '/api/nothing', undefined, undefined, undefined, 404],
    ];
    for (const [method, path, body, headers, raw, status] of cases) {
      const r = await d.api(method, path, body, { headers, raw });
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
      const e = (r.json as { error: { message: string } }).error;
      assert.ok(e.message.length > 10, `${method} ${path} says what was wrong`);
      if (status === 405) assert.ok(r.headers.get('allow'), 'a 405 lists the methods the path takes');
    }
    assert.deepEqual(readdirSync(d.dir).sort(), before, 'nothing was created');
    assert.ok(!existsSync(join(d.dir, '..', 'escape.tsvm')));
    assert.equal(((await d.api('GET', '/api/vms')).json as { vms: unknown[] }).vms.length, 0);
    await d.child.waitFor(/refused POST \/api\/vms\/\.\.%2f\.\.%2fetc\/start .*400 bad-name/, 0, 5000, 'the refusal in the log');
    assert.match(d.child.stderr, /refused POST \/api\/vms .*413 too-large/);
  });

  await t.test('a VM: create, start, pause, resume, reset, stats, screenshot, stop, log, delete', async () => {
    const events = new EventLog(d.socket('/api/events'));
    await opened(events.ws);
    const c = await d.api('POST', '/api/vms', { name: 'fw', guest: 'firmware', memoryMiB: 32 });
    assert.equal(c.status, 201);
    assert.deepEqual((c.json as { state: string; memoryBytes: number }).state, 'stopped');
    assert.ok(existsSync(join(d.dir, 'fw.tsvm', 'vm.json')));
    // nothing to copy (SeaBIOS is built in), and still the create's progress ends: a page's bar goes away
    const made = await events.waitFor((e) => e.type === 'progress' && e.vm === 'fw' && e.operation === 'create', 10_000, "fw's create progress");
    assert.deepEqual([made.done, made.total, made.percent], [0, 0, 100]);
    const dup = await d.api('POST', '/api/vms', { name: 'fw', guest: 'firmware' });
    assert.equal(dup.status, 409);

    assert.equal((await d.api('POST', '/api/vms/fw/start')).status, 200);
    await events.waitFor((e) => e.vm === 'fw' && e.state === 'running', 60_000, 'fw running');
    assert.equal((await d.api('POST', '/api/vms/fw/start')).status, 409, 'a running VM cannot be started again');
    assert.equal((await d.api('DELETE', '/api/vms/fw')).status, 409, 'a running VM cannot be deleted');

    // the guest runs: its instruction count advances
    let s = (await d.sampledStats('fw')) as { guestSeconds: number; state: string; processRssBytes: number };
    assert.equal(s.state, 'running');
    assert.ok(s.processRssBytes > 0);
    const g0 = s.guestSeconds;
    await events.waitFor(() => false, 0, 'nothing').catch(() => {});
    for (let i = 0; i < 100 && s.guestSeconds <= g0; i++) s = (await d.sampledStats('fw')) as typeof s;
    assert.ok(s.guestSeconds > g0, 'guest time advances while running');

    const n = events.events.length;
    assert.equal((await d.api('POST', '/api/vms/fw/pause')).status, 200);
    await events.waitFor((e) => e.vm === 'fw' && e.state === 'paused', 30_000, 'fw paused', n);
    const p1 = ((await d.sampledStats('fw')) as typeof s).guestSeconds;
    const p2 = ((await d.sampledStats('fw')) as typeof s).guestSeconds;
    assert.equal(p2, p1, 'guest time stands still while paused');
    assert.equal((await d.api('POST', '/api/vms/fw/pause')).status, 409);
    assert.equal((await d.api('POST', '/api/vms/fw/resume')).status, 200);
    await events.waitFor((e) => e.vm === 'fw' && e.state === 'running', 30_000, 'fw running again', n + 1);
    assert.equal((await d.api('POST', '/api/vms/fw/reset')).status, 200);

    // the screen socket: SeaBIOS's banner on the text screen
    const screenWs = d.socket('/api/vms/fw/screen');
    const rows = new Map<number, string>();
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no SeaBIOS banner on the screen; rows: ${JSON.stringify([...rows.values()].filter((r) => r.trim()))}`)), 60_000);
      screenWs.on('message', (m) => {
        const u = JSON.parse(String(m)) as { type: string; mode: string; changed: { row: number; text: string }[] };
        for (const r of u.changed) rows.set(r.row, r.text);
        if ([...rows.values()].some((r) => /SeaBIOS/.test(r))) {
          clearTimeout(timer);
          res();
        }
      });
      screenWs.on('error', rej);
    });
    screenWs.close();

    const shot = await d.api('GET', '/api/vms/fw/screenshot');
    assert.equal(shot.status, 200);
    assert.deepEqual([...shot.bytes.subarray(0, 4)], PNG_MAGIC);

    // a snapshot of the running VM: its progress comes in bytes of RAM as the worker encodes it
    const live = await d.api('POST', '/api/vms/fw/snapshots', { name: 'live' });
    assert.equal(live.status, 201, live.text);
    const saving = await progressOf(events, 'fw', 'snapshot save live');
    assert.ok(saving.some((p) => p.done > 0 && p.done < p.total), `an intermediate progress event: ${JSON.stringify(saving)}`);
    assert.ok(saving.every((p) => p.total === 32 * 1048576), `the total is the guest RAM (no raw disks): ${JSON.stringify(saving)}`);
    assert.equal((await d.api('DELETE', '/api/vms/fw/snapshots/live')).status, 204);

    const m = events.events.length;
    assert.equal((await d.api('POST', '/api/vms/fw/stop')).status, 200);
    const stopped = await events.waitFor((e) => e.vm === 'fw' && e.state === 'stopped', 30_000, 'fw stopped', m);
    assert.equal(stopped.reason, 'quit');
    assert.equal(((await d.api('GET', '/api/vms/fw')).json as { state: string }).state, 'stopped');
    assert.equal((await d.api('POST', '/api/vms/fw/stop')).status, 409);
    assert.equal((await d.api('GET', '/api/vms/fw/screenshot')).status, 409);

    const log = await d.api('GET', '/api/vms/fw/log');
    assert.match(log.text, /state running/);
    assert.match(log.text, /state stopped \(quit\)/);

    const patch = await d.api('PATCH', '/api/vms/fw', { autostart: true, restart: 'on-crash' });
    assert.deepEqual([(patch.json as { autostart: boolean }).autostart, (patch.json as { restart: string }).restart], [true, 'on-crash']);
    assert.equal((await d.api('PATCH', '/api/vms/fw', { restart: 'always' })).status, 400);

    // snapshots of a stopped VM, and a clone
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots', { name: 'a' })).status, 201);
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots', { name: 'b', description: 'second' })).status, 201);
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots', { name: 'a' })).status, 400, 'a snapshot name is used once');
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots', { name: 'no/slash' })).status, 400);
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots/a/revert')).status, 200);
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots', { name: 'c' })).status, 201);
    let tree = (await d.api('GET', '/api/vms/fw/snapshots')).json as { current: string; snapshots: { id: string; name: string; parent: string | null }[] };
    const byName = Object.fromEntries(tree.snapshots.map((n) => [n.name, n]));
    assert.equal(byName.b.parent, byName.a.id);
    assert.equal(byName.c.parent, byName.a.id, 'c branches from a after the revert: a tree, not a list');
    assert.equal(tree.current, byName.c.id);
    assert.equal((await d.api('DELETE', '/api/vms/fw/snapshots/b')).status, 204);
    assert.equal((await d.api('DELETE', '/api/vms/fw/snapshots/b')).status, 404);
    assert.equal((await d.api('POST', '/api/vms/fw/snapshots/nosuch/revert')).status, 404);
    tree = (await d.api('GET', '/api/vms/fw/snapshots')).json as typeof tree;
    assert.deepEqual(tree.snapshots.map((n) => n.name).sort(), ['a', 'c']);
    const clone = await d.api('POST', '/api/vms/fw/clone', { name: 'fw2' });
    assert.equal(clone.status, 201, clone.text);
    assert.ok(existsSync(join(d.dir, 'fw2.tsvm', 'vm.json')));
    assert.equal(((await d.api('GET', '/api/vms/fw2/snapshots')).json as { snapshots: unknown[] }).snapshots.length, 2, 'a full clone takes the snapshots along');
    // the clone's progress: bytes copied of the source folder's bytes, from 0 % to 100 %, never backwards
    const prog = events.events.filter((e) => e.type === 'progress' && e.vm === 'fw2') as { operation: string; done: number; total: number; percent: number }[];
    assert.ok(prog.length >= 2, JSON.stringify(prog));
    assert.ok(prog.every((p) => p.operation === 'clone of fw'));
    assert.deepEqual([prog[0].done, prog[0].percent], [0, 0]);
    const last = prog[prog.length - 1];
    assert.ok(last.total > 0 && last.done === last.total && last.percent === 100, JSON.stringify(last));
    for (let i = 1; i < prog.length; i++) assert.ok(prog[i].done >= prog[i - 1].done && prog[i].percent === Math.floor((prog[i].done * 100) / prog[i].total));
    assert.ok(events.events.findIndex((e) => e.type === 'created' && e.vm === 'fw2') > events.events.indexOf(last as unknown as Record<string, unknown>), 'created comes after the last progress');
    assert.equal((await d.api('POST', '/api/vms/fw/clone', { name: 'fw2' })).status, 409);
    assert.equal((await d.api('POST', '/api/vms/fw/clone', { name: '../x' })).status, 400);
    assert.equal((await d.api('DELETE', '/api/vms/fw2')).status, 204);

    assert.equal((await d.api('DELETE', '/api/vms/fw')).status, 204);
    assert.ok(!existsSync(join(d.dir, 'fw.tsvm')));
    assert.equal((await d.api('GET', '/api/vms/fw')).status, 404);
    await events.waitFor((e) => e.type === 'deleted' && e.vm === 'fw', 5000, 'the deleted event');
    events.ws.close();
  });

  await t.test('a VM from an uploaded ISO: streamed, checked, kept in the folder; refusals change nothing', async () => {
    const events = new EventLog(d.socket('/api/events'));
    await opened(events.ws);
    // an ISO 9660 image as far as its volume descriptor goes: type 1, "CD001" at sector 16
    const iso = new Uint8Array(1 << 20);
    iso.set([1, 0x43, 0x44, 0x30, 0x30, 0x31, 1], 0x8000);
    iso[0x9000] = 0x5a;
    const upload = (name: string, body: Uint8Array, headers: Record<string, string> = {}, query = '') =>
      d.api('POST', `/api/vms/${name}/iso${query}`, undefined, { raw: body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers } });
    const ok = await upload('disc', iso, {}, '?memoryMiB=64&diskMiB=16');
    assert.equal(ok.status, 201, ok.text);
    assert.equal((ok.json as { memoryBytes: number }).memoryBytes, 64 * 1048576);
    const cfg = JSON.parse(readFileSync(join(d.dir, 'disc.tsvm', 'vm.json'), 'utf8')) as { spec: { boot: string; drives: Record<string, { file: string; format: string }> } };
    const cd = cfg.spec.drives.cdrom;
    assert.ok(cd && !cd.file.startsWith('/'), `the ISO lives in the folder: ${JSON.stringify(cfg.spec.drives)}`);
    assert.deepEqual(readFileSync(join(d.dir, 'disc.tsvm', cd.file)), Buffer.from(iso), 'the stored image is the uploaded one');
    assert.ok(cfg.spec.drives.hda, 'an empty disk to install to');
    assert.equal(cfg.spec.boot, 'dc');
    assert.deepEqual(readdirSync(join(d.dir, '.uploads')), [], 'the staged upload is gone');
    const up = events.events.filter((e) => e.type === 'progress' && e.vm === 'disc' && e.operation === 'upload');
    assert.ok(up.length >= 1 && up[up.length - 1].percent === 100, `upload progress to 100 %: ${JSON.stringify(up.slice(-2))}`);
    assert.ok(events.events.some((e) => e.type === 'progress' && e.vm === 'disc' && e.operation === 'create' && e.percent === 100));

    const before = readdirSync(d.dir).sort();
    const refused = async (r: Promise<{ status: number; json: unknown }>, status: number, msg: RegExp) => {
      const x = await r;
      assert.equal(x.status, status);
      assert.match((x.json as { error: { message: string } }).error.message, msg);
    };
    await refused(upload('plain', new Uint8Array(1 << 20)), 400, /not an ISO 9660 image/);
    await refused(upload('big', new Uint8Array(1024), { 'content-length': String(3 << 20) }), 413, /accepts uploads up to 2097152 bytes/);
    await refused(upload('text', iso, { 'content-type': 'text/plain' }), 415, /application\/octet-stream/);
    await refused(d.api('POST', '/api/vms/chunked/iso', undefined, { raw: iso, headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }), 411, /Content-Length/);
    await refused(upload('disc', iso), 409, /already exists/);
    await refused(upload('small', iso, {}, '?memoryMiB=5'), 400, /memoryMiB must be/);
    await refused(upload('..', iso), 400, /not a VM name/);
    assert.deepEqual(readdirSync(d.dir).sort(), before, 'nothing was created');
    assert.deepEqual(readdirSync(join(d.dir, '.uploads')), [], 'no upload was left behind');
    assert.equal((await d.api('DELETE', '/api/vms/disc')).status, 204);
    events.ws.close();
  });

  await t.test('an upload refused before its body (no token, over the limit) is answered at once and its connection closed', async () => {
    // a client streaming a 1 GiB body as fast as the daemon takes it, reading what comes back
    const stream = (path: string, auth: string) =>
      new Promise<{ answer: string; sent: number }>((resolve) => {
        const total = 1 << 30;
        const u = new URL(d.url);
        const s = connect(Number(u.port), u.hostname);
        const chunk = Buffer.alloc(1 << 20);
        let answer = '';
        let sent = 0;
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          s.destroy();
          resolve({ answer, sent });
        };
        s.on('data', (b: Buffer) => {
          answer += b.toString('latin1');
          // a daemon that kept the connection would wait for the next request: the whole body sent and answered ends it too
          if (sent >= total && /\r\n\r\n\{.*\}$/s.test(answer)) finish();
        });
        s.on('error', finish);
        s.on('close', finish);
        s.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`);
        const pump = () => {
          while (!done && sent < total) {
            sent += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
        };
        pump();
      });
    for (const [auth, status] of [['', 401], [`Authorization: Bearer ${d.token}\r\n`, 413]] as const) {
      const { answer, sent } = await stream('/api/vms/huge/iso', auth);
      assert.match(answer, new RegExp(`^HTTP/1.1 ${status} `), answer.slice(0, 200));
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.ok(sent < 64 << 20, `the daemon took ${sent >> 20} MiB of the refused 1 GiB body before closing`);
    }
    assert.ok(!existsSync(join(d.dir, 'huge.tsvm')));
    assert.deepEqual(readdirSync(join(d.dir, '.uploads')), [], 'no upload was left behind');
  });

  await t.test('the OpenAPI document is served and every response above fitted it', async () => {
    const r = await d.api('GET', '/api/openapi.json');
    assert.equal((r.json as { openapi: string }).openapi, '3.1.0');
    assert.ok(d.checked > 40, `${d.checked} responses checked`);
  });

  await t.test('SIGTERM ends the daemon cleanly', async () => {
    assert.equal((await d.api('POST', '/api/vms', { name: 'auto', guest: 'firmware', memoryMiB: 16, autostart: true })).status, 201);
    assert.equal((await d.api('POST', '/api/vms', { name: 'manual', guest: 'firmware', memoryMiB: 16 })).status, 201);
    assert.equal(await d.stop(), 0);
    assert.ok(!existsSync(join(d.dir, 'daemon.json')), 'daemon.json is removed at exit');
  });

  await t.test('the next daemon on the directory starts the autostart VM, and only that one', async () => {
    const again = await new Daemon(['--shutdown-wait', '1'], d.dir).ready();
    t.after(() => again.child.kill());
    const state = async (vm: string) => ((await again.api('GET', `/api/vms/${vm}`)).json as { state: string }).state;
    for (let i = 0; i < 300 && (await state('auto')) !== 'running'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await state('auto'), 'running', 'autostart VM running');
    assert.equal(await state('manual'), 'stopped');
    assert.match((await again.api('GET', '/api/vms/auto/log')).text, /state running/);
    assert.equal(await again.stop(), 0);
  });
});
