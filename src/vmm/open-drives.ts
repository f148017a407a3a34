/**
 * The qcow2 disks this process has open read-write for a machine, by the
 * image's absolute path (drives.ts registers them): a VM folder commits one
 * before it freezes the image (savevm), and switches the device to the new
 * file after it puts a new overlay in its place (savevm, loadvm). Apart from
 * drives.ts, which opens images through the qcow2 reader, so that folder.ts
 * (snapshots of a stopped VM, clones) does not load that reader.
 */
import { resolve } from 'node:path';

/** An open disk a folder can act on between slices. */
export interface OpenDrive {
  /** Commit the image (its metadata on disk). */
  flush(): void;
  /** Open the file now at the path again, behind the same device. */
  reopen(): void;
}

const openDrives = new Map<string, OpenDrive>();

/** Register the disk open at `path` (absolute); returns what forgets it again (only if it is still this one). */
export function registerOpenDrive(path: string, d: OpenDrive): () => void {
  openDrives.set(path, d);
  return () => {
    if (openDrives.get(path) === d) openDrives.delete(path);
  };
}

/** Commit the image open at `path`, if any (its metadata on disk, before the file is frozen). */
export function flushOpenDrive(path: string): void {
  openDrives.get(resolve(path))?.flush();
}

/** Re-open the image at `path` behind the device that has it open (the file there was replaced). */
export function reopenDrive(path: string): void {
  openDrives.get(resolve(path))?.reopen();
}
