/**
 * A `tsvm serve` daemon started by a test, and a client that checks every
 * response against the OpenAPI document the daemon serves: a status the
 * document does not list for that path and method, a media type it does not
 * list, or a JSON body its schema refuses fails the test.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { request } from 'node:http';
import WebSocket from 'ws';
import { alive, TsvmChild, type ChildOptions } from './child.js';

export interface ApiResponse {
  status: number;
  type: string;
  headers: Headers;
  json: unknown;
  bytes: Uint8Array;
  text: string;
}

type OpenApiDoc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown>; $ref?: string }> }>>; components: { responses: Record<string, { content?: Record<string, unknown> }> } };

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * A client of a daemon at `url` that checks every response against the
 * OpenAPI document the daemon serves (for a daemon the test runs in its own
 * process; Daemon below starts one as a child).
 */
export class ApiClient {
  private _doc: OpenApiDoc | null = null;
  private readonly _ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  /** Responses checked against the document so far. */
  checked = 0;

  constructor(
    public url = '',
    public token = '',
  ) {}

  /** What a failed request's message adds about the daemon (a Daemon child: its status and last output). */
  protected serverState(): string {
    return '';
  }

  /** Load the OpenAPI document the daemon serves. */
  async load(): Promise<this> {
    const r = await fetch(`${this.url}/api/openapi.json`, { headers: { authorization: `Bearer ${this.token}` } });
    this._doc = (await r.json()) as OpenApiDoc;
    this._ajv.addSchema(this._doc as object, 'api');
    return this;
  }

  /** The document's template for a concrete path (/api/vms/a/start -> /api/vms/{name}/start). */
  private _template(path: string): string | null {
    const p = path.split('?')[0];
    for (const t of Object.keys((this._doc as OpenApiDoc).paths)) {
      const re = new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$');
      if (re.test(p)) return t;
    }
    return null;
  }

  /** Check a response against the document; throws with the reason when it does not fit. */
  private _check(method: string, path: string, r: ApiResponse): void {
    const doc = this._doc as OpenApiDoc;
    const t = this._template(path);
    if (t === null) {
      // paths outside the document answer only with errors, which must still be the Error shape
      if (r.status < 400) throw new Error(`${method} ${path} answered ${r.status} but the OpenAPI document has no such path`);
      this._validate('api#/components/schemas/Error', r.json, `${method} ${path} ${r.status}`);
      this.checked++;
      return;
    }
    const op = doc.paths[t][method.toLowerCase()];
    if (!op) {
      if (r.status !== 405) throw new Error(`${method} ${path} answered ${r.status}; the document has no ${method} there, so 405 was due`);
      this._validate('api#/components/schemas/Error', r.json, `${method} ${path} 405`);
      this.checked++;
      return;
    }
    let resp = op.responses[String(r.status)];
    let pointer = `api#/paths/${esc(t)}/${method.toLowerCase()}/responses/${r.status}`;
    if (!resp) throw new Error(`${method} ${path} answered ${r.status}, a status the OpenAPI document does not list (${Object.keys(op.responses).join(', ')}): ${r.text.slice(0, 300)}`);
    if (resp.$ref) {
      const name = resp.$ref.split('/').pop() as string;
      resp = doc.components.responses[name];
      pointer = `api#/components/responses/${name}`;
    }
    if (!resp.content) {
      if (r.bytes.length) throw new Error(`${method} ${path} ${r.status} has a body the document does not describe`);
    } else {
      const type = r.type.split(';')[0].trim();
      if (!(type in resp.content)) throw new Error(`${method} ${path} ${r.status} is ${type}; the document lists ${Object.keys(resp.content).join(', ')}`);
      if (type === 'application/json') this._validate(`${pointer}/content/application~1json/schema`, r.json, `${method} ${path} ${r.status}`);
    }
    this.checked++;
  }

  private _validate(ref: string, value: unknown, what: string): void {
    const v = this._ajv.compile({ $ref: ref });
    if (!v(value)) throw new Error(`${what}: the body does not fit the OpenAPI document: ${this._ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 500)}`);
  }

