/**
 * A machine spec from QEMU-style options: what `tsvm run` and `tsvm create`
 * share. Apart from run.ts, which runs the machine, so that `tsvm create`
 * (and --help) does not load the emulator: this module reaches src/vmm's
 * spec, image and guest modules and the drive probe, not the board.
 */
import { resolve } from 'node:path';
import { parseSize, type MachineSpec, type DriveSlot } from '../vmm/spec.js';
import { SEABIOS_BIOS as DEFAULT_BIOS, seabiosVgaInstalled } from '../vmm/firmware.js';
import { buildDefaultImage, findDefaultImage, ImageError } from '../vmm/image.js';
import { defaultGuestLinux } from '../vmm/guest.js';
import { probeDriveFormat } from '../vmm/drives.js';
import { NIC_MODELS } from '../vmm/netspec.js';
import { UsageError, type OptionSpec, type Parsed } from './options.js';
import type { StatusLine } from './status.js';
import { NET_OPTIONS, nicsFromOptions } from './netopts.js';
import { parseDrives } from './drive.js';
import { rtcStartSeconds } from './rtc.js';
import { virtioSpecs, VIRTIO_OPTIONS } from './virtio.js';

export const RUN_OPTIONS: OptionSpec[] = [
  { name: 'm', value: 'SIZE', help: 'guest RAM, e.g. 16M, 256M, 1G (no suffix: MiB; default 128M)' },
  { name: 'bios', value: 'FILE', help: `firmware ROM, mapped at the top of 4 GiB and its last 128 KiB below 1 MiB (default: Debian's SeaBIOS, ${DEFAULT_BIOS})` },
  { name: 'kernel', value: 'FILE', help: 'boot this Linux bzImage directly (32-bit boot protocol; no firmware unless -bios is also given)' },
  { name: 'initrd', value: 'FILE', help: 'initial ramdisk for -kernel' },
  { name: 'append', value: 'CMDLINE', help: 'kernel command line for -kernel' },
  { name: 'hda', value: 'FILE', help: 'disk image (raw or qcow2, told by its header) as the primary IDE master (opened read-write)' },
  { name: 'hdb', value: 'FILE', help: 'disk image (raw or qcow2) as the primary IDE slave' },
  { name: 'drive', value: 'OPTS', repeat: true, help: 'a drive as QEMU spells it: file=PATH,format=qcow2|raw,if=ide[,index=0-2][,media=cdrom][,snapshot=on][,readonly=on]; if=virtio for virtio-blk (/dev/vda), if=none,id=ID for -device virtio-blk-pci,drive=ID' },
  { name: 'cdrom', value: 'FILE', help: 'ISO image in the ATAPI CD-ROM drive (secondary master)' },
  { name: 'rtc', value: 'base=utc|localtime|DATE', help: "where the guest's clock starts: the host's time in UTC (default), in local time, or a fixed date (2024-05-01 or 2024-05-01T12:30:00) for reproducible runs; it then advances with guest time" },
  { name: 'boot', value: 'ORDER', help: "firmware boot order: c (hard disk), d (CD-ROM), e.g. 'd' or 'cd' (default cd)" },
  { name: 'snapshot', value: null, help: 'open disk images read-only and keep the guest\'s writes aside, discarded at exit' },
  { name: 'serial', value: 'DEV', help: 'COM1: stdio, file:PATH or none (default stdio)' },
  { name: 'display', value: 'TYPE', help: 'none (default), or curses: the VGA text screen drawn in this terminal, keys typed to the PS/2 keyboard' },
  { name: 'screendump', value: 'PATH', help: 'when the VM stops, write the screen to PATH: a PNG image if it ends in .png, else the text rows' },
  { name: 'nographic', value: null, help: 'no display; serial port and monitor on the terminal (Ctrl-A X quits, Ctrl-A C monitor)' },
  { name: 'debugcon', value: 'DEV', help: "the debug console (ports 0xE9 and 0x402, where SeaBIOS logs): stdio, file:PATH or none" },
  { name: 'postcodes', value: 'DEV', help: 'where POST codes written to port 0x80 go, one hex code per line' },
  { name: 'no-reboot', value: null, help: 'exit instead of rebooting when the guest resets' },
  { name: 'run-for', value: 'SECONDS', help: 'stop the VM after this much guest (virtual) time; deterministic, for scripts and tests (exit status 0)' },
  { name: 'timeout', value: 'SECONDS', help: 'stop the VM after this many seconds of wall time (exit status 3)' },
  { name: 'qmp', value: 'DEV', help: 'QMP, the QEMU Machine Protocol, for tools written for QEMU: unix:PATH,server[,wait=off] or tcp:HOST:PORT,server[,wait=off]; without wait=off the VM waits for the first client' },
  { name: 'accel', value: 'tsvm[,tier=T][,threshold=N][,hot=N]', help: 'execution tier: interp (interpreter only), blocks (hot code compiled to JS), wasm (hot pages compiled to WebAssembly; the default); threshold=N compiles an address after N entries (1: on first sight; default 2000); hot=N compiles a wasm region again with the host\'s optimising compiler once it has run N instructions (0: never; default: 100 per byte of the region\'s wasm, at least 1000000, the hottest first, the optimiser held to a tenth of the time)' },
  { name: 'd', value: 'ITEMS', help: "debug output on stderr; 'cpu' prints the final registers" },
  ...NET_OPTIONS,
  ...VIRTIO_OPTIONS,
  { name: 'help', value: null, help: 'show this help' },
];

