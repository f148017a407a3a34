/**
 * `tsvm clone SRC DST [--linked [--snapshot TAG]]`: a full or a linked clone
 * of a VM folder. It needs the VM folder code and the qcow2 writer, not the
 * emulator: main.ts imports it alone, so a linked clone costs Node's start-up
 * and a few small files (bench/clone.ts measures it).
 */
import { basename, resolve } from 'node:path';
import { cloneVm, linkedClone, VmFolderError, VM_SUFFIX } from '../vmm/folder.js';
import { formatHelp, UsageError, type OptionSpec } from './options.js';
import { DIR, dirOf, openVm, split } from './vmargs.js';

export function cloneCommand(args: string[]): number {
  const specs: OptionSpec[] = [
    DIR,
    { name: 'linked', value: null, help: "share the source's disks through backing files instead of copying them" },
    { name: 'snapshot', value: 'TAG', help: 'with --linked: the source snapshot to share (default: a new one, clone-DST)' },
    { name: 'help', value: null, help: 'show this help' },
  ];
  const { words, opts } = split(args, specs, 'clone');
  if (opts.has('help')) {
    process.stdout.write(
      formatHelp(
        "Usage: tsvm clone SRC DST [--linked [--snapshot TAG]]\n\nA full clone is a self-contained copy of the VM folder (disks, snapshots) under a new name.\nA linked clone's disks are overlays over a snapshot of SRC (no disk data copied); SRC keeps that\nsnapshot (it refuses to delete it), and the two folders must move together.",
        specs,
      ),
    );
    return 0;
  }
  if (words.length !== 2) throw new UsageError('clone: give the source and the new name: tsvm clone SRC DST');
  if (opts.has('snapshot') && !opts.has('linked')) throw new UsageError('clone: --snapshot goes with --linked (a full clone copies every snapshot)');
  const src = openVm(words[0], opts, 'clone');
  if (src.lockedBy()) throw new VmFolderError(`VM ${src.name} is running; stop it (or quit --save) before cloning`);
  const name = basename(words[1], VM_SUFFIX);
  const dstPath = words[1].includes('/') ? resolve(words[1].endsWith(VM_SUFFIX) ? words[1] : words[1] + VM_SUFFIX) : resolve(dirOf(opts), name + VM_SUFFIX);
  if (!opts.has('linked')) {
    const dst = cloneVm(src, dstPath, name);
    process.stdout.write(`cloned ${src.name} to ${dst.path}\n`);
    return 0;
  }
  const { vm: dst, node } = linkedClone(src, opts.get('snapshot')?.[0] ?? null, dstPath, name);
  process.stdout.write(`linked clone ${dst.path} of ${src.name} at snapshot ${node.name} (keep the two folders together)\n`);
  return 0;
}
