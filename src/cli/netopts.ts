/**
 * The network options of `tsvm run`, with QEMU's names, turned into the
 * spec's `nics` list (src/vmm/netspec.ts):
 *   -nic user[,model=e1000|virtio-net-pci][,mac=52:54:00:12:34:56][,id=ID][,hostfwd=tcp:[HADDR]:HPORT-[GADDR]:GPORT]...[,restrict=on]
 *   -netdev user,id=ID[,hostfwd=...][,restrict=on]   with   -device e1000,netdev=ID[,mac=...]
 *   -object filter-dump,id=ID,netdev=ID,file=PATH    (a pcap of what passes through that netdev)
 * and `-nic none`.
 */
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { NIC_MODELS, type NicSpec } from '../vmm/netspec.js';
import { VIRTIO_DEVICE_TYPES } from './virtio.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';
import { onOff, splitQemuList } from './qemuopts.js';

export const NET_OPTIONS: OptionSpec[] = [
  { name: 'nic', value: 'user,...', repeat: true, help: 'a NIC on a user-mode network (model: virtio-net-pci for the default guest, e1000 otherwise): user[,model=e1000|virtio-net-pci][,mac=MAC][,id=ID][,hostfwd=tcp::HOSTPORT-:GUESTPORT][,restrict=on], or none' },
  { name: 'netdev', value: 'TYPE,id=ID,...', repeat: true, help: 'a network backend for -device: user,id=ID[,hostfwd=...][,restrict=on], or socket,id=ID,listen=[HOST]:PORT|connect=HOST:PORT (a private link to another tsvm)' },
  { name: 'object', value: 'OBJ,...', repeat: true, help: "filter-dump,id=ID,netdev=ID,file=PATH: write a pcap of the netdev's traffic" },
];

