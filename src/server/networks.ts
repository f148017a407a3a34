/**
 * The daemon's private networks: a VM whose spec has a NIC on
 * `"net": "switch", "network": NAME` joins the switch of network NAME, which
 * the daemon serves itself (src/vmm/switch.ts) at the network's well-known
 * socket the first time one of its VMs starts. VMs run in worker threads and
 * reach the switch through that socket like any other tsvm process, so a
 * `tsvm run -nic switch,network=NAME` on the same machine joins the same
 * network. If another process already serves the socket (a `tsvm switch
 * -network NAME`), the daemon's VMs join that one instead.
 *
 * A network's DHCP server is configured in `networks.json` in the daemon's
 * directory: `{ "lab": { "dhcp": "10.0.3.0/24" } }` (the switch's -dhcp).
 * Switches stay up while the daemon runs, so VMs can come and go.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineSpec } from '../vmm/spec.js';
import { openNetworkSwitch, parseSwitchDhcp, type OpenedSwitch, type SwitchDhcpConfig } from '../vmm/switch.js';

export const NETWORKS_FILE = 'networks.json';

export class DaemonNetworks {
  private readonly _open = new Map<string, Promise<OpenedSwitch | null>>();

  constructor(
    /** The daemon's directory (for networks.json). */
    private readonly _dir: string,
    private readonly _log: (line: string) => void = () => {},
  ) {}

  /** The DHCP server configured for `name`, if any (a bad entry is logged and ignored). */
  private _dhcp(name: string): SwitchDhcpConfig | undefined {
    const path = join(this._dir, NETWORKS_FILE);
    if (!existsSync(path)) return undefined;
    try {
      const all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { dhcp?: unknown }>;
      const d = all?.[name]?.dhcp;
      if (d === undefined) return undefined;
      if (typeof d !== 'string') throw new Error(`"dhcp" must be a string like "10.0.3.0/24"`);
      return parseSwitchDhcp(d);
    } catch (e) {
      this._log(`${path}: network '${name}': ${(e as Error).message}; serving it without DHCP`);
      return undefined;
    }
  }

  /** Serve every private network the spec names that nobody serves yet (VMs retry until it is up). */
  ensure(spec: MachineSpec): void {
    for (const n of spec.nics ?? []) {
      const name = n.net === 'switch' ? n.network : undefined;
      if (name === undefined || this._open.has(name)) continue;
      const opening = openNetworkSwitch(name, { dhcp: this._dhcp(name), onLog: (l) => this._log(`network '${name}': ${l}`) }).then(
        (sw) => {
          this._log(`network '${name}': serving ${sw.description}`);
          return sw;
        },
        (e: Error) => {
          // most likely a `tsvm switch -network NAME` serves it: the VMs join that; look again next time
          this._log(`network '${name}': not served by the daemon (${e.message})`);
          this._open.delete(name);
          return null;
        },
      );
      this._open.set(name, opening);
    }
  }

  /** Stop every switch the daemon serves. */
  async close(): Promise<void> {
    const all = [...this._open.values()];
    this._open.clear();
    for (const sw of await Promise.all(all)) sw?.close();
  }
}