/** The machine a set of `tsvm run` options describes (host paths resolved against the current directory). */
export function specFromOptions(opts: Parsed, defaultGuest: boolean, status: StatusLine): { spec: MachineSpec; bootLabel: string } {
  const one = (n: string) => opts.get(n)?.[0];

  const memText = one('m') ?? '128M';
  const memoryBytes = parseSize(memText);
  if (memoryBytes === undefined) throw new UsageError(`run: -m '${memText}' is not a size; write it like 256M or 1G`);

  const spec: MachineSpec = {
    version: 1,
    memoryBytes,
    bios: null,
    vgaBios: null,
    linux: null,
    boot: 'cd',
    drives: {},
    rtcEpochSec: rtcStartSeconds(one('rtc'), Date.now(), -new Date().getTimezoneOffset()),
    serial: 'stdio',
    debugcon: one('debugcon') ?? null,
    postcodes: one('postcodes') ?? null,
  };
  let bootLabel = 'firmware';
  if (defaultGuest) {
    let img = findDefaultImage();
    if (!img) {
      status.show('building the default guest image from Debian packages (first run only)');
      try {
        img = buildDefaultImage((m) => status.show(m));
      } catch (e) {
        status.clear();
        if (e instanceof ImageError) throw new UsageError(`the default guest could not be built: ${e.message}`);
        throw e;
      }
      status.done(`default guest built (Linux ${img.kernelVersion})`);
    }
    spec.linux = defaultGuestLinux(img, one('append'));
    bootLabel = `Linux ${img.kernelVersion}`;
  } else {
    const kernel = one('kernel');
    if (kernel) {
      const initrd = one('initrd');
      spec.linux = { kernel: resolve(kernel), cmdline: one('append') ?? '' };
      if (initrd) spec.linux.initrd = resolve(initrd);
      bootLabel = 'Linux';
    } else if (opts.has('initrd') || opts.has('append')) {
      throw new UsageError('run: -initrd and -append need -kernel');
    }
    const bios = one('bios');
    if (bios) spec.bios = resolve(bios); // a path, never the name 'seabios'
    else if (!kernel) spec.bios = 'seabios';
    // the VGA card's option ROM, as QEMU's -vga std carries it (whatever the system firmware)
    if (spec.bios && (!bios || seabiosVgaInstalled())) spec.vgaBios = 'seabios';
  }

  const boot = one('boot');
  if (boot !== undefined && !/^[acd]+$/.test(boot)) throw new UsageError(`run: -boot '${boot}' is not a boot order; use letters c (hard disk) and d (CD-ROM), e.g. -boot d`);
  spec.boot = boot ?? 'cd';
  for (const slot of ['hda', 'hdb', 'cdrom'] as DriveSlot[]) {
    const file = one(slot);
    if (file === undefined) continue;
    const mode = opts.has('snapshot') ? 'snapshot' : slot === 'cdrom' ? 'ro' : 'rw';
    spec.drives[slot] = slot === 'cdrom' ? { file, format: 'raw', mode } : { file, format: probeDriveFormat(file, `-${slot}`), mode, probed: true };
  }
  // -drive, QEMU's spelling, into the same slots
  for (const d of parseDrives(opts.get('drive') ?? [], new Set((['hda', 'hdb', 'cdrom'] as DriveSlot[]).filter((n) => opts.has(n))))) {
    const mode = opts.has('snapshot') || d.snapshot ? 'snapshot' : d.media === 'cdrom' || d.readonly ? 'ro' : 'rw';
    spec.drives[d.slot] = d.format ? { file: d.file, format: d.format, mode } : { file: d.file, format: probeDriveFormat(d.file, '-drive'), mode, probed: true };
  }
  // the default guest has virtio-net's driver; other guests get QEMU's default, e1000
  const nics = nicsFromOptions(opts, defaultGuest ? 'virtio-net-pci' : 'e1000');
  if (nics.length) spec.nics = nics;
  const virtio = virtioSpecs(opts, { snapshot: opts.has('snapshot'), otherDeviceTypes: NIC_MODELS });
  if (virtio.length) spec.virtio = virtio;
  return { spec, bootLabel };
}
