/**
 * The network options of `tsvm run`, with QEMU's names:
 *   -nic user[,model=e1000][,mac=52:54:00:12:34:56][,id=ID][,hostfwd=tcp:[HADDR]:HPORT-[GADDR]:GPORT]...[,restrict=on]
 *   -netdev user,id=ID[,hostfwd=...][,restrict=on]   with   -device e1000,netdev=ID[,mac=...]
 *   -object filter-dump,id=ID,netdev=ID,file=PATH    (a pcap of what passes through that netdev)
 * and `-nic none`. The result is the MachineConfig.nics list plus what to
 * start before and close after the run.
 */
import type { NicConfig } from '../board/machine.js';
import type { NetBackend } from '../devices/backends.js';
import { UserNet, parseHostForward, type HostForward } from '../net/slirp.js';
import { DumpBackend } from '../net/dump.js';
import { nodeNetHost, openDumpFile } from '../host/node/net.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';

export const NET_OPTIONS: OptionSpec[] = [
  { name: 'nic', value: 'user,...', repeat: true, help: 'a NIC on a user-mode network: user[,model=e1000][,mac=MAC][,id=ID][,hostfwd=tcp::HOSTPORT-:GUESTPORT][,restrict=on], or none' },
  { name: 'netdev', value: 'user,id=ID,...', repeat: true, help: 'a network backend for -device: user,id=ID[,hostfwd=...][,restrict=on]' },
  { name: 'device', value: 'DEV,...', repeat: true, help: 'a device; NICs: e1000,netdev=ID[,mac=MAC]' },
  { name: 'object', value: 'OBJ,...', repeat: true, help: 'filter-dump,id=ID,netdev=ID,file=PATH: write a pcap of the netdev\'s traffic' },
];

export const NIC_MODELS = ['e1000'];

/** Split `type,key=value,...` (a key may repeat). */
export function parseKeyValues(text: string, what: string): { type: string; kv: Map<string, string[]> } {
  const [type, ...rest] = text.split(',');
  const kv = new Map<string, string[]>();
  for (const item of rest) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`run: ${what} '${text}': '${item}' is not key=value`);
    const k = item.slice(0, eq);
    kv.set(k, [...(kv.get(k) ?? []), item.slice(eq + 1)]);
  }
  return { type, kv };
}

function only(kv: Map<string, string[]>, key: string, what: string): string | undefined {
  const v = kv.get(key);
  if (v && v.length > 1) throw new UsageError(`run: ${what}: ${key}= given twice`);
  return v?.[0];
}

function onOff(v: string | undefined, what: string): boolean {
  if (v === undefined || v === 'off' || v === 'no' || v === 'false') return false;
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  throw new UsageError(`run: ${what}: '${v}' is not on or off`);
}

export function parseMac(text: string, what: string): Uint8Array {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new UsageError(`run: ${what}: mac '${text}' is not six hex bytes like 52:54:00:12:34:56`);
  const b = Uint8Array.from(m.slice(1).map((h) => parseInt(h, 16)));
  if (b[0] & 1) throw new UsageError(`run: ${what}: mac '${text}' is a multicast address; a NIC needs a unicast one`);
  return b;
}

interface UserSpec {
  hostfwd: HostForward[];
  restrict: boolean;
}

function userSpec(kv: Map<string, string[]>, what: string, known: string[]): UserSpec {
  for (const k of kv.keys()) if (!known.includes(k)) throw new UsageError(`run: ${what}: unknown key '${k}' (known: ${known.join(', ')})`);
  const hostfwd = (kv.get('hostfwd') ?? []).map((h) => {
    try {
      return parseHostForward(h);
    } catch (e) {
      throw new UsageError(`run: ${what}: ${(e as Error).message}`);
    }
  });
  return { hostfwd, restrict: onOff(only(kv, 'restrict', what), `${what} restrict`) };
}

export interface OpenedNetworks {
  nics: NicConfig[];
  close(): void;
}

