/**
 * The daemon seen from a client on the same machine (the CLI): find the
 * daemon that serves a directory (its daemon.json and token file), make API
 * requests, and open its WebSockets. Errors carry the daemon's own message.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { INFO_FILE, TOKEN_FILE } from './serve.js';

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

export interface DaemonAddress {
  url: string;
  token: string;
}

/** The daemon running for `dir`, or null when none is (no daemon.json, or its process is gone). */
export function findDaemon(dir: string): DaemonAddress | null {
  const info = join(dir, INFO_FILE);
  if (!existsSync(info)) return null;
  try {
    const j = JSON.parse(readFileSync(info, 'utf8')) as { url: string; pid: number };
    process.kill(j.pid, 0); // throws when the process no longer exists
    return { url: j.url, token: readFileSync(join(dir, TOKEN_FILE), 'utf8').trim() };
  } catch {
    return null;
  }
}

export class DaemonClient {
  constructor(readonly address: DaemonAddress) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.address.url + path, {
        method,
        headers: { authorization: `Bearer ${this.address.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ClientError(`cannot reach the daemon at ${this.address.url}: ${(e as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        msg = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        // not JSON: show it as it is
      }
      throw new ClientError(msg, res.status);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A WebSocket on the daemon (path under /api/). */
  socket(path: string): WebSocket {
    return new WebSocket(this.address.url.replace(/^http/, 'ws') + path, { headers: { authorization: `Bearer ${this.address.token}` } });
  }
}
