/**
 * The daemon's HTTP and WebSocket server: authentication, request checks,
 * the REST routes over VmHost, the WebSockets, and the web page's files.
 *
 * Every request is checked before anything changes: the token first, then
 * the method, the path (each segment decoded and a VM name checked against
 * the name rule, so '..' and encoded slashes never reach the file system),
 * then the body (size, media type, JSON). A refusal is a JSON error with a
 * 4xx status, and the daemon's log gets one line saying why.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { checkUploadHeaders, DEFAULT_MAX_UPLOAD_BYTES, receiveIso, UploadError } from './upload.js';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { checkName, StoreError, type RestartPolicy, type VmSettings } from './store.js';
import { HostError, type VmHost } from './host.js';
import { LoopDelayMonitor } from './loop-delay.js';
import { OPENAPI } from './openapi.js';
import type { ScreenUpdate } from '../vmm/worker-handle.js';
import { defaultSpec, VmConfigError, type MachineSpec } from '../vmm/spec.js';
import { findDefaultImage } from '../vmm/image.js';
import { defaultGuestLinux, defaultGuestVm, networkNic } from '../vmm/guest.js';
import { NETWORK_NAME, type NicSpec } from '../vmm/netspec.js';
import type { NewDisks } from '../vmm/folder.js';

/** Largest request body accepted (bytes). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Largest WebSocket message accepted (bytes). */
export const MAX_WS_MESSAGE = 64 * 1024;
export const VERSION = '0.1.0';

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ServerOptions {
  host: VmHost;
  token: string;
  /** The daemon's log (one line per request and per refusal). */
  log: (line: string) => void;
  /** Largest ISO upload accepted (bytes; default DEFAULT_MAX_UPLOAD_BYTES). */
  maxUploadBytes?: number;
}

/** Files of the web page: URL path -> file and media type. */
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const nodeModule = (p: string) => fileURLToPath(new URL(`../../../node_modules/${p}`, import.meta.url));
const STATIC: Record<string, [() => string, string]> = {
  '/': [() => here('../../../src/web/index.html'), 'text/html; charset=utf-8'],
  '/app.css': [() => here('../../../src/web/app.css'), 'text/css; charset=utf-8'],
  '/app.js': [() => here('../web/app.js'), 'text/javascript; charset=utf-8'],
  '/screen.js': [() => here('../web/screen.js'), 'text/javascript; charset=utf-8'],
  '/clone.js': [() => here('../web/clone.js'), 'text/javascript; charset=utf-8'],
  '/networks.js': [() => here('../web/networks.js'), 'text/javascript; charset=utf-8'],
  '/forms.js': [() => here('../web/forms.js'), 'text/javascript; charset=utf-8'],
  '/xterm.mjs': [() => nodeModule('@xterm/xterm/lib/xterm.mjs'), 'text/javascript; charset=utf-8'],
  '/xterm.css': [() => nodeModule('@xterm/xterm/css/xterm.css'), 'text/css; charset=utf-8'],
};

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

/** The path's segments, each percent-decoded; a bad escape is a 400. */
function segments(path: string): string[] {
  return path
    .split('/')
    .filter((s, i) => i > 0 || s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new ApiError(400, 'bad-path', `the path segment '${s.slice(0, 80)}' is not valid percent-encoding`);
      }
    });
}

function vmName(s: string): string {
  try {
    return checkName(s);
  } catch (e) {
    throw new ApiError(400, 'bad-name', (e as Error).message);
  }
}

