/**
 * `tsvm create NAME [options]`: a VM folder from `tsvm run`'s machine
 * options (machineopts.ts). It builds a spec and copies files; it does not
 * load the emulator (main.ts imports it alone).
 */
import { basename, resolve } from 'node:path';
import { specDisks, VmFolder, VM_SUFFIX, type NewDisks } from '../vmm/folder.js';
import { parseSize } from '../vmm/spec.js';
import { defaultGuestVm } from '../vmm/guest.js';
import { formatHelp, UsageError, type OptionSpec } from './options.js';
import { DIR, dirOf, split } from './vmargs.js';
import { RUN_OPTIONS, specFromOptions } from './machineopts.js';
import { StatusLine } from './status.js';

const MACHINE_OPTIONS = ['m', 'bios', 'kernel', 'initrd', 'append', 'hda', 'hdb', 'cdrom', 'boot', 'rtc', 'nic'];

const CREATE_OPTIONS: OptionSpec[] = [
  DIR,
  ...RUN_OPTIONS.filter((o) => MACHINE_OPTIONS.includes(o.name)).map((o) =>
    ['hda', 'hdb', 'cdrom', 'bios', 'kernel', 'initrd'].includes(o.name) ? { ...o, help: o.help + '; copied into the VM folder' } : o,
  ),
  { name: 'disk-size', value: 'SIZE', help: 'size of the new (empty, sparse) disk: the default guest\'s data disk on virtio-blk (default 1G; /dev/vda, mounted on /data), or the IDE hard disk made when no -hda is given (default 2G with -cdrom)' },
  { name: 'help', value: null, help: 'show this help' },
];

const CREATE_USAGE = `Usage: tsvm create NAME [options]

Makes the VM folder NAME.tsvm/ (in the current directory, or --dir DIR)
holding everything the VM needs: vm.json, its disks, boot files, snapshots
and a log. Copy or move the folder and the VM goes with it. With no machine
options, the VM runs the default Linux guest with a 1 GiB data disk on
virtio-blk (/dev/vda: the guest makes a file system on it at its first boot
and mounts it on /data) and a virtio-net NIC on the user-mode network
(DHCP at boot; -nic none for no NIC); with -cdrom, it boots the ISO with an
empty 2 GiB IDE disk to install to; -hda uses a copy of an existing disk
image.`;

export function createCommand(args: string[]): number {
  const { words, opts } = split(args, CREATE_OPTIONS, 'create');
  if (opts.has('help')) {
    process.stdout.write(formatHelp(CREATE_USAGE, CREATE_OPTIONS));
    return 0;
  }
  if (words.length !== 1) throw new UsageError(`create: give one VM name: tsvm create NAME (got ${words.length ? words.join(' ') : 'none'})`);
  const name = basename(words[0], VM_SUFFIX);
  const path = words[0].includes('/') ? resolve(words[0].endsWith(VM_SUFFIX) ? words[0] : words[0] + VM_SUFFIX) : resolve(dirOf(opts), name + VM_SUFFIX);
  const defaultGuest = !['kernel', 'bios', 'hda', 'hdb', 'cdrom'].some((o) => opts.has(o));
  const status = new StatusLine(process.stderr);
  const made = specFromOptions(opts, defaultGuest, status);
  let spec = made.spec;
  let newDisks: NewDisks = {};
  const sizeText = opts.get('disk-size')?.[0];
  const diskBytes = (text: string) => {
    const size = parseSize(text);
    if (size === undefined || size < 512 || size % 512 !== 0) throw new UsageError(`create: -disk-size '${text}' is not a disk size; write it like 1G or 512M`);
    return size;
  };
  if (defaultGuest) {
    // the default guest's VM, as the daemon makes it too: a virtio-blk data disk, a NIC on the user-mode network unless told otherwise
    ({ spec, newDisks } = defaultGuestVm(spec, { diskBytes: sizeText === undefined ? undefined : diskBytes(sizeText), nics: opts.has('nic') ? (spec.nics ?? []) : undefined }));
  } else if (!spec.drives.hda && (opts.has('cdrom') || sizeText !== undefined)) {
    newDisks = { hda: diskBytes(sizeText ?? '2G') };
  }
  const vm = VmFolder.create(path, name, spec, newDisks, opts.get('rtc')?.[0] ?? 'base=utc');
  const disks = specDisks(vm.spec).map((d) => `${d.disk.file}${d.key.startsWith('vd') ? ' on virtio-blk' : ''}`);
  const nics = (vm.spec.nics ?? []).map((n) => `${n.model} NIC on the ${n.net === 'user' ? 'user-mode network' : 'socket network'}`);
  process.stdout.write(`created ${vm.path} (${vm.spec.memoryBytes / 1048576} MiB RAM${disks.length ? ', disk ' + disks.join(', ') : ''}${nics.length ? ', ' + nics.join(', ') : ''}); start it with: tsvm start ${name}\n`);
  return 0;
}
