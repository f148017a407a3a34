/**
 * The network options of `tsvm run`, with QEMU's names, turned into the
 * spec's `nics` list (src/vmm/netspec.ts):
 *   -nic user[,model=e1000|virtio-net-pci][,mac=52:54:00:12:34:56][,id=ID][,hostfwd=tcp:[HADDR]:HPORT-[GADDR]:GPORT]...[,restrict=on]
 *   -netdev user,id=ID[,hostfwd=...][,restrict=on]   with   -device e1000,netdev=ID[,mac=...]
 *   -object filter-dump,id=ID,netdev=ID,file=PATH    (a pcap of what passes through that netdev)
 * and `-nic none`. A virtual switch (tsvm's own spelling; QEMU has none):
 *   -nic switch,network=NAME | path=SOCKET | tcp=127.0.0.1:PORT [,model=...][,mac=...][,id=ID]
 *   -netdev switch,id=ID,network=NAME | path=SOCKET | tcp=127.0.0.1:PORT
 * and QEMU's client spelling of the same connection:
 *   -netdev stream,id=ID,server=off,addr.type=unix,addr.path=SOCKET
 *   -netdev stream,id=ID,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=PORT
 */
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { NETWORK_NAME, NIC_MODELS, type NicSpec } from '../vmm/netspec.js';
import { parseStreamAddr } from '../vmm/netspec.js';
import { VIRTIO_DEVICE_TYPES } from './virtio.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';
import { onOff, splitQemuList } from './qemuopts.js';

export const NET_OPTIONS: OptionSpec[] = [
  { name: 'nic', value: 'user,...', repeat: true, help: 'a NIC on a user-mode network (model: virtio-net-pci for the default guest, e1000 otherwise): user[,model=e1000|virtio-net-pci|ne2k_pci][,mac=MAC][,id=ID][,hostfwd=tcp::HOSTPORT-:GUESTPORT][,restrict=on]; on a private switch: switch,network=NAME|path=SOCKET|tcp=127.0.0.1:PORT[,model=...][,mac=...]; or none' },
  { name: 'netdev', value: 'TYPE,id=ID,...', repeat: true, help: 'a network backend for -device: user,id=ID[,hostfwd=...][,restrict=on]; socket,id=ID,listen=[HOST]:PORT|connect=HOST:PORT (a private link to another tsvm); switch,id=ID,network=NAME|path=SOCKET|tcp=127.0.0.1:PORT (see tsvm switch); stream,id=ID,server=off,addr.type=unix,addr.path=SOCKET (QEMU\'s spelling)' },
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
  switch?: { switch?: string; network?: string };
}

/** The switch a `-nic switch` / `-netdev switch` names: network=NAME, path=SOCKET or tcp=HOST:PORT. */
function switchOpts(kv: Map<string, string[]>, what: string): UserNetOpts {
  for (const k of kv.keys()) if (!['network', 'path', 'tcp'].includes(k)) throw new UsageError(`run: ${what}: unknown key '${k}' (known: network, path, tcp)`);
  const network = only(kv, 'network', what);
  const path = only(kv, 'path', what);
  const tcp = only(kv, 'tcp', what);
  if ([network, path, tcp].filter((v) => v !== undefined).length !== 1) throw new UsageError(`run: ${what}: name the switch with one of network=NAME, path=SOCKET (a tsvm switch's UNIX socket) and tcp=127.0.0.1:PORT`);
  if (network !== undefined) {
    if (!NETWORK_NAME.test(network)) throw new UsageError(`run: ${what}: network '${network}' is not a name (letters, digits, '.', '_', '-')`);
    return { hostfwd: [], restrict: false, switch: { network } };
  }
  const sw = path !== undefined ? `unix:${resolve(path)}` : `tcp:${tcp}`;
  try {
    parseStreamAddr(sw);
  } catch (e) {
    throw new UsageError(`run: ${what}: ${(e as Error).message}`);
  }
  return { hostfwd: [], restrict: false, switch: { switch: sw } };
}

/** QEMU's `-netdev stream` as a client (server=off): the same connection as a switch NIC. */
function streamOpts(kv: Map<string, string[]>, what: string): UserNetOpts {
  const known = ['server', 'addr.type', 'addr.path', 'addr.host', 'addr.port', 'reconnect'];
  for (const k of kv.keys()) if (!known.includes(k)) throw new UsageError(`run: ${what}: unknown key '${k}' (known: ${known.join(', ')})`);
  if (!onOff(only(kv, 'server', what) ?? 'off', `${what} server`) === false) {
    throw new UsageError(`run: ${what}: tsvm does not serve a stream (server=on); run 'tsvm switch --listen unix:PATH' and connect every VM to it with server=off`);
  }
  const type = only(kv, 'addr.type', what);
  if (type === 'unix') {
    const p = only(kv, 'addr.path', what);
    if (!p) throw new UsageError(`run: ${what}: addr.type=unix needs addr.path=SOCKET`);
    return { hostfwd: [], restrict: false, switch: { switch: `unix:${resolve(p)}` } };
  }
  if (type === 'inet') {
    const h = only(kv, 'addr.host', what);
    const port = only(kv, 'addr.port', what);
    if (!h || !port) throw new UsageError(`run: ${what}: addr.type=inet needs addr.host=HOST and addr.port=PORT`);
    return switchOpts(new Map([['tcp', [`${h}:${port}`]]]), what);
  }
  throw new UsageError(`run: ${what}: addr.type must be unix or inet`);
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
    if (!['user', 'socket', 'switch', 'stream'].includes(type)) throw new UsageError(`run: -netdev '${type}' is not known; tsvm offers: user, socket, switch, stream`);
    const id = only(kv, 'id', '-netdev');
    if (!id) throw new UsageError(`run: -netdev ${text}: needs id=NAME (for -device ...,netdev=NAME)`);
    if (netdevs.has(id)) throw new UsageError(`run: -netdev id '${id}' is used twice`);
    kv.delete('id');
    if (type === 'switch') netdevs.set(id, switchOpts(kv, `-netdev switch,id=${id}`));
    else if (type === 'stream') netdevs.set(id, streamOpts(kv, `-netdev stream,id=${id}`));
    else if (type === 'socket') {
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
    if (type !== 'user' && type !== 'switch') throw new UsageError(`run: -nic '${type}' is not known; use -nic user,..., -nic switch,... or -nic none`);
    const model = only(kv, 'model', '-nic') ?? defaultModel;
    if (!NIC_MODELS.includes(model)) throw new UsageError(`run: -nic model '${model}' is not known; tsvm offers: ${NIC_MODELS.join(', ')}`);
    const id = only(kv, 'id', '-nic') ?? `nic${anon++}`;
    const mac = only(kv, 'mac', '-nic') ?? null;
    for (const k of ['model', 'id', 'mac']) kv.delete(k);
    if (netdevs.has(id)) throw new UsageError(`run: -nic id '${id}' is used twice`);
    netdevs.set(id, type === 'switch' ? switchOpts(kv, `-nic switch`) : userOpts(kv, `-nic ${id}`));
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
    if (u.switch) return { model: n.model, mac: n.mac, net: 'switch', ...u.switch, hostfwd: [], restrict: false, dump };
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