/** Build the NICs and backends the options ask for and open their host sockets. */
export async function openNetworks(opts: Parsed): Promise<OpenedNetworks> {
  const netdevs = new Map<string, UserSpec>();
  const nicSpecs: { netdev: string; mac?: Uint8Array; model: 'e1000' }[] = [];
  let anon = 0;
  for (const text of opts.get('netdev') ?? []) {
    const { type, kv } = parseKeyValues(text, '-netdev');
    if (type !== 'user') throw new UsageError(`run: -netdev '${type}' is not known; tsvm offers: user`);
    const id = only(kv, 'id', '-netdev');
    if (!id) throw new UsageError(`run: -netdev ${text}: needs id=NAME (for -device ...,netdev=NAME)`);
    if (netdevs.has(id)) throw new UsageError(`run: -netdev id '${id}' is used twice`);
    kv.delete('id');
    netdevs.set(id, userSpec(kv, `-netdev ${id}`, ['hostfwd', 'restrict']));
  }
  for (const text of opts.get('nic') ?? []) {
    const { type, kv } = parseKeyValues(text, '-nic');
    if (type === 'none') continue;
    if (type !== 'user') throw new UsageError(`run: -nic '${type}' is not known; use -nic user,... or -nic none`);
    const model = only(kv, 'model', '-nic') ?? 'e1000';
    if (!NIC_MODELS.includes(model)) throw new UsageError(`run: -nic model '${model}' is not known; tsvm offers: ${NIC_MODELS.join(', ')}`);
    const id = only(kv, 'id', '-nic') ?? `nic${anon++}`;
    const mac = only(kv, 'mac', '-nic');
    for (const k of ['model', 'id', 'mac']) kv.delete(k);
    if (netdevs.has(id)) throw new UsageError(`run: -nic id '${id}' is used twice`);
    netdevs.set(id, userSpec(kv, `-nic ${id}`, ['hostfwd', 'restrict']));
    nicSpecs.push({ netdev: id, mac: mac ? parseMac(mac, '-nic') : undefined, model: 'e1000' });
  }
  const used = new Set<string>();
  for (const text of opts.get('device') ?? []) {
    const { type, kv } = parseKeyValues(text, '-device');
    if (!NIC_MODELS.includes(type)) throw new UsageError(`run: -device '${type}' is not known; the devices are: ${NIC_MODELS.join(', ')}`);
    const nd = only(kv, 'netdev', `-device ${type}`);
    if (!nd) throw new UsageError(`run: -device ${text}: needs netdev=ID naming a -netdev`);
    if (!netdevs.has(nd)) throw new UsageError(`run: -device ${text}: there is no -netdev with id '${nd}'`);
    if (used.has(nd)) throw new UsageError(`run: netdev '${nd}' is given to two devices`);
    used.add(nd);
    const mac = only(kv, 'mac', '-device');
    for (const k of kv.keys()) if (k !== 'netdev' && k !== 'mac') throw new UsageError(`run: -device ${type}: unknown key '${k}'`);
    nicSpecs.push({ netdev: nd, mac: mac ? parseMac(mac, '-device') : undefined, model: 'e1000' });
  }
  const dumps = new Map<string, string>();
  for (const text of opts.get('object') ?? []) {
    const { type, kv } = parseKeyValues(text, '-object');
    if (type !== 'filter-dump') throw new UsageError(`run: -object '${type}' is not known; tsvm offers: filter-dump`);
    const nd = only(kv, 'netdev', '-object filter-dump');
    const file = only(kv, 'file', '-object filter-dump');
    if (!only(kv, 'id', '-object filter-dump')) throw new UsageError('run: -object filter-dump needs id=NAME');
    if (!nd || !file) throw new UsageError('run: -object filter-dump needs netdev=ID and file=PATH');
    if (!netdevs.has(nd)) throw new UsageError(`run: -object filter-dump: there is no netdev '${nd}' (name a -netdev id, or a -nic id=)`);
    dumps.set(nd, file);
  }

  const opened: NetBackend[] = [];
  const nics: NicConfig[] = [];
  try {
    for (const spec of nicSpecs) {
      const u = netdevs.get(spec.netdev) as UserSpec;
      const user = new UserNet(nodeNetHost, u);
      user.onLog = (l) => process.stderr.write(`tsvm: ${l}\n`);
      let backend: NetBackend = user;
      opened.push(user);
      try {
        await user.start();
      } catch (e) {
        throw new UsageError(`run: netdev '${spec.netdev}': ${(e as Error).message}`);
      }
      const file = dumps.get(spec.netdev);
      if (file) {
        try {
          backend = new DumpBackend(user, openDumpFile(file), () => Date.now());
        } catch (e) {
          throw new UsageError(`run: filter-dump: cannot write ${file}: ${(e as Error).message}`);
        }
        opened[opened.length - 1] = backend;
      }
      nics.push({ model: spec.model, mac: spec.mac, backend });
    }
  } catch (e) {
    for (const b of opened) b.close();
    throw e;
  }
  return { nics, close: () => opened.forEach((b) => b.close()) };
}
