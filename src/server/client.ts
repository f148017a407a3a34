/**
 * The daemon seen from a client on the same machine (the CLI): find the
 * daemon that serves a directory (its daemon.json and token file), make API
 * requests, and open its WebSockets. Errors carry the daemon's own message.
 */
import WebSocket from 'ws';
import { findDaemon, type DaemonAddress } from './discovery.js';

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

export { findDaemon, type DaemonAddress };

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
