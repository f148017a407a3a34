/**
 * The virtio options of `tsvm run`, in QEMU's spelling:
 *
 *   -drive file=PATH,if=virtio[,format=raw][,readonly=on]
 *   -drive file=PATH,if=none,id=ID  with  -device virtio-blk-pci,drive=ID
 *   -device virtio-rng-pci
 *   -device virtio-serial-pci -device virtconsole,chardev=ID  with  -chardev file,id=ID,path=PATH
 *                                                            or  -chardev socket,id=ID,path=SOCK,server=on,wait=off
 *   -device virtio-net-pci,netdev=ID[,mac=52:54:00:12:34:56]   (ID from -netdev)
 *   -virtfs local,path=DIR,mount_tag=TAG,security_model=none[,readonly=on]
 *
 * Each becomes a VirtioDevice for the machine configuration; host resources
 * (files, sockets) are opened here, before the VM starts, so a bad option
 * fails with a message and nothing half-started.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { CharBackend, NetBackend } from '../devices/backends.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioConsole } from '../devices/virtio/console.js';
import { VirtioNet } from '../devices/virtio/net.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { BlockBackendError, openBlockFile } from '../host/node/block.js';
import { HostEntropy } from '../host/node/entropy.js';
import { SocketChar, SocketCharError } from '../host/node/charsocket.js';
import { HostShare, ShareError } from '../host/node/fs9p.js';
import { Virtio9p } from '../devices/virtio/9p.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';

export const VIRTIO_OPTIONS: OptionSpec[] = [
  { name: 'drive', value: 'file=PATH,if=virtio', repeat: true, help: 'a raw disk image on virtio-blk (if=virtio; readonly=on; if=none,id=ID for -device virtio-blk-pci,drive=ID)' },
  { name: 'device', value: 'TYPE[,PROPS]', repeat: true, help: 'add a device: virtio-rng-pci, virtio-blk-pci,drive=ID, virtio-serial-pci, virtconsole,chardev=ID, virtio-net-pci,netdev=ID[,mac=MAC]' },
  { name: 'chardev', value: 'TYPE,id=ID,path=PATH', repeat: true, help: 'a character device for virtconsole: file (guest output to PATH) or socket,server=on,wait=off (a UNIX socket tsvm listens on; connect with socat or nc -U)' },
  { name: 'virtfs', value: 'local,path=DIR,mount_tag=TAG', repeat: true, help: 'share host folder DIR with the guest over virtio-9p (security_model=none; readonly=on); mount -t 9p -o trans=virtio TAG /mnt' },
];

/** The -device types this module builds. */
export const VIRTIO_DEVICE_TYPES = ['virtio-rng-pci', 'virtio-blk-pci', 'virtio-serial-pci', 'virtconsole', 'virtio-net-pci'];

/** Parse QEMU's "type,key=value,key=value" (",," is a literal comma). */
export function parseProps(text: string, what: string): { type: string; props: Map<string, string> } {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (text[i] === ',') {
      parts.push(cur);
      cur = '';
    } else cur += text[i];
  }
  parts.push(cur);
  let type = '';
  const props = new Map<string, string>();
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (i === 0) type = p;
      else throw new UsageError(`run: ${what} '${text}': '${p}' is not key=value`);
    } else props.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return { type, props };
}

function onOff(v: string | undefined, what: string): boolean {
  if (v === undefined || v === 'off' || v === 'false' || v === 'no') return false;
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  throw new UsageError(`run: ${what}: '${v}' is not on or off`);
}

function allowOnly(props: Map<string, string>, allowed: string[], what: string): void {
  for (const k of props.keys()) if (!allowed.includes(k)) throw new UsageError(`run: ${what}: property '${k}' is not known (known: ${allowed.join(', ')})`);
}

/** A character backend writing guest output to a file. */
class FileChar implements CharBackend {
  constructor(private readonly _fd: number) {}
  write(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) off += writeSync(this._fd, data, off, data.length - off);
  }
  close(): void {
    closeSync(this._fd);
  }
}

export interface OpenedVirtio {
  devices: VirtioDevice[];
  /** Release host resources when the VM stops. */
  close(): void;
}

/** Network backends by -netdev id, supplied by whoever parses -netdev. */
export type NetdevLookup = (id: string) => NetBackend | undefined;

