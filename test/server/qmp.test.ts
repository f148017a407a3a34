/**
 * QMP: the same client code drives QEMU (`qemu-system-i386 -qmp unix:...`),
 * a VM in the tsvm daemon (its folder's qmp.sock) and `tsvm run -qmp` (over
 * a Unix socket and over TCP), and the replies and events must have the
 * same shapes: the same keys with the same JSON types (values such as
 * versions and timestamps differ). No guest boots: QEMU and the tsvm VMs
 * run bare firmware.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { TsvmChild } from '../helpers/child.js';
import { SEABIOS_BIOS } from '../../src/vmm/resources.js';

type Msg = Record<string, unknown>;

/** A QMP connection: every message received, and a wait for the next reply. */
class QmpClient {
  readonly msgs: Msg[] = [];
  private _buf = '';
  private _waiters: (() => void)[] = [];
  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this._buf += d.toString('utf8');
      let nl: number;
      while ((nl = this._buf.indexOf('\n')) >= 0) {
        const line = this._buf.slice(0, nl).trim();
        this._buf = this._buf.slice(nl + 1);
        if (line) this.msgs.push(JSON.parse(line) as Msg);
      }
      for (const w of this._waiters.splice(0)) w();
    });
  }
  static async connect(to: string | { host: string; port: number }): Promise<QmpClient> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<Socket>((res, rej) => {
          const s = typeof to === 'string' ? createConnection(to, () => res(s)) : createConnection(to.port, to.host, () => res(s));
          s.once('error', rej);
        });
        return new QmpClient(sock);
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  async next(test: (m: Msg) => boolean, what: string, from: number): Promise<Msg> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = this.msgs.slice(from).find(test);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${what}; got ${JSON.stringify(this.msgs)}`);
      await new Promise<void>((r) => {
        this._waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
  /** Send a command and return its reply (a message with return or error). */
  async run(execute: string, args?: Msg, id?: number): Promise<Msg> {
    const from = this.msgs.length;
    this.sock.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}), ...(id !== undefined ? { id } : {}) }) + '\n');
    return this.next((m) => 'return' in m || 'error' in m, `a reply to ${execute}`, from);
  }
}

/** The shape of a JSON value: keys and types, not values. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v === null) return 'null';
  if (typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, shape((v as Msg)[k])]));
  return typeof v;
}

/** The session both servers get; returns the shapes of what came back, by step. */
async function session(path: string | { host: string; port: number }, dumpPath: string): Promise<{ steps: [string, unknown][]; events: string[] }> {
  const c = await QmpClient.connect(path);
  const greeting = await c.next((m) => 'QMP' in m, 'the greeting', 0);
  const steps: [string, unknown][] = [['greeting', shape(greeting)]];
  const step = async (name: string, args?: Msg, id?: number) => steps.push([name, shape(await c.run(name, args, id))]);
  await step('query-status'); // before the handshake: an error
  await step('qmp_capabilities', undefined, 1);
  await step('query-status');
  await step('query-version');
  await step('stop');
  await step('query-status');
  await step('cont');
  await step('system_reset');
  await step('system_powerdown');
  await step('human-monitor-command', { 'command-line': 'info cpus' });
  await step('no-such-command');
  await step('screendump', { filename: dumpPath, format: 'png' });
  await step('quit');
  await c.next((m) => m.event === 'SHUTDOWN', 'the SHUTDOWN event', 0);
  const events = c.msgs.filter((m) => 'event' in m).map((m) => String(m.event));
  for (const m of c.msgs.filter((m) => 'event' in m)) steps.push([`event ${String(m.event)}`, shape(m)]);
  c.sock.destroy();
  return { steps, events };
}

const haveQemu = existsSync('/usr/bin/qemu-system-i386');
const skip = haveQemu ? false : 'qemu-system-x86 is not installed';

/** QEMU's session, run once and shared by the tests. */
let qemuResult: Promise<{ steps: [string, unknown][]; events: string[] }> | null = null;
function fromQemu(): Promise<{ steps: [string, unknown][]; events: string[] }> {
  qemuResult ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvm-qmp-'));
    // QEMU: bare SeaBIOS, no display
    const qsock = join(dir, 'qemu.sock');
    const qemu = spawn('qemu-system-i386', ['-display', 'none', '-m', '16', '-nodefaults', '-vga', 'std', '-qmp', `unix:${qsock},server=on,wait=off`], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      return await session(qsock, join(dir, 'qemu.png'));
    } finally {
      qemu.kill('SIGKILL');
    }
  })();
  return qemuResult;
}

/** The replies and events of a tsvm session have QEMU's shapes; its screendump is a PNG. */
function sameShapes(fromTsvm: { steps: [string, unknown][]; events: string[] }, fromQemu: { steps: [string, unknown][]; events: string[] }, png: string): void {
  assert.deepEqual(fromTsvm.events.filter((e) => e !== 'RESET'), fromQemu.events.filter((e) => e !== 'RESET'), 'the same events, in order (QEMU adds a guest RESET after a powerdown of bare firmware)');
  // the command replies, step by step; then each kind of event
  const commands = (steps: [string, unknown][]) => steps.filter(([n]) => !n.startsWith('event '));
  const [qc, tc] = [commands(fromQemu.steps), commands(fromTsvm.steps)];
  assert.deepEqual(tc.map(([n]) => n), qc.map(([n]) => n));
  for (let i = 0; i < tc.length; i++) assert.deepEqual(tc[i][1], qc[i][1], `the shape of reply ${i} (${tc[i][0]})`);
  const qe = new Map(fromQemu.steps.filter(([n]) => n.startsWith('event ')));
  for (const [name, s] of fromTsvm.steps.filter(([n]) => n.startsWith('event '))) assert.deepEqual(s, qe.get(name), `the shape of ${name}`);
  assert.deepEqual([...readFileSync(png).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'screendump wrote a PNG');
}

/** `p`, or a failure naming the exit status and last output as soon as the tsvm child ends without it. */
async function whileAlive<T>(c: TsvmChild, p: Promise<T>): Promise<T> {
  return Promise.race([p, c.exited.then(() => Promise.reject(new Error(`tsvm ended (${c.exitDescription}) during the QMP session; its last output:\n${c.tail()}`)))]);
}

test('QMP: a daemon VM answers a QEMU client with QEMU reply shapes', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-qmp-'));
  const qemu = await fromQemu();
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  assert.equal((await d.api('POST', '/api/vms', { name: 'q', guest: 'firmware', memoryMiB: 16 })).status, 201);
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  assert.equal((await d.api('POST', '/api/vms/q/start')).status, 200);
  await events.waitFor((e) => e.vm === 'q' && e.state === 'running', 60_000, 'q running');
  const fromTsvm = await session(join(d.dir, 'q.tsvm', 'qmp.sock'), join(dir, 'tsvm.png'));
  sameShapes(fromTsvm, qemu, join(dir, 'tsvm.png'));
  await events.waitFor((e) => e.vm === 'q' && e.state === 'stopped', 30_000, 'quit stops the VM');
  assert.equal(await d.stop(), 0);
});

test('QMP: tsvm run -qmp unix:PATH,server,wait=off answers with QEMU reply shapes, and quit ends the run', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-qmp-'));
  const qemu = await fromQemu();
  const sock = join(dir, 'run.sock');
  const c = new TsvmChild(['run', '-bios', SEABIOS_BIOS, '-m', '16', '-serial', 'none', '-qmp', `unix:${sock},server,wait=off`]);
  t.after(() => c.kill());
  const fromTsvm = await whileAlive(c, session(sock, join(dir, 'run.png')));
  sameShapes(fromTsvm, qemu, join(dir, 'run.png'));
  assert.equal(await c.exit(30_000), 0, `quit ends tsvm run with status 0; output:\n${c.tail()}`);
  assert.equal(existsSync(sock), false, 'the socket is removed at exit');
});

test('QMP: tsvm run -qmp tcp:HOST:PORT,server waits for the client, then answers with QEMU reply shapes', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-qmp-'));
  const qemu = await fromQemu();
  const c = new TsvmChild(['run', '-bios', SEABIOS_BIOS, '-m', '16', '-serial', 'none', '-qmp', 'tcp:127.0.0.1:0,server']);
  t.after(() => c.kill());
  const out = await c.waitFor(/waiting for a QMP client on 127\.0\.0\.1:(\d+)/, 0, 60_000, 'the QMP port');
  const port = Number(/QMP listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  assert.ok(port > 0, `the port is printed: ${out}`);
  const fromTsvm = await whileAlive(c, session({ host: '127.0.0.1', port }, join(dir, 'tcp.png')));
  sameShapes(fromTsvm, qemu, join(dir, 'tcp.png'));
  assert.equal(await c.exit(30_000), 0, `quit ends tsvm run with status 0; output:\n${c.tail()}`);
});

test('QMP: a -qmp value tsvm cannot serve is refused with what to write', async () => {
  for (const [arg, msg] of [
    ['unix:/tmp/x.sock', /needs server/],
    ['udp:1.2.3.4:5,server', /neither unix:PATH nor tcp:HOST:PORT/],
    ['tcp:localhost,server', /is not tcp:HOST:PORT/],
    ['unix:/tmp/x.sock,server,nodelay', /'nodelay' is not a QMP socket property/],
  ] as const) {
    const c = new TsvmChild(['run', '-bios', SEABIOS_BIOS, '-m', '16', '-serial', 'none', '-qmp', arg]);
    assert.equal(await c.exit(30_000), 1, `-qmp ${arg} is refused: ${c.tail()}`);
    assert.match(c.stderr, msg);
    assert.match(c.stderr, /write unix:PATH,server\[,wait=off\] or tcp:HOST:PORT,server\[,wait=off\]/);
  }
});
