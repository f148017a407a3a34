/**
 * The network part of a machine spec: NICs and the user-mode networks their
 * cables go to, as a file can hold them, and their validation; netopen.ts
 * opens the host resources (sockets, pcap files) from them. Light on
 * purpose: reading a vm.json (tsvm clone, list) does not load the NAT,
 * the socket network (net/addr.ts parses its addresses) or node:crypto
 * (mac.ts makes up MACs).
 *
 *   "nics": [{ "model": "e1000", "mac": null, "net": "user",
 *              "hostfwd": ["tcp::8080-:80"], "restrict": false, "dump": "net.pcap" }]
 *   "nics": [{ "net": "switch", "network": "lab" }]               a named private network
 *   "nics": [{ "net": "switch", "switch": "unix:/tmp/lab.sock" }] a switch socket (or tcp:127.0.0.1:PORT)
 */
import { tmpdir, userInfo } from 'node:os';
import { lstatSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseHostForward } from '../net/hostfwd.js';
import { parseHostPort, parseStreamAddr, type StreamAddr } from '../net/addr.js';
import { VmConfigError } from './spec.js';

export { parseStreamAddr };

export const NIC_MODELS: readonly string[] = ['e1000', 'virtio-net-pci', 'ne2k_pci'];

export interface NicSpec {
  model: 'e1000' | 'virtio-net-pci' | 'ne2k_pci';
  /** 'xx:xx:xx:xx:xx:xx', or null for QEMU's default numbering (52:54:00:12:34:56 on). */
  mac: string | null;
  /** The backend: the user-mode NAT, a socket to another tsvm (`listen` or `connect`), or a virtual switch. */
  net: 'user' | 'socket' | 'switch';
  /** For 'socket': [HOST]:PORT to listen on, or HOST:PORT to connect to. */
  listen?: string;
  connect?: string;
  /** For 'switch': the switch's socket, `unix:PATH` or `tcp:HOST:PORT`... */
  switch?: string;
  /** ... or the name of a private network (its switch socket is networkSocketPath(name)). */
  network?: string;
  /** `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` forwards. */
  hostfwd: string[];
  restrict: boolean;
  /** A pcap file recording this NIC's traffic, or null. */
  dump: string | null;
}

/** A private network's name: a word that can be a file name. */
export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Where the switch of the private network NAME listens: one UNIX socket per
 * name in a per-user directory ($TSVM_NET_DIR; by default
 * $XDG_RUNTIME_DIR/tsvm-net, or $TMPDIR/tsvm-net-USER), served by `tsvm
 * switch -network NAME` or by the daemon when one of its VMs needs it. Every
 * VM naming the network connects there, whoever runs it.
 */
export function networkDir(): string {
  if (process.env.TSVM_NET_DIR) return process.env.TSVM_NET_DIR;
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'tsvm-net');
  return join(tmpdir(), `tsvm-net-${userInfo().username}`);
}

/**
 * Refuse a network directory someone else could have planted (in a shared
 * /tmp): it must be a real directory of this user that no one else can
 * write, or another user could serve a fake switch there. A missing one is
 * fine (made with mode 0700 by whoever serves the first network).
 */
export function checkNetworkDir(): void {
  const d = networkDir();
  const st = lstatSync(d, { throwIfNoEntry: false });
  if (!st) return;
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new VmConfigError('networks', `${d} is not a private directory of this user (another user could serve a switch there); remove it, or set TSVM_NET_DIR to a directory of your own`);
  }
}

export function networkSocketPath(name: string): string {
  return join(networkDir(), `${name}.sock`);
}

export function parseMac(subject: string, text: string): Uint8Array {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new VmConfigError(subject, `mac '${text}' is not six hex bytes like 52:54:00:12:34:56`);
  const b = Uint8Array.from(m.slice(1).map((h) => parseInt(h, 16)));
  if (b[0] & 1) throw new VmConfigError(subject, `mac '${text}' is a multicast address; a NIC needs a unicast one`);
  return b;
}