  /** A request with the token (unless `token` says otherwise), checked against the document. */
  async api(method: string, path: string, body?: unknown, o: { token?: string | null; headers?: Record<string, string>; raw?: string | Uint8Array } = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token === undefined ? this.token : o.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let payload: string | Uint8Array | undefined = o.raw;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    // node:http sends the path as written (fetch would resolve '..' and '%2e%2e' itself)
    const send = (fresh: boolean) => new Promise<{ status: number; headers: Headers; bytes: Uint8Array }>((resolve, reject) => {
      const u = new URL(this.url);
      const req = request({ host: u.hostname, port: u.port, path, method, headers, ...(fresh ? { agent: false } : {}) }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') h.set(k, v);
          resolve({ status: r.statusCode ?? 0, headers: h, bytes: new Uint8Array(Buffer.concat(chunks)) });
        });
        r.on('error', reject);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        // a kept-alive connection the server closed as this request went out (Node's documented
        // keep-alive race): the request never reached the daemon, so send it once more on a new one
        if (!fresh && req.reusedSocket && e.code === 'ECONNRESET') resolve(send(true));
        else reject(new Error(`${method} ${path}: ${e.message}${this.serverState()}`));
      });
      req.end(payload);
    });
    const res = await send(false);
    const bytes = res.bytes;
    const type = res.headers.get('content-type') ?? '';
    const text = new TextDecoder().decode(bytes);
    const r: ApiResponse = { status: res.status, type, headers: res.headers, bytes, text, json: type.startsWith('application/json') ? JSON.parse(text) : undefined };
    this._check(method, path, r);
    return r;
  }

  /**
   * A VM's stats from a sample of its process: the daemon answers within a
   * second, and before the process has answered once (it is starting, or too
   * busy) that answer has no figures (`sampleAgeMs` null), so this asks again
   * until one has them, for `limitMs` at most.
   */
  async sampledStats(name: string, limitMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const r = await this.api('GET', `/api/vms/${name}/stats`);
      const s = r.json as Record<string, unknown>;
      if (r.status !== 200) throw new Error(`GET /api/vms/${name}/stats: ${r.status} ${r.text}`);
      if (s.sampleAgeMs !== null) return s;
      if (s.state === 'stopped' || s.state === 'crashed') throw new Error(`VM ${name} is ${String(s.state)}: no sample to wait for`);
      if (Date.now() > deadline) throw new Error(`VM ${name}'s process gave no sample within ${limitMs / 1000} s: ${r.text}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** Open a WebSocket with the token in the query (as the page does with its cookie). */
  socket(path: string, token: string | null = this.token): WebSocket {
    const u = new URL(this.url.replace(/^http/, 'ws') + path);
    if (token !== null) u.searchParams.set('token', token);
    return new WebSocket(u);
  }

}

/** A `tsvm serve` child on a directory of its own (or `dir`), with an ApiClient. */
export class Daemon extends ApiClient {
  protected override serverState(): string {
    return `${this.child.exitDescription ? ` (the daemon ended: ${this.child.exitDescription})` : ''}; the daemon's last output:\n${this.child.tail()}`;
  }

  readonly dir: string;
  readonly child: TsvmChild;

  constructor(args: string[] = [], dir?: string, opts: ChildOptions = {}) {
    super();
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'tsvm-daemon-'));
    this.child = new TsvmChild(['serve', '--dir', this.dir, '--listen', '127.0.0.1:0', ...args], opts);
  }

  /** Wait for the daemon to print its URL and token; load the OpenAPI document. */
  async ready(): Promise<this> {
    const out = await this.child.waitFor(/open (http:\S+)\/\?token=([0-9a-f]{64})\n/, 0, 60_000, 'the URL line');
    const m = /open (http:\S+)\/\?token=([0-9a-f]{64})\n/.exec(out) as RegExpExecArray;
    this.url = m[1];
    this.token = m[2];
    return this.load();
  }

  /** VM processes the test has seen (their pids from the API): killAll() ends those still alive. */
  readonly vmPids: number[] = [];

  /** End the daemon and the VM processes in vmPids at once (SIGKILL), for a test's end. */
  killAll(): void {
    this.child.kill();
    for (const pid of this.vmPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }

  /** `p`, or a failure with the daemon's last output as soon as the daemon ends before it settles. */
  orGone<T>(p: Promise<T>, what: string): Promise<T> {
    return Promise.race([p, this.child.exited.then(() => Promise.reject(new Error(`the daemon ended (${this.child.exitDescription}) before ${what}; its last output:\n${this.child.tail()}`)))]);
  }

  /** Stop the daemon with SIGTERM and wait for it to end; returns its exit status. */
  async stop(limitMs = 120_000): Promise<number | null> {
    this.child.child.kill('SIGTERM');
    return this.child.exit(limitMs);
  }
}

/** Messages of an event-stream socket, with a wait for one that passes a test. */
export class EventLog {
  readonly events: Record<string, unknown>[] = [];
  private _waiters: (() => void)[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.events.push(JSON.parse(String(d)) as Record<string, unknown>);
      for (const w of this._waiters.splice(0)) w();
    });
  }
  async waitFor(test: (e: Record<string, unknown>) => boolean, limitMs: number, what: string, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const e = this.events.slice(from).find(test);
      if (e) return e;
      if (this.ws.readyState > WebSocket.OPEN) throw new Error(`the event stream closed before ${what}; events: ${JSON.stringify(this.events).slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${limitMs / 1000} s; events: ${JSON.stringify(this.events).slice(-2000)}`);
      await new Promise<void>((r) => {
        this._waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }
}

export function opened(ws: WebSocket): Promise<void> {
  return new Promise((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
}

export interface ProgressEvent {
  vm: string;
  operation: string;
  done: number;
  total: number;
  percent: number;
}

/**
 * The progress events of one operation in an event log, once its 100 % has
 * come (the event and the request's answer travel on different
 * connections), checked: from 0 to 100 %, never backwards, each percent the
 * whole part of done/total. Throws with the events when they are not so.
 */
export async function progressOf(log: EventLog, vm: string, operation: string): Promise<ProgressEvent[]> {
  await log.waitFor((e) => e.type === 'progress' && e.vm === vm && e.operation === operation && e.percent === 100, 30_000, `the end of ${operation} of ${vm}`);
  const p = log.events.filter((e) => e.type === 'progress' && e.vm === vm && e.operation === operation) as unknown as ProgressEvent[];
  const show = JSON.stringify(p).slice(0, 2000);
  if (p.length < 2 || p[0].done !== 0 || p[0].percent !== 0) throw new Error(`${operation} of ${vm}: the progress does not start at 0: ${show}`);
  const last = p[p.length - 1];
  if (last.done !== last.total || last.percent !== 100) throw new Error(`${operation} of ${vm}: the progress does not end at 100 %: ${show}`);
  for (let i = 1; i < p.length; i++) {
    const bytes = p[i].total === p[i - 1].total;
    if ((bytes && p[i].done < p[i - 1].done) || p[i].percent < p[i - 1].percent || p[i].percent !== Math.floor((p[i].done * 100) / p[i].total)) throw new Error(`${operation} of ${vm}: the progress goes backwards or misstates its percent at ${i}: ${show}`);
  }
  return p;
}
