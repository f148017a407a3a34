/**
 * QMP, the QEMU Machine Protocol, for existing tooling: one socket per VM,
 * in its folder (`NAME.tsvm/qmp.sock`) while the daemon runs, or where
 * `tsvm run -qmp` says. JSON objects one per line both ways; the greeting,
 * the capabilities handshake, the reply and error shapes and the events
 * follow QEMU's (docs/interop/qmp-spec in QEMU's tree), so a QMP client
 * written for QEMU talks to tsvm unchanged. Commands: qmp_capabilities,
 * query-status, query-version, stop, cont, system_reset, system_powerdown,
 * quit, screendump, human-monitor-command; events STOP, RESUME, RESET,
 * POWERDOWN, SHUTDOWN. The protocol is written once, against QmpTarget; the
 * daemon's VMs (hostQmpTarget) and the terminal runner (src/cli/run.ts) each
 * provide one.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import type { HostEvent, VmHost } from './host.js';
import { VERSION } from './server.js';

/** Largest command line accepted from a client (bytes). */
const MAX_LINE = 64 * 1024;
/** How long stop and cont wait for the VM to change state before they answer anyway. */
const STATE_WAIT_MS = 10_000;
/** How long close() lets clients drain their last replies and events. */
const CLOSE_DRAIN_MS = 2000;

type Json = Record<string, unknown>;

/** What a VM's run did, as QMP reports it. 'ended': the run is over for another reason (quit, crash). */
export type QmpChange = 'running' | 'paused' | 'poweroff' | 'ended';

/** One VM as QMP drives it. */
export interface QmpTarget {
  status(): 'running' | 'paused' | 'shutdown' | 'internal-error';
  pause(): void;
  resume(): void;
  reset(): void;
  powerdown(): void;
  /** End the VM's run (the daemon goes on; a `tsvm run` exits). */
  quit(): void;
  screenshot(): Promise<Uint8Array>;
  /** A human-monitor command line; resolves with its output. */
  monitor(line: string): Promise<string>;
  /** Call `fn` on every change; returns the unsubscribe. */
  watch(fn: (c: QmpChange) => void): () => void;
}

/** Where a QMP server listens: a Unix socket path (made mode 0600) or a TCP address. */
export type QmpListen = { path: string } | { host: string; port: number };

/** A VM of the daemon as a QMP target. */
export function hostQmpTarget(host: VmHost, vm: string): QmpTarget {
  return {
    status() {
      const s = host.info(vm).state;
      return s === 'paused' ? 'paused' : s === 'running' || s === 'starting' ? 'running' : s === 'crashed' ? 'internal-error' : 'shutdown';
    },
    pause: () => host.pause(vm),
    resume: () => host.resume(vm),
    reset: () => host.reset(vm),
    powerdown: () => host.powerdown(vm),
    quit() {
      const s = host.info(vm).state;
      if (s !== 'stopped' && s !== 'crashed') host.stop(vm);
    },
    screenshot: () => host.screenshot(vm),
    monitor: (line) => host.monitor(vm, line),
    watch(fn) {
      const on = (e: HostEvent) => {
        if (e.type !== 'state' || e.vm !== vm) return;
        if (e.state === 'paused' || e.state === 'running') fn(e.state);
        else if (e.state === 'stopped' && e.reason === 'poweroff') fn('poweroff');
        else if (e.state === 'stopped' || e.state === 'crashed') fn('ended');
      };
      host.on('event', on);
      return () => host.off('event', on);
    },
  };
}

class QmpError extends Error {
  constructor(
    readonly cls: 'GenericError' | 'CommandNotFound',
    message: string,
  ) {
    super(message);
  }
}

