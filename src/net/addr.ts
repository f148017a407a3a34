/**
 * Stream addresses as the options and vm.json spell them: `[HOST]:PORT`,
 * `unix:PATH`, `tcp:HOST:PORT`. Apart from socket.ts (the socket network
 * itself) so that checking a spec, which every vm.json read does, loads
 * the parsers alone.
 */

/** Where a stream goes: a TCP address and port, or a UNIX socket's path. */
export type StreamAddr = { addr: string; port: number } | { path: string };

/**
 * Parse a switch address: `unix:PATH` (a UNIX socket) or `tcp:HOST:PORT`.
 * With `listening`, a TCP address must be a loopback one: a switch open to
 * the LAN would let anyone there onto the private network.
 */
export function parseStreamAddr(s: string, listening = false): StreamAddr {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path) throw new RangeError(`'${s}': give the socket's path, e.g. unix:/tmp/lab.sock`);
    return { path };
  }
  if (s.startsWith('tcp:')) {
    const a = parseHostPort(s.slice(4));
    if (!a.addr) throw new RangeError(`'${s}': give the host, e.g. tcp:127.0.0.1:${a.port}`);
    if (listening && !['127.0.0.1', 'localhost', '::1'].includes(a.addr)) throw new RangeError(`'${s}': a switch listens on loopback only (127.0.0.1 or ::1), so nothing outside this machine reaches the private network`);
    return a;
  }
  throw new RangeError(`'${s}' is not a switch address; use unix:PATH or tcp:127.0.0.1:PORT`);
}

export function streamAddrText(a: StreamAddr): string {
  return 'path' in a ? `unix:${a.path}` : `tcp:${a.addr}:${a.port}`;
}

/** Parse `[HOST]:PORT`. */
export function parseHostPort(s: string): { addr: string; port: number } {
  const m = /^([^:]*):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new RangeError(`'${s}' is not HOST:PORT (e.g. 127.0.0.1:4444, or :4444 to listen on all addresses)`);
  return { addr: m[1], port };
}