/** Split `type,key=value,...` (a key may repeat; ",," is a literal comma). */
export function parseKeyValues(text: string, what: string): { type: string; kv: Map<string, string[]> } {
  const [type, ...rest] = splitQemuList(text);
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

interface UserNetOpts {
  hostfwd: string[];
  restrict: boolean;
  socket?: { listen?: string; connect?: string };
}

function userOpts(kv: Map<string, string[]>, what: string): UserNetOpts {
  for (const k of kv.keys()) if (k !== 'hostfwd' && k !== 'restrict') throw new UsageError(`run: ${what}: unknown key '${k}' (known: hostfwd, restrict)`);
  return { hostfwd: kv.get('hostfwd') ?? [], restrict: onOff(only(kv, 'restrict', what), `${what} restrict`) };
}

/**
 * The NICs the options ask for (checked by the spec validator afterwards).
 * `defaultModel` is the model of a `-nic user` without model=: virtio-net-pci
 * for a guest known to drive it (the default guest), else e1000 as in QEMU,
 * which any guest since the 2000s has a driver for.
 */
export function nicsFromOptions(opts: Parsed, defaultModel: NicSpec['model'] = 'e1000'): NicSpec[] {
  const netdevs = new Map<string, UserNetOpts>();
  const nics: { model: NicSpec['model']; netdev: string; mac: string | null }[] = [];
  let anon = 0;
  for (const text of opts.get('netdev') ?? []) {
    const { type, kv } = parseKeyValues(text, '-netdev');
    if (type !== 'user' && type !== 'socket') throw new UsageError(`run: -netdev '${type}' is not known; tsvm offers: user, socket`);
    const id = only(kv, 'id', '-netdev');
    if (!id) throw new UsageError(`run: -netdev ${text}: needs id=NAME (for -device ...,netdev=NAME)`);
    if (netdevs.has(id)) throw new UsageError(`run: -netdev id '${id}' is used twice`);
    kv.delete('id');
    if (type === 'socket') {
      const listen = only(kv, 'listen', `-netdev ${id}`);
      const conn = only(kv, 'connect', `-netdev ${id}`);
      for (const k of kv.keys()) if (k !== 'listen' && k !== 'connect') throw new UsageError(`run: -netdev socket: unknown key '${k}' (known: listen, connect)`);
      if (!listen === !conn) throw new UsageError(`run: -netdev socket,id=${id}: give one of listen=[HOST]:PORT and connect=HOST:PORT`);
      netdevs.set(id, { hostfwd: [], restrict: false, socket: listen ? { listen } : { connect: conn } });
    } else netdevs.set(id, userOpts(kv, `-netdev ${id}`));
  }
  for (const text of opts.get('nic') ?? []) {
    const { type, kv } = parseKeyValues(text, '-nic');
    if (type === 'none') continue;
    if (type !== 'user') throw new UsageError(`run: -nic '${type}' is not known; use -nic user,... or -nic none`);
    const model = only(kv, 'model', '-nic') ?? defaultModel;
    if (!NIC_MODELS.includes(model)) throw new UsageError(`run: -nic model '${model}' is not known; tsvm offers: ${NIC_MODELS.join(', ')}`);
    const id = only(kv, 'id', '-nic') ?? `nic${anon++}`;
    const mac = only(kv, 'mac', '-nic') ?? null;
    for (const k of ['model', 'id', 'mac']) kv.delete(k);
    if (netdevs.has(id)) throw new UsageError(`run: -nic id '${id}' is used twice`);
    netdevs.set(id, userOpts(kv, `-nic ${id}`));
    nics.push({ model: model as NicSpec['model'], netdev: id, mac });
  }
  const used = new Set<string>();
  for (const text of opts.get('device') ?? []) {
    const { type, kv } = parseKeyValues(text, '-device');
    if (VIRTIO_DEVICE_TYPES.includes(type)) continue; // built by the virtio options (virtio.ts)
    if (!NIC_MODELS.includes(type)) throw new UsageError(`run: -device '${type}' is not known; the devices are: ${[...NIC_MODELS, ...VIRTIO_DEVICE_TYPES].join(', ')}`);
    const nd = only(kv, 'netdev', `-device ${type}`);
    if (!nd) throw new UsageError(`run: -device ${text}: needs netdev=ID naming a -netdev`);
    if (!netdevs.has(nd)) throw new UsageError(`run: -device ${text}: there is no -netdev with id '${nd}'`);
    if (used.has(nd)) throw new UsageError(`run: netdev '${nd}' is given to two devices`);
    used.add(nd);
    for (const k of kv.keys()) if (k !== 'netdev' && k !== 'mac') throw new UsageError(`run: -device ${type}: unknown key '${k}'`);
    nics.push({ model: type as NicSpec['model'], netdev: nd, mac: only(kv, 'mac', '-device') ?? null });
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
    dumps.set(nd, resolve(file));
  }
  return nics.map((n) => {
    const u = netdevs.get(n.netdev) as UserNetOpts;
    const dump = dumps.get(n.netdev) ?? null;
    if (u.socket) return { model: n.model, mac: n.mac, net: 'socket', ...u.socket, hostfwd: [], restrict: false, dump };
    return { model: n.model, mac: n.mac, net: 'user', hostfwd: u.hostfwd, restrict: u.restrict, dump };
  });
}

/** Make sure every forwarded host port can be listened on, so a port in use stops tsvm before the guest boots. */
export async function checkHostForwards(nics: readonly NicSpec[]): Promise<void> {
  for (const n of nics) {
    for (const h of n.hostfwd) {
      const m = /^(?:tcp)?:([^:]*):(\d+)-/.exec(h);
      if (!m) continue; // the spec validator reports it
      const [addr, port] = [m[1], Number(m[2])];
      await new Promise<void>((res, rej) => {
        const s = createServer();
        s.once('error', (e: NodeJS.ErrnoException) =>
          rej(new UsageError(`run: hostfwd ${h}: ${e.code === 'EADDRINUSE' ? `host port ${port} is already in use; pick another` : `cannot listen on ${addr || '*'}:${port} (${e.message})`}`)),
        );
        s.listen(port, addr || undefined, () => s.close(() => res()));
      });
    }
  }
}