function timestamp(): { seconds: number; microseconds: number } {
  const us = Math.floor(performance.timeOrigin * 1000 + performance.now() * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** QMP on one VM. */
export class QmpServer {
  private readonly _server: Server;
  private readonly _clients = new Set<{ sock: Socket; ready: boolean }>();
  private readonly _unwatch: () => void;
  private _wasPaused = false;
  private _connected: () => void = () => {};
  /** Resolves once the server listens (rejects when it cannot). */
  readonly listening: Promise<void>;
  /** Resolves when the first client connects (QEMU's `wait=on` holds the VM until then). */
  readonly firstClient: Promise<void>;

  constructor(
    private readonly _target: QmpTarget,
    readonly listen: QmpListen,
  ) {
    this.firstClient = new Promise((r) => (this._connected = r));
    if ('path' in listen) rmSync(listen.path, { force: true });
    this._server = createServer((sock) => this._accept(sock));
    this.listening = new Promise((resolve, reject) => {
      this._server.once('error', reject);
      const ready = () => {
        // the user's alone, whatever the umask: QMP has no token
        if ('path' in listen) chmodSync(listen.path, 0o600);
        resolve();
      };
      if ('path' in listen) this._server.listen(listen.path, ready);
      else this._server.listen(listen.port, listen.host, ready);
    });
    this.listening.catch(() => {}); // the daemon goes on without this VM's QMP; `tsvm run` awaits it and reports
    this._unwatch = _target.watch((c) => this._change(c));
  }

  /** The TCP port listened on (for port 0), or null for a Unix socket. */
  get port(): number | null {
    const a = this._server.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  /** Stop listening; clients get their last messages, then are closed. */
  async close(): Promise<void> {
    this._unwatch();
    this._server.close(() => {});
    await new Promise((r) => setImmediate(r)); // replies to the command that ended the VM go out first
    await Promise.all(
      [...this._clients].map(
        (c) =>
          new Promise<void>((r) => {
            const t = setTimeout(() => {
              c.sock.destroy();
              r();
            }, CLOSE_DRAIN_MS);
            c.sock.end(() => {
              clearTimeout(t);
              c.sock.destroy();
              r();
            });
          }),
      ),
    );
    if ('path' in this.listen) rmSync(this.listen.path, { force: true });
  }

  private _send(sock: Socket, obj: Json): void {
    if (!sock.destroyed && !sock.writableEnded) sock.write(JSON.stringify(obj) + '\r\n');
  }

  private _event(name: string, data?: Json): void {
    const e: Json = { timestamp: timestamp(), event: name };
    if (data) e.data = data;
    for (const c of this._clients) if (c.ready) this._send(c.sock, e);
  }

  private _change(c: QmpChange): void {
    if (c === 'paused') this._event('STOP');
    else if (c === 'running' && this._wasPaused) this._event('RESUME');
    else if (c === 'poweroff') this._event('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    this._wasPaused = c === 'paused';
  }

  /** Resolves when this VM reaches `state` (or its run ends), or after a few seconds. */
  private _until(state: QmpChange): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), STATE_WAIT_MS);
      const unwatch = this._target.watch((c) => {
        if (c === state || c === 'poweroff' || c === 'ended') finish();
      });
      const finish = () => {
        clearTimeout(timer);
        unwatch();
        setImmediate(resolve); // after this server's own watcher has sent the event
      };
    });
  }

  private _accept(sock: Socket): void {
    const client = { sock, ready: false };
    this._clients.add(client);
    this._connected();
    sock.on('close', () => this._clients.delete(client));
    sock.on('error', () => sock.destroy());
    this._send(sock, { QMP: { version: this._version(), capabilities: ['oob'] } });
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        this._send(sock, { error: { class: 'GenericError', desc: `a command longer than ${MAX_LINE} bytes` } });
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) void this._command(client, line);
      }
    });
  }

  private _version(): Json {
    const [major, minor, micro] = VERSION.split('.').map(Number);
    return { qemu: { micro, minor, major }, package: `tsvm ${VERSION}` };
  }

  private async _command(client: { sock: Socket; ready: boolean }, line: string): Promise<void> {
    let cmd: Json;
    try {
      cmd = JSON.parse(line) as Json;
      if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) throw new Error('not an object');
    } catch {
      this._send(client.sock, { error: { class: 'GenericError', desc: 'JSON parse error, expecting an object' } });
      return;
    }
    const id = cmd.id;
    const reply = (r: Json) => this._send(client.sock, id === undefined ? r : { ...r, id });
    const name = cmd.execute;
    const args = (cmd.arguments ?? {}) as Json;
    try {
      if (typeof name !== 'string') throw new QmpError('GenericError', "QMP input member 'execute' is missing");
      if (!client.ready && name !== 'qmp_capabilities') throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
      const ret = await this._run(name, args, client);
      reply({ return: ret });
      if (name === 'quit') client.sock.end();
    } catch (e) {
      if (e instanceof QmpError) reply({ error: { class: e.cls, desc: e.message } });
      else reply({ error: { class: 'GenericError', desc: (e as Error).message } });
    }
  }

  private async _run(name: string, args: Json, client: { ready: boolean }): Promise<unknown> {
    const vm = this._target;
    switch (name) {
      case 'qmp_capabilities':
        if (client.ready) throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
        client.ready = true;
        return {};
      case 'query-status': {
        const status = vm.status();
        return { status, singlestep: false, running: status === 'running' };
      }
      case 'query-version':
        return this._version();
      // as in QEMU, the reply comes once the VM is stopped or running again, after the event
      case 'stop':
        if (vm.status() !== 'paused') {
          const done = this._until('paused');
          vm.pause();
          await done;
        }
        return {};
      case 'cont':
        if (vm.status() === 'paused') {
          const done = this._until('running');
          vm.resume();
          await done;
        }
        return {};
      case 'system_reset':
        vm.reset();
        this._event('RESET', { guest: false, reason: 'host-qmp-system-reset' });
        return {};
      case 'system_powerdown':
        vm.powerdown();
        this._event('POWERDOWN');
        return {};
      case 'quit':
        this._event('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
        vm.quit();
        return {};
      case 'screendump': {
        const file = args.filename;
        if (typeof file !== 'string') throw new QmpError('GenericError', "Parameter 'filename' is missing");
        if (args.format !== undefined && args.format !== 'png') throw new QmpError('GenericError', `tsvm writes PNG screendumps; pass "format": "png"`);
        writeFileSync(file, await vm.screenshot());
        return {};
      }
      case 'human-monitor-command': {
        const line = args['command-line'];
        if (typeof line !== 'string') throw new QmpError('GenericError', "Parameter 'command-line' is missing");
        return (await vm.monitor(line)).replace(/\n/g, '\r\n') + (line.trim() ? '\r\n' : '');
      }
      default:
        throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    }
  }
}
