/**
 * The user-mode network's host side on Node: TCP through node:net, UDP
 * through node:dgram, names through dns.lookup (the host's resolver with
 * /etc/hosts, as the host's own programs see names), timers through
 * setTimeout; and the pcap file sink for filter-dump.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns';
import { closeSync, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import type { AcceptedStream, Closable, HostDatagram, HostStream, NetHost, StreamEvents } from '../../net/host.js';
import type { DumpSink } from '../../net/dump.js';

function wrap(sock: Socket, ev: StreamEvents): HostStream {
  let connected = false;
  sock.on('connect', () => {
    connected = true;
    ev.onConnect();
  });
  sock.on('data', (d: Buffer) => ev.onData(new Uint8Array(d.buffer, d.byteOffset, d.length)));
  sock.on('end', () => ev.onEnd());
  sock.on('drain', () => ev.onDrain());
  sock.on('error', (e: NodeJS.ErrnoException) => ev.onError(e.code ?? e.message, !connected && e.code === 'ECONNREFUSED'));
  // the half-close is ours to make: keep the socket writable after the peer's FIN
  return {
    write: (d) => {
      if (!sock.destroyed) sock.write(Buffer.from(d));
    },
    get pending() {
      return sock.writableLength;
    },
    end: () => sock.end(),
    destroy: () => sock.destroy(),
    pause: () => sock.pause(),
    resume: () => sock.resume(),
  };
}

export const nodeNetHost: NetHost = {
  connect(addr: string, port: number, ev: StreamEvents): HostStream {
    const sock = new Socket({ allowHalfOpen: true });
    const h = wrap(sock, ev);
    sock.connect(port, addr);
    return h;
  },

  listen(addr: string, port: number, onAccept: (s: AcceptedStream) => void): Promise<Closable> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
        onAccept({
          peer: `${sock.remoteAddress}:${sock.remotePort}`,
          accept: (ev) => wrap(sock, ev),
        });
      });
      server.once('error', (e: NodeJS.ErrnoException) => {
        const where = `${addr || '*'}:${port}`;
        reject(new Error(e.code === 'EADDRINUSE' ? `host port ${where} is already in use; pick another port` : `cannot listen on ${where}: ${e.message}`));
      });
      server.listen(port, addr || undefined, () => {
        server.unref();
        resolve({ close: () => server.close() });
      });
    });
  },

  connectUnix(path: string, ev: StreamEvents): HostStream {
    const sock = new Socket({ allowHalfOpen: true });
    const h = wrap(sock, ev);
    sock.connect(path);
    return h;
  },

  async listenUnix(path: string, onAccept: (s: AcceptedStream) => void): Promise<Closable> {
    const attempt = () =>
      new Promise<Closable>((resolve, reject) => {
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
          onAccept({ peer: `a process on ${path}`, accept: (ev) => wrap(sock, ev) });
        });
        server.once('error', reject);
        server.listen(path, () => {
          server.unref();
          resolve({ close: () => server.close() });
        });
      });
    try {
      return await attempt();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE') throw new Error(`cannot listen on the UNIX socket ${path}: ${(e as Error).message}`);
    }
    if (!lstatSync(path, { throwIfNoEntry: false })?.isSocket()) throw new Error(`${path} exists and is not a socket; pick another path`);
    // the file exists: someone answering on it keeps it; a dead socket left by a killed process is replaced
    const alive = await new Promise<boolean>((res) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
      s.connect(path);
    });
    if (alive) throw new Error(`something is already listening on ${path} (another switch?); use it, or pick another path`);
    try {
      unlinkSync(path);
      return await attempt();
    } catch (e) {
      throw new Error(`cannot listen on the UNIX socket ${path}: ${(e as Error).message}`);
    }
  },

  udp(onMessage): HostDatagram {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => onMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), rinfo.address, rinfo.port));
    s.on('error', () => {});
    s.unref();
    return {
      send: (d, addr, port) => s.send(d, port, addr),
      close: () => s.close(),
    };
  },

  lookup(name, done): void {
    lookup(name, { family: 4, all: true }, (err, addrs) => {
      if (err) done(err.code === 'ENOTFOUND' ? null : undefined);
      else done(addrs.map((a) => a.address));
    });
  },

  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },

  clearTimer(h) {
    clearTimeout(h as NodeJS.Timeout);
  },
};

/** A pcap file, written as frames pass (synchronously, so a crash loses nothing written before it). */
export function openDumpFile(path: string): DumpSink {
  const fd = openSync(path, 'w');
  let open = true;
  return {
    write: (b) => {
      if (open) writeSync(fd, b);
    },
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
