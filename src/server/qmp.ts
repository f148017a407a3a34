/**
 * QMP, the QEMU Machine Protocol, for existing tooling: one Unix socket per
 * VM in its folder (`NAME.tsvm/qmp.sock`) while the daemon runs. JSON
 * objects one per line both ways; the greeting, the capabilities handshake,
 * the reply and error shapes and the events follow QEMU's (docs/interop/qmp-
 * spec in QEMU's tree), so a QMP client written for QEMU talks to tsvm
 * unchanged. Commands: qmp_capabilities, query-status, query-version, stop,
 * cont, system_reset, system_powerdown, quit, screendump,
 * human-monitor-command; events STOP, RESUME, RESET, POWERDOWN, SHUTDOWN.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import type { HostEvent, VmHost } from './host.js';
import { VERSION } from './server.js';

/** Largest command line accepted from a client (bytes). */
const MAX_LINE = 64 * 1024;
/** How long stop and cont wait for the VM to change state before they answer anyway. */
const STATE_WAIT_MS = 10_000;

type Json = Record<string, unknown>;

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

/** QMP on one VM of a VmHost. */
export class QmpServer {
  private readonly _server: Server;
  private readonly _clients = new Set<{ sock: Socket; ready: boolean }>();
  private readonly _onEvent = (e: HostEvent) => this._hostEvent(e);

  constructor(
    private readonly _host: VmHost,
    readonly vm: string,
    readonly path: string,
  ) {
    rmSync(path, { force: true });
    this._server = createServer((sock) => this._accept(sock));
    this._server.on('error', () => {}); // a socket path that cannot be bound leaves this VM without QMP, nothing else
    // the user's alone, whatever the umask: QMP has no token
    this._server.listen(path, () => chmodSync(path, 0o600));
    _host.on('event', this._onEvent);
  }

  close(): void {
    this._host.off('event', this._onEvent);
    for (const c of this._clients) c.sock.destroy();
    this._server.close();
    rmSync(this.path, { force: true });
  }

  private _send(sock: Socket, obj: Json): void {
    if (!sock.destroyed) sock.write(JSON.stringify(obj) + '\r\n');
  }

  private _event(name: string, data?: Json): void {
    const e: Json = { timestamp: timestamp(), event: name };
    if (data) e.data = data;
    for (const c of this._clients) if (c.ready) this._send(c.sock, e);
  }

  private _hostEvent(e: HostEvent): void {
    if (e.type !== 'state' || e.vm !== this.vm) return;
    if (e.state === 'paused') this._event('STOP');
    else if (e.state === 'running' && this._wasPaused) this._event('RESUME');
    else if (e.state === 'stopped' && e.reason === 'poweroff') this._event('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    this._wasPaused = e.state === 'paused';
  }
  private _wasPaused = false;

  /** Resolves when this VM reaches `state` (or ends), or after a few seconds. */
  private _until(state: string): Promise<void> {
    return new Promise((resolve) => {
      const on = (e: HostEvent) => {
        if (e.type === 'state' && e.vm === this.vm && (e.state === state || e.state === 'stopped' || e.state === 'crashed')) finish();
      };
      const timer = setTimeout(() => finish(), STATE_WAIT_MS);
      const finish = () => {
        clearTimeout(timer);
        this._host.off('event', on);
        setImmediate(resolve); // after this VM's own event handler has sent the event
      };
      this._host.on('event', on);
    });
  }

  private _accept(sock: Socket): void {
    const client = { sock, ready: false };
    this._clients.add(client);
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
    const h = this._host;
    const vm = this.vm;
    switch (name) {
      case 'qmp_capabilities':
        if (client.ready) throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
        client.ready = true;
        return {};
      case 'query-status': {
        const s = h.info(vm).state;
        const status = s === 'paused' ? 'paused' : s === 'running' || s === 'starting' ? 'running' : s === 'crashed' ? 'internal-error' : 'shutdown';
        return { status, singlestep: false, running: status === 'running' };
      }
      case 'query-version':
        return this._version();
      // as in QEMU, the reply comes once the VM is stopped or running again, after the event
      case 'stop':
        if (h.info(vm).state !== 'paused') {
          const done = this._until('paused');
          h.pause(vm);
          await done;
        }
        return {};
      case 'cont':
        if (h.info(vm).state === 'paused') {
          const done = this._until('running');
          h.resume(vm);
          await done;
        }
        return {};
      case 'system_reset':
        h.reset(vm);
        this._event('RESET', { guest: false, reason: 'host-qmp-system-reset' });
        return {};
      case 'system_powerdown':
        h.powerdown(vm);
        this._event('POWERDOWN');
        return {};
      case 'quit':
        this._event('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
        if (h.info(vm).state !== 'stopped' && h.info(vm).state !== 'crashed') h.stop(vm);
        return {};
      case 'screendump': {
        const file = args.filename;
        if (typeof file !== 'string') throw new QmpError('GenericError', "Parameter 'filename' is missing");
        if (args.format !== undefined && args.format !== 'png') throw new QmpError('GenericError', `tsvm writes PNG screendumps; pass "format": "png"`);
        writeFileSync(file, await h.screenshot(vm));
        return {};
      }
      case 'human-monitor-command': {
        const line = args['command-line'];
        if (typeof line !== 'string') throw new QmpError('GenericError', "Parameter 'command-line' is missing");
        return (await h.monitor(vm, line)).replace(/\n/g, '\r\n') + (line.trim() ? '\r\n' : '');
      }
      default:
        throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    }
  }
}
