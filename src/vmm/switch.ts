/**
 * A virtual switch with its host resources: the switch (src/net/switch.ts)
 * served on a UNIX socket or a loopback TCP port, with its DHCP server when
 * asked. `tsvm switch` runs one in its own process; the daemon runs one per
 * named private network its VMs use.
 */
import { mkdirSync } from 'node:fs';
import { nodeNetHost } from '../host/node/net.js';
import { EthSwitch, type SwitchPort } from '../net/switch.js';
import { serveSwitch } from '../net/switchserver.js';
import { SwitchDhcp, type SwitchDhcpConfig } from '../net/switchdhcp.js';
import { streamAddrText, type StreamAddr } from '../net/socket.js';
import { ip4Text } from '../net/wire.js';
import { checkNetworkDir, networkDir, networkSocketPath } from './netspec.js';

export { parseSwitchDhcp, type SwitchDhcpConfig } from '../net/switchdhcp.js';

export interface OpenedSwitch {
  readonly sw: EthSwitch;
  readonly at: StreamAddr;
  /** What the switch serves, for a banner: "unix:/tmp/lab.sock, DHCP 10.0.3.0/24". */
  readonly description: string;
  close(): void;
}

/** Serve a new switch at `at`; rejects with a message a user understands (the socket is in use, ...). */
export async function openSwitch(at: StreamAddr, o: { dhcp?: SwitchDhcpConfig; onLog?: (line: string) => void } = {}): Promise<OpenedSwitch> {
  const sw = new EthSwitch();
  if (o.onLog) sw.onLog = o.onLog;
  if ('path' in at && at.path.startsWith(networkDir())) {
    checkNetworkDir();
    mkdirSync(networkDir(), { recursive: true, mode: 0o700 });
  }
  const server = await serveSwitch(sw, nodeNetHost, at, o.onLog);
  const dhcp = o.dhcp ? new SwitchDhcp(sw, o.dhcp) : null;
  // a frame the switch drops (a port's queue full: its VM takes frames more slowly than they come) is said, at most every 10 s
  const seen = new Map<SwitchPort, number>();
  const dropLog = setInterval(() => {
    for (const p of sw.ports()) {
      const before = seen.get(p) ?? 0;
      if (p.stats.dropped > before) o.onLog?.(`port ${p.id} (${p.name}): ${p.stats.dropped - before} frames dropped in 10 s (${p.stats.dropped} in all): its queue was full, the VM behind it is not taking frames as fast as they come`);
      seen.set(p, p.stats.dropped);
    }
  }, 10_000);
  dropLog.unref();
  let description = streamAddrText(at);
  if (o.dhcp) {
    const c = o.dhcp;
    description += `, DHCP ${ip4Text(c.net)}/${c.prefix} from ${ip4Text((c.net + 2) >>> 0)}`;
    description += c.router !== null ? `, router ${ip4Text(c.router)}` : ', no router';
  }
  return {
    sw,
    at,
    description,
    close: () => {
      clearInterval(dropLog);
      dhcp?.close();
      server.close();
    },
  };
}

/** The switch of the private network NAME, at its well-known socket (netspec.ts networkSocketPath). */
export function openNetworkSwitch(name: string, o: { dhcp?: SwitchDhcpConfig; onLog?: (line: string) => void } = {}): Promise<OpenedSwitch> {
  return openSwitch({ path: networkSocketPath(name) }, o);
}