function readBody(req: IncomingMessage): Promise<unknown> {
  const len = Number(req.headers['content-length'] ?? 0);
  if (len > MAX_BODY_BYTES) return Promise.reject(new ApiError(413, 'too-large', `the body is ${len} bytes; the daemon accepts at most ${MAX_BODY_BYTES}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(new ApiError(413, 'too-large', `the body is larger than the ${MAX_BODY_BYTES} bytes the daemon accepts`));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/json') return reject(new ApiError(415, 'bad-media-type', `the body must be application/json, not '${type || 'unspecified'}'`));
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError(400, 'bad-json', `the body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}

function object(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'bad-body', `${what} must be a JSON object`);
  return body as Record<string, unknown>;
}

/** A screen update as the screen socket sends it: JSON, the graphics tiles' PNGs in base64. */
function screenJson(u: ScreenUpdate, full: boolean): string {
  return JSON.stringify({ type: 'screen', full, ...u, tiles: u.tiles.map((t) => ({ x: t.x, y: t.y, w: t.w, h: t.h, png: Buffer.from(t.png).toString('base64') })) });
}

function allowOnly(o: Record<string, unknown>, allowed: string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new ApiError(400, 'bad-body', `${what} has an unknown field '${k}' (known: ${allowed.join(', ')})`);
}

function settingsFrom(o: Record<string, unknown>): Partial<VmSettings> {
  const s: Partial<VmSettings> = {};
  if (o.autostart !== undefined) {
    if (typeof o.autostart !== 'boolean') throw new ApiError(400, 'bad-body', 'autostart must be true or false');
    s.autostart = o.autostart;
  }
  if (o.restart !== undefined) {
    if (o.restart !== 'never' && o.restart !== 'on-crash') throw new ApiError(400, 'bad-body', "restart must be 'never' or 'on-crash'");
    s.restart = o.restart as RestartPolicy;
  }
  if (o.heapLimitMb !== undefined) {
    const n = o.heapLimitMb;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 16 || n > 4096) throw new ApiError(400, 'bad-body', 'heapLimitMb must be a whole number of MiB from 16 to 4096');
    s.heapLimitMb = n;
  }
  if (o.cpuLimit !== undefined) {
    const n = o.cpuLimit;
    if (n !== null && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 100)) throw new ApiError(400, 'bad-body', 'cpuLimit must be a whole percent of one host core from 1 to 100, or null for no limit');
    s.cpuLimit = n === 100 ? null : n;
  }
  if (o.rssLimitMiB !== undefined) {
    const n = o.rssLimitMiB;
    if (n !== null && (typeof n !== 'number' || !Number.isInteger(n) || n < 32 || n > 1048576)) throw new ApiError(400, 'bad-body', "rssLimitMiB must be a whole number of MiB from 32 to 1048576 (the cap on the VM process's resident set), or null for the default (guest RAM + heapLimitMb + 384)");
    s.rssLimitMiB = n;
  }
  return s;
}

/**
 * The machine for a create request: the default guest's VM (the same as
 * `tsvm create NAME` makes: src/vmm/guest.ts), bare firmware, or a full spec;
 * and the new disks it gets.
 */
function specFrom(o: Record<string, unknown>): { spec: MachineSpec; newDisks: NewDisks } {
  if (o.machine !== undefined) {
    for (const k of ['guest', 'memoryMiB', 'diskMiB', 'network']) if (o[k] !== undefined) throw new ApiError(400, 'bad-body', `${k} describes a VM made from a guest; with a full machine spec, say it in the spec instead`);
    return { spec: o.machine as MachineSpec, newDisks: {} }; // validated by the host
  }
  let memoryBytes = 128 * 1048576;
  if (o.memoryMiB !== undefined) {
    const m = o.memoryMiB;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 3072) throw new ApiError(400, 'bad-body', 'memoryMiB must be a whole number from 1 to 3072');
    memoryBytes = m * 1048576;
  }
  const guest = o.guest ?? 'default';
  const rtcEpochSec = Math.floor(Date.now() / 1000);
  if (guest === 'firmware') {
    for (const k of ['diskMiB', 'network']) if (o[k] !== undefined) throw new ApiError(400, 'bad-body', `${k} is for the default guest; a firmware VM has no disk and no NIC`);
    return { spec: defaultSpec({ memoryBytes, rtcEpochSec, serial: 'none' }), newDisks: {} };
  }
  if (guest !== 'default') throw new ApiError(400, 'bad-body', "guest must be 'default' (the default Linux guest) or 'firmware' (SeaBIOS, no disk)");
  let diskBytes: number | undefined;
  if (o.diskMiB !== undefined) {
    const n = o.diskMiB;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024 * 1024) throw new ApiError(400, 'bad-body', 'diskMiB must be a whole number of MiB from 1 to 1048576 (1 TiB)');
    diskBytes = n * 1048576;
  }
  let nics: NicSpec[] | undefined;
  if (o.network !== undefined && o.network !== null) {
    if (typeof o.network !== 'string' || !NETWORK_NAME.test(o.network)) throw new ApiError(400, 'bad-body', "network must be a private network's name (letters, digits, '.', '_' or '-', up to 64), or null for the user-mode network");
    nics = [networkNic(o.network)];
  }
  const img = findDefaultImage();
  if (!img) throw new ApiError(409, 'no-default-guest', "the default guest image is not built on this host; run 'tsvm image build' once");
  const base = defaultSpec({ memoryBytes, rtcEpochSec, bios: null, vgaBios: null, serial: 'none', linux: defaultGuestLinux(img) });
  return defaultGuestVm(base, { diskBytes, nics });
}

