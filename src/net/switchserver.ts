/**
 * A switch served on a socket, so VMs in other processes can plug in: each
 * connection is one port, carrying frames with the length-prefix framing of
 * QEMU's stream and socket backends (framing.ts). A tsvm joins with `-nic
 * switch,...` (SocketNet connecting); a QEMU can join with `-netdev
 * stream,server=off,addr.type=unix,addr.path=PATH`.
 *
 * A peer that stops reading cannot make the switch buffer without bound:
 * past PEER_PENDING_MAX bytes waiting in its socket, frames for it are
 * dropped (the port's queue limit).
 */
import type { AcceptedStream, Closable, HostStream, NetHost } from './host.js';
import { encodeFrame, FrameReader } from './framing.js';
import type { StreamAddr } from './socket.js';
import type { EthSwitch, SwitchPort } from './switch.js';

/** Bytes queued to one peer's socket beyond which frames for it are dropped. */
export const PEER_PENDING_MAX = 4 << 20;

export async function serveSwitch(sw: EthSwitch, host: NetHost, at: StreamAddr, onLog: (line: string) => void = () => {}): Promise<Closable> {
  const peers = new Set<HostStream>();
  let n = 0;
  const onAccept = (s: AcceptedStream) => {
    const rx = new FrameReader();
    const name = 'path' in at ? `peer ${++n}` : s.peer;
    let port: SwitchPort | null = null;
    let over = false;
    const gone = () => {
      if (over) return;
      over = true;
      port?.remove();
      peers.delete(stream);
      stream.destroy();
    };
    const stream = s.accept({
      onConnect: () => {},
      onData: (d) => {
        const bad = rx.push(d, (f) => port?.input(f));
        if (bad) {
          onLog(`${name} sent a ${bad}-byte frame (not a tsvm or QEMU stream?); dropping it`);
          gone();
        }
      },
      onEnd: gone,
      onError: gone,
      onDrain: () => {},
    });
    port = sw.addPort(name, {
      put: (f) => {
        if (stream.pending > PEER_PENDING_MAX) return false;
        stream.write(encodeFrame(f));
        return true;
      },
    });
    peers.add(stream);
    stream.resume();
  };
  const listener = 'path' in at ? await host.listenUnix(at.path, onAccept) : await host.listen(at.addr, at.port, onAccept);
  return {
    close: () => {
      listener.close();
      for (const p of peers) p.destroy();
      peers.clear();
    },
  };
}
