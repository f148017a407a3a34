/** The error of opening or changing a block image on the host (block.ts, qcow2file.ts). */

/** What went wrong opening an image. */
export type BlockErrorCode = 'NOT_FOUND' | 'IS_DIRECTORY' | 'NOT_A_FILE' | 'UNREADABLE' | 'EMPTY' | 'BAD_IMAGE' | 'UNSUPPORTED' | 'IO';

/** A host-side error opening or accessing a block image; the message says what to do. */
export class BlockBackendError extends Error {
  constructor(
    readonly code: BlockErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BlockBackendError';
  }
}