/** What a refused body may still bring after the answer before its connection is closed: bytes, and time. */
const LINGER_BYTES = 4 * 1048576;
const LINGER_MS = 2000;

/**
 * Close a refused request's connection after its answer without reading the
 * rest of its body. Node ends a `Connection: close` answer with the socket's
 * destroySoon(): the answer written, the socket closed at once. With body
 * bytes still arriving unread, that close sends the client a reset, which
 * can reach it before it has read the answer (web servers call the remedy a
 * lingering close): so end the writing side only, take and drop what comes
 * for a bounded while, then close.
 */
function lingerThenClose(req: IncomingMessage): void {
  const sock = req.socket;
  sock.destroySoon = () => {
    sock.end();
    let taken = 0;
    const timer = setTimeout(() => sock.destroy(), LINGER_MS).unref();
    sock.once('close', () => clearTimeout(timer));
    req.on('data', (c: Buffer) => {
      taken += c.length;
      if (taken > LINGER_BYTES) sock.destroy();
    });
  };
}

export interface Daemon {
  server: Server;
  /** Close every WebSocket and stop listening. */
  close(): Promise<void>;
}

export function createDaemonServer(o: ServerOptions): Daemon {
  const { host, token, log } = o;
  const maxUpload = o.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE });
  // how late this thread's event loop runs what is due: every answer, console byte and VM message waits on it
  const loopDelay = new LoopDelayMonitor();

  /** The request's token: the daemon's, none given, or a wrong one (which the refusal and its log line tell apart). */
  const credential = (req: IncomingMessage, url: URL): 'ok' | 'none' | 'wrong' => {
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : (url.searchParams.get('token') ?? cookie(req, 'tsvm_token'));
    if (given === null || given === undefined) return 'none';
    return sameToken(given, token) ? 'ok' : 'wrong';
  };
  const WRONG_TOKEN = "the token given is not this daemon's token (tsvm serve prints it with the URL)";

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(text);
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0];
    const seg = segments(path);
    const methods = (allowed: string[]) => {
      if (!allowed.includes(method)) throw new ApiError(405, 'bad-method', `${path} takes ${allowed.join(', ')}, not ${method}`, { allow: allowed.join(', ') });
    };

    if (seg[0] !== 'api') {
      const file = STATIC[path];
      if (!file) throw new ApiError(404, 'not-found', `nothing at ${path}`);
      methods(['GET', 'HEAD']);
      let data: Buffer;
      try {
        data = readFileSync(file[0]());
      } catch {
        throw new ApiError(404, 'not-found', `${path} is not built; run 'npm run build'`);
      }
      const headers: Record<string, string> = { 'content-type': file[1], 'cache-control': 'no-cache' };
      // the page keeps the token in an HttpOnly cookie, so its own requests and sockets carry it
      if (path === '/' && url.searchParams.get('token') !== null) headers['set-cookie'] = `tsvm_token=${token}; HttpOnly; SameSite=Strict; Path=/`;
      res.writeHead(200, headers);
      res.end(method === 'HEAD' ? undefined : data);
      return;
    }

    if (seg.length === 2 && seg[1] === 'openapi.json') {
      methods(['GET']);
      return send(res, 200, OPENAPI);
    }
    if (seg.length === 2 && seg[1] === 'daemon') {
      methods(['GET']);
      return send(res, 200, { dir: host.store.root, pid: process.pid, version: VERSION, eventLoopDelay: loopDelay.figures() });
    }
    if (seg[1] === 'networks') return networks(req, res, seg.slice(2), methods);
    if (seg[1] !== 'vms') throw new ApiError(404, 'not-found', `no API at ${path}`);
    if (seg.length === 2) {
      methods(['GET', 'POST']);
      if (method === 'GET') return send(res, 200, { vms: host.list() });
      const b = object(await readBody(req), 'the request');
      allowOnly(b, ['name', 'guest', 'memoryMiB', 'diskMiB', 'network', 'machine', 'autostart', 'restart', 'heapLimitMb', 'cpuLimit', 'rssLimitMiB'], 'the request');
      if (typeof b.name !== 'string') throw new ApiError(400, 'bad-body', 'name is required: the new VM\'s name');
      const name = vmName(b.name);
      const settings = settingsFrom(b);
      const { spec, newDisks } = specFrom(b);
      const info = await host.create(name, spec, settings, newDisks);
      log(`created VM '${name}'`);
      return send(res, 201, info);
    }
    const name = vmName(seg[2]);
    if (seg.length === 3) {
      methods(['GET', 'PATCH', 'DELETE']);
      if (method === 'GET') return send(res, 200, host.info(name));
      if (method === 'DELETE') {
        host.remove(name);
        log(`deleted VM '${name}'`);
        res.writeHead(204).end();
        return;
      }
      const b = object(await readBody(req), 'the request');
      allowOnly(b, ['autostart', 'restart', 'heapLimitMb', 'cpuLimit', 'rssLimitMiB'], 'the request');
      if (Object.keys(b).length === 0) throw new ApiError(400, 'bad-body', 'give at least one of autostart, restart, heapLimitMb, cpuLimit, rssLimitMiB');
      return send(res, 200, host.updateSettings(name, settingsFrom(b)));
    }
    if (seg[3] === 'snapshots') return snapshots(req, res, name, seg.slice(4), methods);
    if (seg.length === 4 && seg[3] === 'iso') {
      methods(['POST']);
      return createFromIso(req, res, url, name);
    }
    if (seg.length !== 4) throw new ApiError(404, 'not-found', `no API at ${path}`);
    const what = seg[3];
    switch (what) {
      case 'start': {
        methods(['POST']);
        // optional {forceBoot: true}: boot afresh, discarding a suspended state (tsvm start --force-boot)
        const body = await readBody(req);
        let forceBoot = false;
        if (body !== undefined) {
          const b = object(body, 'the request');
          allowOnly(b, ['forceBoot'], 'the request');
          if (b.forceBoot !== undefined && typeof b.forceBoot !== 'boolean') throw new ApiError(400, 'bad-body', 'forceBoot must be true or false');
          forceBoot = b.forceBoot === true;
        }
        const info = host.start(name, { forceBoot });
        log(`start VM '${name}'${forceBoot ? ' (force boot)' : ''}`);
        return send(res, 200, info);
      }
      case 'stop':
      case 'powerdown':
      case 'pause':
      case 'resume':
      case 'reset': {
        methods(['POST']);
        await readBody(req); // any body is read and ignored, but still bounded
        const info = host[what](name);
        log(`${what} VM '${name}'`);
        return send(res, 200, info);
      }
      case 'clone': {
        methods(['POST']);
        const b = object(await readBody(req), 'the request');
        allowOnly(b, ['name', 'linked', 'snapshot'], 'the request');
        if (typeof b.name !== 'string') throw new ApiError(400, 'bad-body', "name is required: the clone's name");
        if (b.linked !== undefined && typeof b.linked !== 'boolean') throw new ApiError(400, 'bad-body', 'linked is true (overlays over a snapshot of the source) or false (a full copy)');
        if (b.snapshot !== undefined && (typeof b.snapshot !== 'string' || b.snapshot === '')) throw new ApiError(400, 'bad-body', 'snapshot is the name of one of the source\'s snapshots');
        if (b.snapshot !== undefined && b.linked !== true) throw new ApiError(400, 'bad-body', 'snapshot goes with "linked": true (a full clone copies every snapshot); add it or leave snapshot out');
        const linked = b.linked === true;
        const info = await host.clone(name, vmName(b.name), linked, (b.snapshot as string | undefined) ?? null);
        log(`${linked ? 'linked-cloned' : 'cloned'} VM '${name}' to '${info.name}'`);
        return send(res, 201, info);
      }
      case 'stats':
        methods(['GET']);
        return send(res, 200, await host.stats(name));
      case 'log':
        methods(['GET']);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        res.end(host.log(name));
        return;
      case 'screenshot': {
        methods(['GET']);
        const png = await host.screenshot(name);
        res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' });
        res.end(png);
        return;
      }
      default:
        throw new ApiError(404, 'not-found', `no API at ${path}`);
    }
  }

  /** /api/networks[/NAME]: list, add (networks.json), remove a network no VM uses. */
  async function networks(req: IncomingMessage, res: ServerResponse, rest: string[], methods: (m: string[]) => void): Promise<void> {
    const method = req.method ?? 'GET';
    const netName = (s: unknown) => {
      if (typeof s !== 'string' || !NETWORK_NAME.test(s)) throw new ApiError(400, 'bad-name', `'${String(s).slice(0, 80)}' is not a network name: letters, digits, '.', '_' or '-', up to 64, starting with a letter or digit`);
      return s;
    };
    if (rest.length === 0) {
      methods(['GET', 'POST']);
      if (method === 'GET') return send(res, 200, { networks: host.listNetworks() });
      const b = object(await readBody(req), 'the request');
      allowOnly(b, ['name', 'dhcp'], 'the request');
      if (b.name === undefined) throw new ApiError(400, 'bad-body', "name is required: the network's name");
      const name = netName(b.name);
      if (b.dhcp !== undefined && b.dhcp !== null && typeof b.dhcp !== 'string') throw new ApiError(400, 'bad-body', 'dhcp is a subnet like "10.0.3.0/24" (optionally ",router=ADDR,dns=ADDR"), or null for no DHCP server');
      const net = host.createNetwork(name, (b.dhcp as string | null | undefined) ?? null);
      log(`network '${name}' added`);
      return send(res, 201, net);
    }
    if (rest.length === 1) {
      methods(['DELETE']);
      const name = netName(rest[0]);
      await host.deleteNetwork(name);
      log(`network '${name}' deleted`);
      res.writeHead(204).end();
      return;
    }
    throw new ApiError(404, 'not-found', `no API at ${req.url?.split('?')[0]}`);
  }

  /** /api/vms/NAME/snapshots[/TAG[/revert]] */
  async function snapshots(req: IncomingMessage, res: ServerResponse, name: string, rest: string[], methods: (m: string[]) => void): Promise<void> {
    const method = req.method ?? 'GET';
    if (rest.length === 0) {
      methods(['GET', 'POST']);
      if (method === 'GET') return send(res, 200, host.snapshots(name));
      const b = object(await readBody(req), 'the request');
      allowOnly(b, ['name', 'description'], 'the request');
      if (typeof b.name !== 'string' || !/^[^\s/]{1,64}$/.test(b.name)) throw new ApiError(400, 'bad-body', "name is required: the snapshot's name, up to 64 characters without spaces or '/'");
      if (b.description !== undefined && (typeof b.description !== 'string' || b.description.length > 1000)) throw new ApiError(400, 'bad-body', 'description must be a string of at most 1000 characters');
      const node = await host.saveSnapshot(name, b.name, (b.description as string | undefined) ?? '');
      log(`snapshot '${b.name}' of VM '${name}' saved`);
      return send(res, 201, node);
    }
    const tag = rest[0];
    if (rest.length === 1) {
      methods(['DELETE']);
      await host.deleteSnapshot(name, tag);
      log(`snapshot '${tag}' of VM '${name}' deleted`);
      res.writeHead(204).end();
      return;
    }
    if (rest.length === 2 && rest[1] === 'revert') {
      methods(['POST']);
      await readBody(req);
      const node = await host.revertSnapshot(name, tag);
      log(`VM '${name}' reverted to snapshot '${tag}'`);
      return send(res, 200, node);
    }
    throw new ApiError(404, 'not-found', `no API at ${req.url?.split('?')[0]}`);
  }

  /**
   * POST /api/vms/NAME/iso: a new VM booting from the uploaded ISO (the body,
   * streamed to disk), with an empty disk to install to. Refusals close the
   * connection, so a refused upload is not read to its end.
   */
  async function createFromIso(req: IncomingMessage, res: ServerResponse, url: URL, name: string): Promise<void> {
    const close = { connection: 'close' };
    const int = (key: string, def: number, min: number, max: number) => {
      const v = url.searchParams.get(key);
      if (v === null) return def;
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < min || n > max) throw new ApiError(400, 'bad-query', `${key} must be a whole number from ${min} to ${max}`, close);
      return n;
    };
    for (const k of url.searchParams.keys()) if (!['memoryMiB', 'diskMiB', 'token'].includes(k)) throw new ApiError(400, 'bad-query', `unknown query parameter '${k}' (known: memoryMiB, diskMiB)`, close);
    const memoryMiB = int('memoryMiB', 128, 16, 3072);
    const diskMiB = int('diskMiB', 1024, 0, 1024 * 1024);
    if (host.list().some((v) => v.name === name)) throw new ApiError(409, 'conflict', `a VM named '${name}' already exists`, close);
    let length: number;
    try {
      length = checkUploadHeaders(req, maxUpload);
    } catch (e) {
      if (e instanceof UploadError) throw new ApiError(e.status, e.code, e.message, close);
      throw e;
    }
    let iso: string;
    try {
      iso = await receiveIso(req, host.store.root, length, (d, t) => host.reportProgress(name, 'upload', d, t));
    } catch (e) {
      host.reportProgress(name, 'upload', length, length); // the bar goes away; the refusal says why
      if (e instanceof UploadError) throw new ApiError(e.status, e.code, e.message, close);
      throw e;
    }
    try {
      const spec = defaultSpec({ memoryBytes: memoryMiB * 1048576, rtcEpochSec: Math.floor(Date.now() / 1000), serial: 'none', boot: 'dc', drives: { cdrom: { file: iso, format: 'raw', mode: 'ro' } } });
      const info = await host.create(name, spec, {}, diskMiB > 0 ? { hda: diskMiB * 1048576 } : {});
      log(`created VM '${name}' from an uploaded ISO of ${length} bytes`);
      send(res, 201, info);
    } finally {
      rmSync(iso, { force: true });
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://daemon');
    const started = Date.now();
    res.on('finish', () => log(`${req.method} ${url.pathname} ${res.statusCode} ${Date.now() - started} ms`));
    const refuse = (e: ApiError) => {
      log(`refused ${req.method} ${url.pathname} from ${req.socket.remoteAddress}: ${e.status} ${e.code}: ${e.message}`);
      // A body not read to its end (an upload without the token, a body over the limit) is not
      // read on: the answer says Connection: close and the connection closes soon after it, where
      // keeping it alive would mean reading the whole body first.
      const unread = (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) && !req.complete;
      if (unread) lingerThenClose(req);
      if (!res.headersSent) send(res, e.status, { error: { code: e.code, message: e.message } }, unread ? { ...e.headers, connection: 'close' } : e.headers);
      // meanwhile what the client still sends is taken and dropped, so its writes do not stall before it reads the answer
      req.resume();
    };
    const cred = credential(req, url);
    if (cred !== 'ok') {
      refuse(new ApiError(401, 'unauthorised', cred === 'none' ? "this request needs the daemon's token (printed by tsvm serve; Authorization: Bearer TOKEN)" : WRONG_TOKEN, { 'www-authenticate': 'Bearer' }));
      return;
    }
    route(req, res, url).catch((e: unknown) => {
      if (e instanceof ApiError) return refuse(e);
      if (e instanceof HostError) {
        const status = { 'not-found': 404, conflict: 409, 'bad-request': 400, unavailable: 503 }[e.code];
        return refuse(new ApiError(status, e.code, e.message));
      }
      if (e instanceof StoreError) return refuse(new ApiError(e.code === 'not-found' ? 404 : e.code === 'exists' || e.code === 'conflict' ? 409 : 400, e.code, e.message));
      if (e instanceof VmConfigError) return refuse(new ApiError(400, 'bad-machine', e.message));
      log(`error on ${req.method} ${url.pathname}: ${(e as Error)?.stack ?? String(e)}`);
      if (!res.headersSent) send(res, 500, { error: { code: 'internal', message: `the daemon failed: ${(e as Error)?.message ?? String(e)}` } });
    });
  });

  // --- WebSockets ---
  const sockets = new Set<WebSocket>();
  const refuseUpgrade = (socket: Duplex, req: IncomingMessage, status: number, code: string, message: string) => {
    log(`refused WebSocket ${req.url?.split('?')[0]} from ${req.socket.remoteAddress}: ${status} ${code}: ${message}`);
    const body = JSON.stringify({ error: { code, message } });
    socket.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://daemon');
    const cred = credential(req, url);
    if (cred !== 'ok') return refuseUpgrade(socket, req, 401, 'unauthorised', cred === 'none' ? "this WebSocket needs the daemon's token" : WRONG_TOKEN);
    // a page from another site must not ride on the cookie
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`) return refuseUpgrade(socket, req, 403, 'bad-origin', `WebSockets from ${origin} are not accepted`);
    let seg: string[];
    let kind: 'console' | 'screen' | 'events';
    let name = '';
    try {
      seg = segments(url.pathname);
      if (seg.length === 2 && seg[0] === 'api' && seg[1] === 'events') kind = 'events';
      else if (seg.length === 4 && seg[0] === 'api' && seg[1] === 'vms' && (seg[3] === 'console' || seg[3] === 'screen')) {
        name = vmName(seg[2]);
        host.info(name);
        kind = seg[3];
      } else throw new ApiError(404, 'not-found', `no WebSocket at ${url.pathname}`);
    } catch (e) {
      const ae = e instanceof ApiError ? e : e instanceof HostError ? new ApiError(404, e.code, e.message) : new ApiError(400, 'bad-request', String(e));
      return refuseUpgrade(socket, req, ae.status, ae.code, ae.message);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => ws.terminate());
      log(`WebSocket ${kind}${name ? ` of '${name}'` : ''} opened`);
      if (kind === 'console') attachConsole(ws, name);
      else if (kind === 'screen') attachScreen(ws, name);
      else attachEvents(ws);
    });
  });

  function attachConsole(ws: WebSocket, name: string): void {
    const backlog = host.consoleBacklog(name);
    if (backlog.length) ws.send(backlog);
    const onSerial = (vm: string, bytes: Uint8Array) => {
      if (vm === name) ws.send(bytes);
    };
    host.on('serial', onSerial);
    ws.on('close', () => host.off('serial', onSerial));
    ws.on('message', (data, isBinary) => {
      const bytes = isBinary ? new Uint8Array(data as Buffer) : new TextEncoder().encode(String(data));
      host.serialInput(name, bytes);
    });
  }

  function attachScreen(ws: WebSocket, name: string): void {
    const cur = host.currentScreen(name);
    if (cur) ws.send(screenJson(cur, true));
    const onScreen = (vm: string, u: ScreenUpdate) => {
      if (vm === name) ws.send(screenJson(u, false));
    };
    host.on('screen', onScreen);
    const unwatch = host.watchScreen(name);
    ws.on('close', () => {
      host.off('screen', onScreen);
      unwatch();
    });
    ws.on('message', (data) => {
      let m: { type?: unknown; code?: unknown; down?: unknown; text?: unknown; dx?: unknown; dy?: unknown; buttons?: unknown; dz?: unknown };
      try {
        m = JSON.parse(String(data));
      } catch {
        ws.send(JSON.stringify({ type: 'error', message: 'screen messages are JSON: {"type":"key","code":"KeyA","down":true}, {"type":"mouse","dx":0,"dy":0,"buttons":0,"dz":0}, {"type":"ctrl-alt-del"} or {"type":"text","text":"ls\\n"}' }));
        return;
      }
      if (m.type === 'key' && typeof m.code === 'string' && typeof m.down === 'boolean') host.keyInput(name, m.code, m.down);
      else if (m.type === 'mouse') {
        // untrusted: whole numbers in the range a PS/2 packet sequence can carry
        const int = (v: unknown, lim: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.max(-lim, Math.min(lim, Math.trunc(v))) : 0);
        host.mouseInput(name, int(m.dx, 4096), int(m.dy, 4096), int(m.buttons, 31) & 31, int(m.dz, 8));
      } else if (m.type === 'ctrl-alt-del') {
        for (const c of ['ControlLeft', 'AltLeft', 'Delete']) host.keyInput(name, c, true);
        for (const c of ['Delete', 'AltLeft', 'ControlLeft']) host.keyInput(name, c, false);
      } else if (m.type === 'text' && typeof m.text === 'string') host.typeText(name, new TextEncoder().encode(m.text));
      else ws.send(JSON.stringify({ type: 'error', message: `unknown screen message type '${String(m.type)}'` }));
    });
  }

  function attachEvents(ws: WebSocket): void {
    ws.send(JSON.stringify({ type: 'hello', vms: host.list() }));
    const onEvent = (e: object) => ws.send(JSON.stringify(e));
    host.on('event', onEvent);
    ws.on('close', () => host.off('event', onEvent));
  }

  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        loopDelay.stop();
        for (const ws of sockets) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
