/**
 * QEMU's software emulator as the benches' baseline: whether
 * qemu-system-i386 is installed (its version line), and the command line that
 * boots the default guest on TCG the way tsvm boots it (the image's bzImage,
 * initramfs and kernel command line; the serial console on stdio, where a
 * Session drives it).
 */
import { spawnSync } from 'node:child_process';
import type { DefaultImage } from '../../src/vmm/image.js';

export const QEMU = 'qemu-system-i386';

/** The first line of `qemu-system-i386 --version`, or undefined where it is not installed. */
export function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU, ['--version']);
  return r.status === 0 ? r.stdout.toString().split('\n')[0] : undefined;
}

/** QEMU's arguments for the default guest with `memMiB` of RAM; `devices` adds disks and NICs (-drive, -nic). */
export function qemuGuestArgs(img: Pick<DefaultImage, 'kernel' | 'initrd' | 'cmdline'>, memMiB: number, devices: string[]): string[] {
  return ['-accel', 'tcg', '-m', String(memMiB), '-kernel', img.kernel, '-initrd', img.initrd, '-append', img.cmdline, '-nographic', '-no-reboot', ...devices];
}