/** Build the virtio devices the options ask for. */
export function openVirtio(opts: Parsed, deps: { snapshot: boolean; netdev?: NetdevLookup; otherDeviceTypes?: readonly string[] }): OpenedVirtio {
  const devices: VirtioDevice[] = [];
  const closers: (() => void)[] = [];
  const close = () => {
    for (const c of closers.splice(0)) c();
  };
  const count = new Map<string, number>();
  const nextId = (base: string) => {
    const n = count.get(base) ?? 0;
    count.set(base, n + 1);
    return `${base}${n}`;
  };
  try {
    const drives = new Map<string, VirtioBlk | null>();
    const openDrive = (text: string, props: Map<string, string>, id: string) => {
      allowOnly(props, ['file', 'if', 'format', 'readonly', 'id', 'media', 'cache'], `-drive ${text}`);
      const file = props.get('file');
      if (!file) throw new UsageError(`run: -drive ${text}: give the image as file=PATH`);
      const fmt = props.get('format') ?? 'raw';
      if (fmt !== 'raw') throw new UsageError(`run: -drive ${text}: format=${fmt} is not supported; tsvm reads raw images`);
      const ro = onOff(props.get('readonly'), `-drive ${text} readonly`);
      try {
        const d = openBlockFile(file, deps.snapshot ? 'snapshot' : ro ? 'ro' : 'rw', `-drive ${file}`);
        if (d.warning) process.stderr.write(`tsvm: ${d.warning}\n`);
        closers.push(() => d.close());
        return new VirtioBlk(id, d.backend);
      } catch (e) {
        if (e instanceof BlockBackendError) throw new UsageError(`run: ${e.message}`);
        throw e;
      }
    };
    for (const text of opts.get('drive') ?? []) {
      const { type, props } = parseProps(text, '-drive');
      if (type) throw new UsageError(`run: -drive ${text}: write file=PATH,if=virtio`);
      const iface = props.get('if') ?? 'ide';
      if (iface === 'virtio') devices.push(openDrive(text, props, nextId('virtio-blk')));
      else if (iface === 'none') {
        const id = props.get('id');
        if (!id) throw new UsageError(`run: -drive ${text}: if=none needs id=ID for -device virtio-blk-pci,drive=ID`);
        drives.set(id, openDrive(text, props, `virtio-blk-${id}`));
      } else throw new UsageError(`run: -drive ${text}: if=${iface} is not supported here; use if=virtio (or -hda/-hdb for IDE)`);
    }
    const chardevs = new Map<string, CharBackend>();
    for (const text of opts.get('chardev') ?? []) {
      const { type, props } = parseProps(text, '-chardev');
      const id = props.get('id');
      if (!id) throw new UsageError(`run: -chardev ${text}: needs id=ID`);
      const path = props.get('path');
      if (type === 'socket') {
        allowOnly(props, ['id', 'path', 'server', 'wait'], `-chardev ${text}`);
        if (!path) throw new UsageError(`run: -chardev ${text}: needs path=SOCKET (a UNIX socket tsvm listens on)`);
        if (!onOff(props.get('server'), `-chardev ${text} server`) || onOff(props.get('wait') ?? 'on', `-chardev ${text} wait`)) {
          throw new UsageError(`run: -chardev ${text}: tsvm listens and does not wait for a client: write server=on,wait=off`);
        }
        try {
          const sc = new SocketChar(path);
          closers.push(() => sc.close());
          chardevs.set(id, sc);
        } catch (e) {
          if (e instanceof SocketCharError) throw new UsageError(`run: -chardev ${text}: ${e.message}`);
          throw e;
        }
        continue;
      }
      if (type !== 'file') throw new UsageError(`run: -chardev ${text}: type '${type}' is not supported; use file,id=ID,path=PATH or socket,id=ID,path=SOCKET,server=on,wait=off`);
      allowOnly(props, ['id', 'path'], `-chardev ${text}`);
      if (!path) throw new UsageError(`run: -chardev ${text}: needs path=PATH`);
      let fd: number;
      try {
        fd = openSync(path, 'w');
      } catch (e) {
        throw new UsageError(`run: -chardev ${text}: cannot open ${path} for writing: ${(e as Error).message}`);
      }
      const c = new FileChar(fd);
      closers.push(() => c.close());
      chardevs.set(id, c);
    }
    let serialBus = false;
    for (const text of opts.get('device') ?? []) {
      const { type, props } = parseProps(text, '-device');
      switch (type) {
        case 'virtio-rng-pci':
        case 'virtio-rng':
          allowOnly(props, ['id'], `-device ${text}`);
          devices.push(new VirtioRng(nextId('virtio-rng'), new HostEntropy()));
          break;
        case 'virtio-blk-pci':
        case 'virtio-blk': {
          allowOnly(props, ['drive', 'id'], `-device ${text}`);
          const d = drives.get(props.get('drive') ?? '');
          if (!d) throw new UsageError(`run: -device ${text}: no -drive if=none,id=${props.get('drive') ?? '?'}`);
          drives.set(props.get('drive')!, null);
          devices.push(d);
          break;
        }
        case 'virtio-serial-pci':
        case 'virtio-serial':
          allowOnly(props, ['id'], `-device ${text}`);
          serialBus = true;
          break;
        case 'virtconsole': {
          allowOnly(props, ['chardev', 'id', 'name'], `-device ${text}`);
          const c = chardevs.get(props.get('chardev') ?? '');
          if (!c) throw new UsageError(`run: -device ${text}: no -chardev with id=${props.get('chardev') ?? '?'}`);
          const con = new VirtioConsole(nextId('virtio-console'), c);
          if (c instanceof SocketChar) c.onInput = (d) => con.receive(d);
          devices.push(con);
          break;
        }
        case 'virtio-net-pci':
        case 'virtio-net': {
          allowOnly(props, ['netdev', 'mac', 'id'], `-device ${text}`);
          const nd = props.get('netdev');
          const backend = nd ? deps.netdev?.(nd) : undefined;
          if (!backend) throw new UsageError(`run: -device ${text}: no -netdev with id=${nd ?? '?'}`);
          devices.push(new VirtioNet(nextId('virtio-net'), backend, parseMac(props.get('mac'), devices.length, text)));
          break;
        }
        default:
          // another module's device (a NIC from the network options): theirs to build
          if (!deps.otherDeviceTypes?.includes(type)) {
            throw new UsageError(`run: -device '${type}' is not known; the devices are: ${[...VIRTIO_DEVICE_TYPES, ...(deps.otherDeviceTypes ?? [])].join(', ')}`);
          }
      }
    }
    void serialBus; // virtconsole brings its own function; virtio-serial-pci alone adds nothing a guest can use
    for (const [id, d] of drives) if (d) throw new UsageError(`run: -drive id=${id} is not used by any -device virtio-blk-pci,drive=${id}`);
    for (const text of opts.get('virtfs') ?? []) {
      const spec = parseVirtfs(text);
      let share: HostShare;
      try {
        share = new HostShare(spec.path, spec.readOnly);
      } catch (e) {
        if (e instanceof ShareError) throw new UsageError(`run: ${e.message}`);
        throw e;
      }
      closers.push(() => share.closeAll());
      devices.push(new Virtio9p(nextId('virtio-9p'), spec.tag, share));
    }
  } catch (e) {
    close();
    throw e;
  }
  return { devices, close };
}

