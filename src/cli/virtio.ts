/**
 * The virtio options of `tsvm run`, in QEMU's spelling, turned into the
 * machine spec's virtio list (src/vmm/virtio.ts opens the host side):
 *
 *   -drive file=PATH,if=virtio[,format=raw|qcow2][,readonly=on][,snapshot=on]   (-drive if=ide is cli/drive.ts's)
 *   -drive file=PATH,if=none,id=ID  with  -device virtio-blk-pci,drive=ID
 *   -device virtio-rng-pci
 *   -device virtio-serial-pci -device virtconsole,chardev=ID  with  -chardev file,id=ID,path=PATH
 *                                                            or  -chardev socket,id=ID,path=SOCK,server=on,wait=off
 *   -virtfs local,path=DIR,mount_tag=TAG,security_model=none[,readonly=on]
 *
 * virtio-net-pci goes with the network options (-netdev), which own the
 * network backends; the device itself is src/devices/virtio/net.ts.
 */
import { resolve } from 'node:path';
import type { VirtioSpec } from '../vmm/virtio.js';
import { probeDriveFormat } from '../vmm/drives.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';
import { onOff, splitQemuList } from './qemuopts.js';

export const VIRTIO_OPTIONS: OptionSpec[] = [
  { name: 'device', value: 'TYPE[,PROPS]', repeat: true, help: 'add a device: virtio-rng-pci, virtio-blk-pci,drive=ID, virtio-serial-pci, virtconsole,chardev=ID, or a NIC: e1000|virtio-net-pci,netdev=ID[,mac=MAC]' },
  { name: 'chardev', value: 'TYPE,id=ID,path=PATH', repeat: true, help: 'a character device for virtconsole: file (guest output to PATH) or socket,server=on,wait=off (a UNIX socket tsvm listens on; connect with socat or nc -U)' },
  { name: 'virtfs', value: 'local,path=DIR,mount_tag=TAG', repeat: true, help: 'share host folder DIR with the guest over virtio-9p (security_model=none; readonly=on); mount -t 9p -o trans=virtio TAG /mnt' },
];

/** The -device types this module builds. */
export const VIRTIO_DEVICE_TYPES = ['virtio-rng-pci', 'virtio-blk-pci', 'virtio-serial-pci', 'virtconsole'];

/** Parse QEMU's "type,key=value,key=value" (",," is a literal comma). */
export function parseProps(text: string, what: string): { type: string; props: Map<string, string> } {
  const parts = splitQemuList(text);
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

function allowOnly(props: Map<string, string>, allowed: string[], what: string): void {
  for (const k of props.keys()) if (!allowed.includes(k)) throw new UsageError(`run: ${what}: property '${k}' is not known (known: ${allowed.join(', ')})`);
}

/**
 * The virtio devices the options ask for, in PCI slot order (-drive, then
 * -device, then -virtfs). Only parsing: files are opened when the machine is
 * built, so a spec from these options also goes into a VM folder.
 * `otherDeviceTypes`: -device types another module builds (the NICs).
 */
export function virtioSpecs(opts: Parsed, deps: { snapshot: boolean; otherDeviceTypes?: readonly string[] }): VirtioSpec[] {
  const out: VirtioSpec[] = [];
  const drive = (text: string, props: Map<string, string>): VirtioSpec => {
    allowOnly(props, ['file', 'if', 'format', 'readonly', 'snapshot', 'id', 'media', 'cache'], `-drive ${text}`);
    const file = props.get('file');
    if (!file) throw new UsageError(`run: -drive ${text}: give the image as file=PATH`);
    const fmt = props.get('format');
    if (fmt !== undefined && fmt !== 'raw' && fmt !== 'qcow2') throw new UsageError(`run: -drive ${text}: format=${fmt} is not supported; tsvm reads raw and qcow2`);
    const ro = onOff(props.get('readonly'), `-drive ${text} readonly`);
    const snap = deps.snapshot || onOff(props.get('snapshot'), `-drive ${text} snapshot`);
    return { type: 'blk', file: resolve(file), format: fmt ?? probeDriveFormat(resolve(file), '-drive'), mode: snap ? 'snapshot' : ro ? 'ro' : 'rw' };
  };
  const drives = new Map<string, VirtioSpec | null>();
  for (const text of opts.get('drive') ?? []) {
    const { type, props } = parseProps(text, '-drive');
    const iface = props.get('if') ?? 'ide';
    if (iface !== 'virtio' && iface !== 'none') continue; // IDE drives: cli/drive.ts
    if (type) throw new UsageError(`run: -drive ${text}: write file=PATH,if=${iface}`);
    if (iface === 'virtio') out.push(drive(text, props));
    else if (iface === 'none') {
      const id = props.get('id');
      if (!id) throw new UsageError(`run: -drive ${text}: if=none needs id=ID for -device virtio-blk-pci,drive=ID`);
      drives.set(id, drive(text, props));
    }
  }
  const chardevs = new Map<string, string>();
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
      chardevs.set(id, `socket:${resolve(path)}`);
    } else if (type === 'file') {
      allowOnly(props, ['id', 'path'], `-chardev ${text}`);
      if (!path) throw new UsageError(`run: -chardev ${text}: needs path=PATH`);
      chardevs.set(id, `file:${resolve(path)}`);
    } else throw new UsageError(`run: -chardev ${text}: type '${type}' is not supported; use file,id=ID,path=PATH or socket,id=ID,path=SOCKET,server=on,wait=off`);
  }
  for (const text of opts.get('device') ?? []) {
    const { type, props } = parseProps(text, '-device');
    switch (type) {
      case 'virtio-rng-pci':
      case 'virtio-rng':
        allowOnly(props, ['id'], `-device ${text}`);
        out.push({ type: 'rng' });
        break;
      case 'virtio-blk-pci':
      case 'virtio-blk': {
        allowOnly(props, ['drive', 'id'], `-device ${text}`);
        const id = props.get('drive') ?? '';
        const d = drives.get(id);
        if (!d) throw new UsageError(`run: -device ${text}: no -drive if=none,id=${id || '?'}`);
        drives.set(id, null);
        out.push(d);
        break;
      }
      case 'virtio-serial-pci':
      case 'virtio-serial':
        // accepted for QEMU compatibility: each virtconsole brings its own function
        allowOnly(props, ['id'], `-device ${text}`);
        break;
      case 'virtconsole': {
        allowOnly(props, ['chardev', 'id', 'name'], `-device ${text}`);
        const c = chardevs.get(props.get('chardev') ?? '');
        if (!c) throw new UsageError(`run: -device ${text}: no -chardev with id=${props.get('chardev') ?? '?'}`);
        out.push({ type: 'console', chardev: c });
        break;
      }
      default:
        if (!deps.otherDeviceTypes?.includes(type)) {
          throw new UsageError(`run: -device '${type}' is not known; the devices are: ${[...VIRTIO_DEVICE_TYPES, ...(deps.otherDeviceTypes ?? [])].join(', ')}`);
        }
    }
  }
  for (const [id, d] of drives) if (d) throw new UsageError(`run: -drive id=${id} is not used by any -device virtio-blk-pci,drive=${id}`);
  for (const text of opts.get('virtfs') ?? []) {
    const v = parseVirtfs(text);
    out.push({ type: '9p', path: resolve(v.path), tag: v.tag, readOnly: v.readOnly });
  }
  return out;
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
  if (Buffer.byteLength(tag) > 31) throw new UsageError(`run: -virtfs ${text}: mount_tag is longer than 31 bytes`);
  return { path, tag, readOnly: onOff(props.get('readonly'), `-virtfs ${text} readonly`) };
}
