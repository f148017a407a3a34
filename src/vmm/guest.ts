/**
 * The default guest's VM: what `tsvm create NAME` and the daemon's create
 * (API and web page) make from the default guest, written once so the two
 * cannot drift apart. The kernel and initramfs of the built image boot
 * directly; the VM gets an empty qcow2 data disk on virtio-blk (first among
 * the virtio devices, so the guest names it /dev/vda and mounts it on /data)
 * and a virtio-net NIC on the user-mode network (DHCP at boot).
 */
import type { DefaultImage } from './image.js';
import type { LinuxSpec, MachineSpec } from './spec.js';
import { type NicSpec } from './netspec.js';
import { randomMac } from './mac.js';

/** The default guest's data disk: 1 GiB, sparse (a new qcow2 is 256 KiB until written). */
export const DEFAULT_GUEST_DISK_BYTES = 2 ** 30;

/** Direct boot of the default guest image. */
export function defaultGuestLinux(img: DefaultImage, cmdline: string = img.cmdline): LinuxSpec {
  return { kernel: img.kernel, vmlinux: img.vmlinux, initrd: img.initrd, cmdline };
}

/** A virtio-net NIC (the default guest has its driver) on the user-mode network. */
export function userNic(): NicSpec {
  return { model: 'virtio-net-pci', mac: null, net: 'user', hostfwd: [], restrict: false, dump: null };
}

/**
 * A virtio-net NIC on the daemon's (or `tsvm switch`'s) private network
 * `network`, with a MAC chosen once here, so the VM keeps its address (and its
 * DHCP lease) from one start to the next.
 */
export function networkNic(network: string): NicSpec {
  return { model: 'virtio-net-pci', mac: randomMac(), net: 'switch', network, hostfwd: [], restrict: false, dump: null };
}

export interface DefaultGuestOptions {
  /** The data disk's size in bytes (default DEFAULT_GUEST_DISK_BYTES). */
  diskBytes?: number;
  /** The NICs asked for; undefined is the default (one userNic()), [] is none. */
  nics?: NicSpec[];
}

/**
 * Complete a spec that boots the default guest into the default guest's VM:
 * its NICs, and the new data disk to pass to VmFolder.create as `newDisks`.
 */
export function defaultGuestVm(spec: MachineSpec, o: DefaultGuestOptions = {}): { spec: MachineSpec; newDisks: { vda: number } } {
  const nics = o.nics ?? [userNic()];
  const out: MachineSpec = { ...spec };
  if (nics.length) out.nics = nics;
  else delete out.nics;
  return { spec: out, newDisks: { vda: o.diskBytes ?? DEFAULT_GUEST_DISK_BYTES } };
}