/** Check the untrusted `nics` field of a spec. */
export function validateNics(json: unknown): NicSpec[] {
  if (!Array.isArray(json)) throw new VmConfigError('nics', 'must be a list of NICs');
  return json.map((n: unknown, i) => {
    const subject = `nic ${i}`;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new VmConfigError(subject, 'must be an object');
    const o = n as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['model', 'mac', 'net', 'hostfwd', 'restrict', 'dump', 'listen', 'connect', 'switch', 'network'].includes(k)) throw new VmConfigError(subject, `unknown field '${k}'`);
    const model = o.model ?? 'e1000';
    if (typeof model !== 'string' || !NIC_MODELS.includes(model)) throw new VmConfigError(subject, `model '${String(model)}' is not known; models: ${NIC_MODELS.join(', ')}`);
    const mac = o.mac === undefined || o.mac === null ? null : String(o.mac);
    if (mac !== null) parseMac(subject, mac);
    const net = o.net ?? 'user';
    if (net !== 'user' && net !== 'socket' && net !== 'switch') throw new VmConfigError(subject, `net '${String(o.net)}' is not known; use user, socket or switch`);
    const ends: { listen?: string; connect?: string; switch?: string; network?: string } = {};
    if (net !== 'switch' && (o.switch !== undefined || o.network !== undefined)) throw new VmConfigError(subject, 'switch and network belong to switch networks ("net": "switch")');
    if (net === 'switch') {
      if ((o.switch === undefined) === (o.network === undefined)) throw new VmConfigError(subject, 'a switch network needs exactly one of "network": NAME and "switch": "unix:PATH" | "tcp:127.0.0.1:PORT"');
      if (o.network !== undefined) {
        if (typeof o.network !== 'string' || !NETWORK_NAME.test(o.network)) throw new VmConfigError(subject, `network '${String(o.network)}' is not a name (letters, digits, '.', '_', '-'; up to 64)`);
        ends.network = o.network;
      } else {
        try {
          parseStreamAddr(String(o.switch));
        } catch (e) {
          throw new VmConfigError(subject, `switch: ${(e as Error).message}`);
        }
        ends.switch = String(o.switch);
      }
      if (o.listen !== undefined || o.connect !== undefined) throw new VmConfigError(subject, 'listen and connect belong to socket networks');
      if ((Array.isArray(o.hostfwd) && o.hostfwd.length) || o.restrict === true) throw new VmConfigError(subject, 'hostfwd and restrict belong to user networks, not switch ones');
    } else if (net === 'socket') {
      if ((o.listen === undefined) === (o.connect === undefined)) throw new VmConfigError(subject, 'a socket network needs exactly one of listen=[HOST]:PORT and connect=HOST:PORT');
      const which = o.listen !== undefined ? 'listen' : 'connect';
      const v = String(o[which]);
      try {
        parseHostPort(v);
      } catch (e) {
        throw new VmConfigError(subject, `${which}: ${(e as Error).message}`);
      }
      ends[which] = v;
      if ((Array.isArray(o.hostfwd) && o.hostfwd.length) || o.restrict === true) throw new VmConfigError(subject, 'hostfwd and restrict belong to user networks, not socket ones');
    } else if (o.listen !== undefined || o.connect !== undefined) throw new VmConfigError(subject, 'listen and connect belong to socket networks');
    const hostfwd = o.hostfwd ?? [];
    if (!Array.isArray(hostfwd) || hostfwd.some((h) => typeof h !== 'string')) throw new VmConfigError(subject, 'hostfwd must be a list of strings');
    for (const h of hostfwd as string[]) {
      try {
        parseHostForward(h);
      } catch (e) {
        throw new VmConfigError(subject, (e as Error).message);
      }
    }
    if (o.restrict !== undefined && typeof o.restrict !== 'boolean') throw new VmConfigError(subject, 'restrict must be true or false');
    if (o.dump !== undefined && o.dump !== null && (typeof o.dump !== 'string' || o.dump === '')) throw new VmConfigError(subject, 'dump must be a file path');
    return { model: model as NicSpec['model'], mac, net, ...ends, hostfwd: [...(hostfwd as string[])], restrict: o.restrict === true, dump: (o.dump as string | undefined) ?? null };
  });
}

/** Where a switch NIC connects: its network's socket, or its switch address (a relative path from the VM folder). */
export function switchAddr(s: NicSpec, baseDir: string): StreamAddr {
  if (s.network !== undefined) {
    checkNetworkDir();
    return { path: networkSocketPath(s.network) };
  }
  const a = parseStreamAddr(s.switch as string);
  return 'path' in a && !isAbsolute(a.path) ? { path: resolve(baseDir, a.path) } : a;
}
