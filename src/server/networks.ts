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
 *
 * The API lists, adds and removes networks (networks.json entries): a
 * network is listed when networks.json declares it or a VM's NIC names it.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineSpec } from '../vmm/spec.js';
import { openNetworkSwitch, parseSwitchDhcp, type OpenedSwitch, type SwitchDhcpConfig } from '../vmm/switch.js';

export const NETWORKS_FILE = 'networks.json';

/** One entry of networks.json. */
export interface NetworkConfig {
  /** The switch's DHCP server: `10.0.3.0/24[,router=ADDR][,dns=ADDR]` (tsvm switch -dhcp). */
  dhcp?: string;
}

/** A refusal of a networks.json change, with what to do (the host maps it to 4xx). */
export class NetworkConfigError extends Error {
  constructor(
    readonly code: 'bad-request' | 'conflict' | 'not-found',
    message: string,
  ) {
    super(message);
  }
}

export class DaemonNetworks {
  private readonly _open = new Map<string, Promise<OpenedSwitch | null>>();

  constructor(
    /** The daemon's directory (for networks.json). */
    private readonly _dir: string,
    private readonly _log: (line: string) => void = () => {},
  ) {}

  private get _file(): string {
    return join(this._dir, NETWORKS_FILE);
  }

  /** networks.json as it is (empty when there is none); a file that is not a JSON object is an error naming it. */
  config(): Record<string, NetworkConfig> {
    if (!existsSync(this._file)) return {};
    let all: unknown;
    try {
      all = JSON.parse(readFileSync(this._file, 'utf8'));
    } catch (e) {
      throw new NetworkConfigError('conflict', `${this._file} is not valid JSON (${(e as Error).message}); fix or remove it`);
    }
    if (typeof all !== 'object' || all === null || Array.isArray(all)) throw new NetworkConfigError('conflict', `${this._file} must hold a JSON object of networks; fix or remove it`);
    // keyed by network names, which may be 'constructor' or 'toString': no prototype to find those on
    return Object.assign(Object.create(null) as Record<string, NetworkConfig>, all);
  }

  private _write(all: Record<string, NetworkConfig>): void {
    const tmp = `${this._file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n');
    renameSync(tmp, this._file);
  }

  /** Declare network `name` (its DHCP server, if `dhcp` is given: checked here, so a bad one is refused, not logged later). */
  add(name: string, dhcp: string | null): void {
    if (dhcp !== null) {
      try {
        parseSwitchDhcp(dhcp);
      } catch (e) {
        throw new NetworkConfigError('bad-request', `dhcp: ${(e as Error).message}`);
      }
    }
    const all = this.config();
    if (Object.hasOwn(all, name)) throw new NetworkConfigError('conflict', `there is a network '${name}' already`);
    all[name] = dhcp === null ? {} : { dhcp };
    this._write(all);
    this._log(`network '${name}' added${dhcp === null ? '' : ` (DHCP ${dhcp})`}`);
  }

  /** Remove network `name` from networks.json and stop the daemon's switch for it (the caller checks that no VM uses it). */
  async remove(name: string): Promise<void> {
    const all = this.config();
    if (!Object.hasOwn(all, name)) throw new NetworkConfigError('not-found', `there is no network '${name}'`);
    delete all[name];
    this._write(all);
    const open = this._open.get(name);
    this._open.delete(name);
    (await open)?.close();
    this._log(`network '${name}' removed`);
  }

  /** Whether the daemon serves network `name`'s switch now. */
  served(name: string): boolean {
    return this._served.has(name);
  }

  private readonly _served = new Set<string>();

  /** The DHCP server configured for `name`, if any (a bad entry is logged and ignored). */
  private _dhcp(name: string): SwitchDhcpConfig | undefined {
    try {
      const d: unknown = this.config()[name]?.dhcp;
      if (d === undefined) return undefined;
      if (typeof d !== 'string') throw new Error(`"dhcp" must be a string like "10.0.3.0/24"`);
      return parseSwitchDhcp(d);
    } catch (e) {
      this._log(`${this._file}: network '${name}': ${(e as Error).message}; serving it without DHCP`);
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
          this._served.add(name);
          const close = sw.close.bind(sw);
          return {
            ...sw,
            close: () => {
              this._served.delete(name);
              close();
            },
          };
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
