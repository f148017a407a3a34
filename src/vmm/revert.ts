/**
 * Reverting a VM folder to a snapshot (`tsvm snapshot NAME revert TAG`,
 * the monitor's loadvm, the daemon's revert), and reading a snapshot's
 * state. Everything is checked before anything changes: the snapshot's
 * state file is read whole and checked, each of its disk images is opened
 * (a qcow2 image's header and tables, down its backing chain) and must be
 * the disk's size, and a running machine's state is validated as it is
 * loaded; only then does the folder put its files back
 * (VmFolder.revertFiles).
 *
 * Apart from folder.ts because the image check opens images through the
 * qcow2 reader (host/node/block.ts, storage/qcow2.ts) and the state is read
 * by the snapshot codec (snapshot.ts), which nothing else a folder does
 * needs: opening, listing and cloning one, and snapshots of a stopped VM,
 * read and write qcow2 headers only (host/node/qcow2file.ts) and copy
 * state files whole, so `tsvm clone --linked` loads neither.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Machine } from '../board/machine.js';
import { BlockBackendError, openBlockFile } from '../host/node/block.js';
import { qcow2Info } from '../host/node/qcow2file.js';
import { specDisks, VmFolderError, type SnapshotNode, type VmFolder } from './folder.js';
import { readSnapshotFile, restoreSnapshot, type SnapshotFile } from './snapshot.js';

/**
 * Check that each disk image of snapshot `node` opens (a qcow2 image's
 * header and tables, down its backing chain) and is the disk's size,
 * before a revert changes anything: a damaged or missing image found only
 * when the new overlay goes over it would leave a running machine in the
 * snapshot's state on the present disk, and tree.json half reverted.
 */
function checkSnapshotDisks(vm: VmFolder, node: SnapshotNode): void {
  for (const { key: s, disk: d } of specDisks(vm.spec)) {
    const qcow2 = d.format === 'qcow2';
    const img = vm.snapshotImage(node.id, s);
    const refuse = (why: string) => new VmFolderError(`snapshot '${node.name}' cannot be loaded: its image of disk ${s} ${why}; nothing was changed`);
    let size: number;
    try {
      const o = openBlockFile(img, 'ro', `snapshots/${basename(img)}`, qcow2 ? 'qcow2' : 'raw');
      size = o.backend.sizeBytes;
      o.close();
    } catch (e) {
      if (e instanceof BlockBackendError) throw refuse(`is unusable: ${e.message.replace(`snapshots/${basename(img)}: `, '')}`);
      throw e;
    }
    const disk = join(vm.path, d.file);
    const now = !existsSync(disk) ? undefined : qcow2 ? qcow2Info(disk)?.size : statSync(disk).size;
    if (now !== undefined && size !== now) throw refuse(`holds ${size} bytes where the disk has ${now}`);
  }
}

/** Read and check a snapshot's state file without changing anything (null: a disks-only snapshot). */
export function readSnapshotState(vm: VmFolder, node: SnapshotNode): SnapshotFile | null {
  return node.hasState ? readSnapshotFile(vm.snapshotFile(node.id)) : null;
}

/**
 * Revert `vm` (locked) to its snapshot `tag`. With a running machine, its
 * state is loaded now (checked first: nothing changes if it does not fit).
 * A stopped VM gets the state as its suspended state, so the next start
 * resumes there (or, for a disks-only snapshot, boots afresh).
 */
export function revertSnapshot(vm: VmFolder, tag: string, machine: Machine | null): SnapshotNode {
  vm.needLock();
  const node = vm.find(tag);
  const file = readSnapshotState(vm, node);
  checkSnapshotDisks(vm, node);
  if (machine) {
    if (!file) throw new VmFolderError(`snapshot '${tag}' holds disks only (it was taken of a stopped VM); revert it with tsvm snapshot ${vm.name} revert ${tag} while the VM is stopped`);
    restoreSnapshot(machine, vm.spec, file); // validates first; throws before any change
  }
  vm.revertFiles(node, machine !== null, tag);
  return node;
}
