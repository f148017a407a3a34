/**
 * The errors src/vmm reports that are the user's to fix (a bad vm.json, a
 * missing or locked VM folder, a damaged snapshot file): front ends print
 * them as one line. In a module of their own, with no imports, so that a
 * front end can tell them from a bug without loading the modules that
 * throw them (the CLI's main.ts, on every error of every command).
 */

/** A spec or host-resource problem; `subject` names the spec field (or drive slot) it is about. */
export class VmConfigError extends Error {
  constructor(
    readonly subject: string,
    readonly detail: string,
  ) {
    super(`${subject}: ${detail}`);
    this.name = 'VmConfigError';
  }
}

/** A VM folder problem (missing, locked, malformed); the message says what to do. */
export class VmFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmFolderError';
  }
}

/** A snapshot file that cannot be used, with what is wrong with it. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}
