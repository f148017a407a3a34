/**
 * VM folder commands that need the folder alone: `tsvm list` and `tsvm
 * snapshot` (`create`, `start` and `clone` are in create.ts, start.ts and
 * clone.ts). main.ts imports each command's module when it runs, so these
 * do not load the emulator.
 * A VM is NAME.tsvm/ in the current directory (or --dir DIR); every command
 * that takes NAME also takes the folder's path.
 */
import { basename } from 'node:path';
import { formatTree, listVms, VM_SUFFIX } from '../vmm/folder.js';
import { formatHelp, UsageError, type OptionSpec } from './options.js';
import { DIR, dirOf, openVm, split } from './vmargs.js';

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

export async function snapshotCommand(args: string[]): Promise<number> {
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
      // revert.ts opens the snapshot's images through the qcow2 reader, which save, delete and list do not need
      const n = (await import('../vmm/revert.js')).revertSnapshot(vm, tag, null);
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
