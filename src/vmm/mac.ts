/** MAC addresses tsvm makes up. Apart from netspec.ts, which every vm.json read loads, for node:crypto. */
import { randomBytes } from 'node:crypto';

/** A random MAC in QEMU's 52:54:00 range, for a switch NIC given none (two VMs on a switch must differ). */
export function randomMac(): string {
  return ['52', '54', '00', ...Array.from(randomBytes(3), (b) => b.toString(16).padStart(2, '0'))].join(':');
}
