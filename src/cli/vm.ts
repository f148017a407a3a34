/**
 * VM folder commands: `tsvm create`, `start`, `list`, `snapshot` (`clone` is
 * in clone.ts, which does not load the machine).
 * A VM is NAME.tsvm/ in the current directory (or --dir DIR); every command
 * that takes NAME also takes the folder's path.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { checkVmName, cloneVm, formatTree, linkedClone, listVms, specDisks, vmPath, VmFolder, VmFolderError, VM_SUFFIX } from '../vmm/folder.js';
import { parseSize } from '../vmm/spec.js';
import { defaultGuestVm } from '../vmm/guest.js';
import type { NewDisks } from '../vmm/folder.js';
import { formatHelp, UsageError, type OptionSpec } from './options.js';
import { DIR, dirOf, openVm, split } from './vmargs.js';
import { RUN_OPTIONS, runSpec, specFromOptions } from './run.js';
import { StatusLine } from './status.js';
import { rtcStartSeconds } from './rtc.js';

const MACHINE_OPTIONS = ['m', 'bios', 'kernel', 'initrd', 'append', 'hda', 'hdb', 'cdrom', 'boot', 'rtc', 'nic'];
const RUNTIME_OPTIONS = ['qmp', 'serial', 'display', 'screendump', 'nographic', 'no-reboot', 'run-for', 'timeout', 'd'];

const CREATE_OPTIONS: OptionSpec[] = [
  DIR,
  ...RUN_OPTIONS.filter((o) => MACHINE_OPTIONS.includes(o.name)).map((o) =>
    ['hda', 'hdb', 'cdrom', 'bios', 'kernel', 'initrd'].includes(o.name) ? { ...o, help: o.help + '; copied into the VM folder' } : o,
  ),
  { name: 'disk-size', value: 'SIZE', help: 'size of the new (empty, sparse) disk: the default guest\'s data disk on virtio-blk (default 1G; /dev/vda, mounted on /data), or the IDE hard disk made when no -hda is given (default 2G with -cdrom)' },
  { name: 'help', value: null, help: 'show this help' },
];
const START_OPTIONS: OptionSpec[] = [
  DIR,
  ...RUN_OPTIONS.filter((o) => RUNTIME_OPTIONS.includes(o.name)),
  // libvirt's name (virsh start --force-boot): a fresh boot, the saved state thrown away
  { name: 'force-boot', value: null, help: "boot afresh from the disks: discard the suspended state (quit --save's) instead of resuming it; snapshots are kept" },
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

export async function startCommand(args: string[]): Promise<number> {
  const { words, opts } = split(args, START_OPTIONS, 'start');
  if (opts.has('help')) {
    process.stdout.write(formatHelp('Usage: tsvm start NAME [options]\n\nRuns the VM in NAME.tsvm/ on this terminal, as tsvm run does; resumes it if it was suspended (quit --save),\nor boots it afresh with --force-boot (the suspended state is then discarded).\nIn the monitor (Ctrl-A C): savevm, loadvm, delvm, info snapshots, quit --save.', START_OPTIONS));
    return 0;
  }
  const vm = openVm(words[0], opts, 'start');
  vm.lock();
  try {
    const spec = { ...vm.spec, rtcEpochSec: rtcStartSeconds(vm.config.rtc, Date.now(), -new Date().getTimezoneOffset()) };
    return await runSpec(spec, opts, { status: new StatusLine(process.stderr), bootLabel: vm.name, command: 'start', baseDir: vm.path, vm, forceBoot: opts.has('force-boot') });
  } finally {
    vm.unlock();
  }
}

function human(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / 2 ** 30).toFixed(1)}G`;
  if (bytes >= 1 << 20) return `${(bytes / 2 ** 20).toFixed(1)}M`;
  return `${Math.ceil(bytes / 1024)}K`;
}

export function listCommand(args: string[]): number {
  const specs = [DIR, { name: 'help', value: null, help: 'show this help' }];
  const { opts } = split(args, specs, 'list');
  if (opts.has('help')) {
    process.stdout.write(formatHelp('Usage: tsvm list [--dir DIR]\n\nThe VM folders in a directory, with their state and size on disk.', specs));
    return 0;
  }
  const rows = [['NAME', 'STATE', 'RAM', 'SIZE', 'SNAPSHOTS']];
  for (const { path, vm, error } of listVms(dirOf(opts))) {
    if (!vm) {
      rows.push([basename(path, VM_SUFFIX), `broken: ${error}`, '', '', '']);
      continue;
    }
    const pid = vm.lockedBy();
    const state = pid ? `running (pid ${pid})` : vm.suspendedPath() ? 'suspended' : 'stopped';
    rows.push([vm.name, state, `${vm.spec.memoryBytes / 1048576}M`, human(vm.sizeBytes()), String(vm.tree().snapshots.length)]);
  }
  if (rows.length === 1) {
    process.stdout.write(`no VMs in ${dirOf(opts)} (tsvm create NAME makes one)\n`);
    return 0;
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) process.stdout.write(r.map((x, c) => x.padEnd(w[c])).join('  ').trimEnd() + '\n');
  return 0;
}

const SNAPSHOT_USAGE = `Usage: tsvm snapshot NAME save TAG [-desc TEXT] | revert TAG | delete TAG | list

Snapshots of a stopped VM: its disks, and its suspended state if it has one.
(Of a running VM, use the monitor: Ctrl-A C, savevm TAG.) Snapshots form a
tree: revert to any of them, run, save again, and both branches stay.`;

export function snapshotCommand(args: string[]): number {
  const specs: OptionSpec[] = [DIR, { name: 'desc', value: 'TEXT', help: 'a description for save' }, { name: 'help', value: null, help: 'show this help' }];
  const { words, opts } = split(args, specs, 'snapshot');
  if (opts.has('help') || words.length === 0) {
    process.stdout.write(formatHelp(SNAPSHOT_USAGE, specs));
    return opts.has('help') ? 0 : 1;
  }
  const vm = openVm(words[0], opts, 'snapshot');
  const [, action, tag] = words;
  if (action === 'list' || action === undefined) {
    process.stdout.write(formatTree(vm.tree()) + '\n');
    return 0;
  }
  if (!['save', 'revert', 'delete'].includes(action)) throw new UsageError(`snapshot: '${action}' is not an action; use save, revert, delete or list`);
  if (!tag) throw new UsageError(`snapshot: ${action} needs a snapshot name: tsvm snapshot ${vm.name} ${action} TAG`);
  vm.lock();
  try {
    if (action === 'save') {
      const n = vm.saveSnapshot(tag, opts.get('desc')?.[0] ?? '', null);
      process.stdout.write(`snapshot ${n.name} saved${n.hasState ? '' : ' (disks; the VM is powered off)'}\n`);
    } else if (action === 'revert') {
      const n = vm.revert(tag, null);
      process.stdout.write(`${vm.name} is back at snapshot ${n.name}; tsvm start ${vm.name} ${n.hasState ? 'resumes there' : 'boots from its disks'}\n`);
    } else {
      vm.deleteSnapshot(tag);
      process.stdout.write(`snapshot ${tag} deleted\n`);
    }
  } finally {
    vm.unlock();
  }
  return 0;
}
