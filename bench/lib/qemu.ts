/**
 * QEMU's software emulator as the benches' baseline: whether
 * qemu-system-i386 is installed (its version line), and the command line that
 * boots the default guest on TCG the way tsvm boots it (the image's bzImage,
 * initramfs and kernel command line; the serial console on stdio, where a
 * Session drives it).
 *
 * Always `-machine pc,acpi=off`: the guest's command line has pci=noacpi
 * (tsvm's direct-boot ACPI tables describe no PCI), and beside QEMU's ACPI
 * tables that leaves the PIIX3 IDE's legacy ports unassigned, so ata_piix
 * fails its probe ("BAR 0 ... not assigned", error -22) and the guest has no
 * /dev/sda (a `dd of=/dev/sda` then writes an ordinary file in devtmpfs).
 * Without ACPI the kernel scans PCI and routes its interrupts as it does on
 * tsvm. The price: no ACPI power-off, so `poweroff` halts the guest and QEMU
 * stays up; with -no-reboot the guest's `reboot` ends QEMU instead
 * (QEMU_EXIT), or the bench kills it.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import type { DefaultImage } from '../../src/vmm/image.js';

export const QEMU = 'qemu-system-i386';

/** What to type at the guest's shell to end QEMU started by qemuGuestArgs (no ACPI power-off; -no-reboot turns the reset into an exit). */
export const QEMU_EXIT = 'reboot';

/** A TCP port on 127.0.0.1 that nothing listens on just now: for QEMU's hostfwd and socket netdevs. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** The first line of `qemu-system-i386 --version`, or undefined where it is not installed. */
export function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU, ['--version']);
  return r.status === 0 ? r.stdout.toString().split('\n')[0] : undefined;
}

/** QEMU's arguments for the default guest with `memMiB` of RAM; `devices` adds disks and NICs (-drive, -nic). */
export function qemuGuestArgs(img: Pick<DefaultImage, 'kernel' | 'initrd' | 'cmdline'>, memMiB: number, devices: string[]): string[] {
  return ['-accel', 'tcg', '-machine', 'pc,acpi=off', '-m', String(memMiB), '-kernel', img.kernel, '-initrd', img.initrd, '-append', img.cmdline, '-nographic', '-no-reboot', ...devices];
}

/**
 * A guest shell command that says where /dev/sda comes from, for ideDiskProblem:
 * on either emulator a bench must not time a dd to /dev/sda unless it is the IDE disk.
 */
export const IDE_DISK_CHECK = 'echo "sda: $(readlink -f /sys/block/sda) $(ls -l /dev/sda)"; echo "piix: $(ls /sys/bus/pci/drivers/ata_piix 2>/dev/null | grep -c :)"';

/** Undefined where IDE_DISK_CHECK's output shows /dev/sda as a block device behind ata_piix; otherwise what is wrong. */
export function ideDiskProblem(text: string): string | undefined {
  if (!/sda: \/sys\/devices\/\S*\/ata\d+\/\S* b/.test(text)) return `/dev/sda is not a block device on an ATA port:\n${text}`;
  if (!/piix: [1-9]/.test(text)) return `no PCI device is bound to ata_piix:\n${text}`;
  return undefined;
}