export interface VirtfsSpec {
  path: string;
  tag: string;
  readOnly: boolean;
}

export function parseVirtfs(text: string): VirtfsSpec {
  const { type, props } = parseProps(text, '-virtfs');
  if (type !== 'local') throw new UsageError(`run: -virtfs ${text}: only 'local' is supported (-virtfs local,path=DIR,mount_tag=TAG,security_model=none)`);
  allowOnly(props, ['path', 'mount_tag', 'security_model', 'readonly', 'id'], `-virtfs ${text}`);
  const path = props.get('path');
  const tag = props.get('mount_tag');
  if (!path || !tag) throw new UsageError(`run: -virtfs ${text}: needs path=DIR and mount_tag=TAG`);
  const sm = props.get('security_model') ?? 'none';
  if (sm !== 'none') throw new UsageError(`run: -virtfs ${text}: security_model=${sm} is not supported; use security_model=none (files get the host user's ownership)`);
  if (tag.length > 31) throw new UsageError(`run: -virtfs ${text}: mount_tag is longer than 31 bytes`);
  return { path, tag, readOnly: onOff(props.get('readonly'), `-virtfs ${text} readonly`) };
}

/** The MAC given, or QEMU's default 52:54:00:12:34:56 plus the NIC's index. */
function parseMac(text: string | undefined, index: number, what: string): Uint8Array {
  if (text === undefined) return new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + index]);
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  if (!m) throw new UsageError(`run: -device ${what}: mac=${text} is not six hex bytes like 52:54:00:12:34:56`);
  const mac = new Uint8Array(m.slice(1).map((h) => parseInt(h, 16)));
  if (mac[0] & 1) throw new UsageError(`run: -device ${what}: mac=${text} is a multicast address`);
  return mac;
}
