/**
 * The network part of a machine spec: NICs and the user-mode networks their
 * cables go to, as a file can hold them, and the host resources (sockets,
 * pcap files) opened from them.
 *
 *   "nics": [{ "model": "e1000", "mac": null, "net": "user",
 *              "hostfwd": ["tcp::8080-:80"], "restrict": false, "dump": "net.pcap" }]
 */
import { isAbsolute, resolve } from 'node:path';
import type { NicConfig } from '../board/machine.js';
import type { NetBackend } from '../devices/backends.js';
import { UserNet, parseHostForward } from '../net/slirp.js';
import { DumpBackend } from '../net/dump.js';
import { SocketNet, parseHostPort } from '../net/socket.js';
import { nodeNetHost, openDumpFile } from '../host/node/net.js';
import { VmConfigError } from './spec.js';

export const NIC_MODELS: readonly string[] = ['e1000'];

export interface NicSpec {
  model: 'e1000';
  /** 'xx:xx:xx:xx:xx:xx', or null for QEMU's default numbering (52:54:00:12:34:56 on). */
  mac: string | null;
  /** The backend: the user-mode NAT, or a socket to another tsvm (`listen` or `connect`). */
  net: 'user' | 'socket';
  /** For 'socket': [HOST]:PORT to listen on, or HOST:PORT to connect to. */
  listen?: string;
  connect?: string;
  /** `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` forwards. */
  hostfwd: string[];
  restrict: boolean;
  /** A pcap file recording this NIC's traffic, or null. */
  dump: string | null;
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
    for (const k of Object.keys(o)) if (!['model', 'mac', 'net', 'hostfwd', 'restrict', 'dump', 'listen', 'connect'].includes(k)) throw new VmConfigError(subject, `unknown field '${k}'`);
    const model = o.model ?? 'e1000';
    if (typeof model !== 'string' || !NIC_MODELS.includes(model)) throw new VmConfigError(subject, `model '${String(model)}' is not known; models: ${NIC_MODELS.join(', ')}`);
    const mac = o.mac === undefined || o.mac === null ? null : String(o.mac);
    if (mac !== null) parseMac(subject, mac);
    const net = o.net ?? 'user';
    if (net !== 'user' && net !== 'socket') throw new VmConfigError(subject, `net '${String(o.net)}' is not known; use user or socket`);
    const ends: { listen?: string; connect?: string } = {};
    if (net === 'socket') {
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
    return { model: 'e1000', mac, net, ...ends, hostfwd: [...(hostfwd as string[])], restrict: o.restrict === true, dump: (o.dump as string | undefined) ?? null };
  });
}

/**
 * Open the NICs' backends: a user-mode network each, with its forwards
 * listening (a listen failure, such as a port in use, is reported through
 * onWarning as it happens) and its pcap file open.
 */
export function openNics(specs: readonly NicSpec[], baseDir: string, onWarning?: (m: string) => void): { nics: NicConfig[]; close: () => void } {
  const opened: NetBackend[] = [];
  const nics: NicConfig[] = [];
  try {
    specs.forEach((s, i) => {
      const user =
        s.net === 'socket'
          ? new SocketNet(nodeNetHost, s.listen !== undefined ? { listen: parseHostPort(s.listen) } : { connect: parseHostPort(s.connect as string) })
          : new UserNet(nodeNetHost, { hostfwd: s.hostfwd.map(parseHostForward), restrict: s.restrict });
      user.onLog = (l) => onWarning?.(l);
      user.start().catch((e: Error) => onWarning?.(`nic ${i}: ${e.message}`));
      let backend: NetBackend = user;
      opened.push(user);
      if (s.dump) {
        const path = isAbsolute(s.dump) ? s.dump : resolve(baseDir, s.dump);
        try {
          backend = new DumpBackend(user, openDumpFile(path), () => Date.now());
        } catch (e) {
          throw new VmConfigError(`nic ${i}`, `cannot write the packet dump ${path}: ${(e as Error).message}`);
        }
        opened[opened.length - 1] = backend;
      }
      nics.push({ model: 'e1000', mac: s.mac ? parseMac(`nic ${i}`, s.mac) : undefined, backend });
    });
  } catch (e) {
    for (const b of opened) b.close();
    throw e;
  }
  return { nics, close: () => opened.forEach((b) => b.close()) };
}
