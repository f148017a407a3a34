/**
 * Virtio devices in the machine spec: what each is, as JSON a vm.json or a
 * snapshot header can hold, its validation, and opening its host resources
 * (disk images, shared folders, console files and sockets, host entropy).
 * The spec and its validation are in virtio-spec.ts (no device models, so
 * that reading a vm.json does not load them).
 *
 *   { "type": "blk", "file": "disk.img", "format": "raw", "mode": "rw" }
 *   { "type": "rng" }
 *   { "type": "console", "chardev": "file:PATH" | "socket:PATH" }
 *   { "type": "9p", "path": "DIR", "tag": "TAG", "readOnly": false }
 *
 * The order is the PCI slot order (from 00:03.0 on) and the device ids.
 */
import { openSync, writeSync, closeSync } from 'node:fs';
import type { IoCounters } from './iostats.js';
import type { CharBackend } from '../devices/backends.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioConsole } from '../devices/virtio/console.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { Virtio9p } from '../devices/virtio/9p.js';
import { HostEntropy } from '../host/node/entropy.js';
import { HostShare, ShareError } from '../host/node/fs9p.js';
import { SocketChar, SocketCharError } from '../host/node/charsocket.js';
import { openDisk, specPath } from './drives.js';
import { VmConfigError } from './spec.js';

export { validateVirtio, VIRTIO_TYPES, type VirtioSpec } from './virtio-spec.js';
import type { VirtioSpec } from './virtio-spec.js';

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

/** Open the host side of each device and build it. Throws VmConfigError naming the device; nothing stays open then. */
export function openVirtioDevices(specs: readonly VirtioSpec[], baseDir: string, onWarning?: (m: string) => void, io?: IoCounters): { devices: VirtioDevice[]; closers: (() => void)[] } {
  const devices: VirtioDevice[] = [];
  const closers: (() => void)[] = [];
  const count = new Map<string, number>();
  const nextId = (base: string) => {
    const n = count.get(base) ?? 0;
    count.set(base, n + 1);
    return `${base}${n}`;
  };
  try {
    specs.forEach((s, i) => {
      const subject = `virtio[${i}]`;
      switch (s.type) {
        case 'blk': {
          const id = nextId('virtio-blk');
          // through openDisk: a VM folder's qcow2 data disk is reopened behind the device by savevm/loadvm
          const d = openDisk(id, subject, s, baseDir);
          if (d.warning) onWarning?.(d.warning);
          closers.push(() => d.close());
          devices.push(new VirtioBlk(id, io ? io.disk(id, d.backend) : d.backend));
          return;
        }
        case 'rng':
          devices.push(new VirtioRng(nextId('virtio-rng'), new HostEntropy()));
          return;
        case 'console': {
          const path = specPath(baseDir, s.chardev.slice(s.chardev.indexOf(':') + 1));
          const id = nextId('virtio-console');
          if (s.chardev.startsWith('socket:')) {
            let sc: SocketChar;
            try {
              sc = new SocketChar(path);
            } catch (e) {
              if (e instanceof SocketCharError) throw new VmConfigError(subject, e.message);
              throw e;
            }
            closers.push(() => sc.close());
            const con = new VirtioConsole(id, sc);
            sc.onInput = (d) => con.receive(d);
            devices.push(con);
          } else {
            let fd: number;
            try {
              fd = openSync(path, 'w');
            } catch (e) {
              throw new VmConfigError(subject, `cannot open ${path} for writing: ${(e as Error).message}`);
            }
            const fc = new FileChar(fd);
            closers.push(() => fc.close());
            devices.push(new VirtioConsole(id, fc));
          }
          return;
        }
        case '9p': {
          let share: HostShare;
          try {
            share = new HostShare(specPath(baseDir, s.path), s.readOnly);
          } catch (e) {
            if (e instanceof ShareError) throw new VmConfigError(subject, e.message);
            throw e;
          }
          closers.push(() => share.closeAll());
          devices.push(new Virtio9p(nextId('virtio-9p'), s.tag, share));
          return;
        }
      }
    });
  } catch (e) {
    for (const c of closers) c();
    throw e;
  }
  return { devices, closers };
}
