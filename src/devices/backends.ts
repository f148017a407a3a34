/**
 * What devices need from the host. Devices receive these interfaces from the
 * board and never touch Node or the DOM themselves.
 */

/** A byte stream out of the machine (debug console, POST codes, serial output). */
export interface CharSink {
  write(byte: number): void;
}

/**
 * Keyboard input from the host, as key events (the PS/2 keyboard implements it).
 *
 * `code` names a key by its PC scan-code-set-2 make code: one byte for most keys
 * (0x1C is A), 0xE0nn for the extended keys (0xE075 is Up), and two keys whose
 * make sequences are longer: PrintScreen is 0xE07C and Pause is 0xE11477 (Pause
 * has no break code, so its keyUp does nothing). KEY below gives these codes by
 * the DOM `KeyboardEvent.code` name, so a browser host passes `KEY[e.code]`.
 * A keyDown for a key that is already down is ignored: the keyboard repeats a
 * held key itself, at the rate the guest programmed (typematic), so the host
 * must not send its own auto-repeat (a host that has no key-up events, such as
 * a terminal, sends keyDown and keyUp together).
 */
export interface KeyboardInput {
  keyDown(code: number): void;
  keyUp(code: number): void;
}

/**
 * Mouse input from the host (the PS/2 mouse implements it). dx is positive to
 * the right and dy positive downwards (screen coordinates, as DOM movementX/Y);
 * dz is wheel steps, positive when scrolling down (towards the user, as DOM
 * deltaY). buttons: bit 0 left, bit 1 right, bit 2 middle, bits 3/4 the side
 * buttons (reported only once the guest enables the 5-button protocol).
 */
export interface MouseInput {
  move(dx: number, dy: number, buttons: number, dz?: number): void;
}

/** Scan-code-set-2 make codes for KeyboardInput, by DOM `KeyboardEvent.code` name (US 102/104-key layout). */
export const KEY: Readonly<Record<string, number>> = {
  Escape: 0x76, F1: 0x05, F2: 0x06, F3: 0x04, F4: 0x0c, F5: 0x03, F6: 0x0b, F7: 0x83, F8: 0x0a,
  F9: 0x01, F10: 0x09, F11: 0x78, F12: 0x07, PrintScreen: 0xe07c, ScrollLock: 0x7e, Pause: 0xe11477,
  Backquote: 0x0e, Digit1: 0x16, Digit2: 0x1e, Digit3: 0x26, Digit4: 0x25, Digit5: 0x2e, Digit6: 0x36,
  Digit7: 0x3d, Digit8: 0x3e, Digit9: 0x46, Digit0: 0x45, Minus: 0x4e, Equal: 0x55, Backspace: 0x66,
  Tab: 0x0d, KeyQ: 0x15, KeyW: 0x1d, KeyE: 0x24, KeyR: 0x2d, KeyT: 0x2c, KeyY: 0x35, KeyU: 0x3c,
  KeyI: 0x43, KeyO: 0x44, KeyP: 0x4d, BracketLeft: 0x54, BracketRight: 0x5b, Backslash: 0x5d,
  CapsLock: 0x58, KeyA: 0x1c, KeyS: 0x1b, KeyD: 0x23, KeyF: 0x2b, KeyG: 0x34, KeyH: 0x33, KeyJ: 0x3b,
  KeyK: 0x42, KeyL: 0x4b, Semicolon: 0x4c, Quote: 0x52, Enter: 0x5a,
  ShiftLeft: 0x12, IntlBackslash: 0x61, KeyZ: 0x1a, KeyX: 0x22, KeyC: 0x21, KeyV: 0x2a, KeyB: 0x32,
  KeyN: 0x31, KeyM: 0x3a, Comma: 0x41, Period: 0x49, Slash: 0x4a, ShiftRight: 0x59,
  ControlLeft: 0x14, MetaLeft: 0xe01f, AltLeft: 0x11, Space: 0x29, AltRight: 0xe011, MetaRight: 0xe027,
  ContextMenu: 0xe02f, ControlRight: 0xe014,
  Insert: 0xe070, Home: 0xe06c, PageUp: 0xe07d, Delete: 0xe071, End: 0xe069, PageDown: 0xe07a,
  ArrowUp: 0xe075, ArrowLeft: 0xe06b, ArrowDown: 0xe072, ArrowRight: 0xe074,
  NumLock: 0x77, NumpadDivide: 0xe04a, NumpadMultiply: 0x7c, NumpadSubtract: 0x7b, NumpadAdd: 0x79,
  Numpad7: 0x6c, Numpad8: 0x75, Numpad9: 0x7d, Numpad4: 0x6b, Numpad5: 0x73, Numpad6: 0x74,
  Numpad1: 0x69, Numpad2: 0x72, Numpad3: 0x7a, Numpad0: 0x70, NumpadDecimal: 0x71, NumpadEnter: 0xe05a,
};

/**
 * A disk image as a block device sees it: a byte array of fixed size that the
 * device reads and writes at byte offsets (always whole sectors in practice).
 *
 * The calls are synchronous: a device completes a command inside one timer
 * callback, which keeps it simple and makes replays deterministic. A host whose
 * storage is asynchronous (a browser reading a File, or fetching ranges over
 * HTTP) implements this over a cache it fills ahead of time, or the board pauses
 * the machine at a slice boundary until the missing range has arrived and then
 * re-runs the access; the device does not change either way.
 *
 * `read` and `write` may throw on a host I/O error; the device turns that into
 * the error its hardware reports (a medium error), never into a crash.
 */
export interface BlockBackend {
  /** Size of the image in bytes. Devices use whole sectors of it. */
  readonly sizeBytes: number;
  /** True when guest writes are refused (a CD image, a read-only file). */
  readonly readOnly: boolean;
  /** Fill `dst` from the image at byte `offset`. Bytes beyond the end read as zero. */
  read(offset: number, dst: Uint8Array): void;
  /** Store `src` at byte `offset`. Never called on a read-only backend. */
  write(offset: number, src: Uint8Array): void;
  /** Make completed writes durable (the guest's FLUSH CACHE). */
  flush(): void;
  /**
   * Fill `dsts` in order from byte `offset`, as if they were one buffer: one
   * vectored host call (readv) where the backend can. Optional; callers go
   * through `blockReadv`, which loops over `read` without it.
   */
  readv?(offset: number, dsts: readonly Uint8Array[]): void;
  /** Store `srcs` in order from byte `offset` (writev); optional, see `blockWritev`. */
  writev?(offset: number, srcs: readonly Uint8Array[]): void;
}

/** Read a list of buffers at `offset`: the backend's `readv`, or one `read` per buffer for a backend that has none. */
export function blockReadv(b: BlockBackend, offset: number, dsts: readonly Uint8Array[]): void {
  if (b.readv) return b.readv(offset, dsts);
  for (const d of dsts) {
    b.read(offset, d);
    offset += d.length;
  }
}

/** Write a list of buffers at `offset`: the backend's `writev`, or one `write` per buffer. */
export function blockWritev(b: BlockBackend, offset: number, srcs: readonly Uint8Array[]): void {
  if (b.writev) return b.writev(offset, srcs);
  for (const s of srcs) {
    b.write(offset, s);
    offset += s.length;
  }
}

/**
 * The network seam between a NIC (e1000, virtio-net, ...) and a network backend
 * (user-mode NAT, a virtual switch, a packet dump in between).
 *
 * Frames are whole Ethernet frames: destination MAC first, no preamble, no FCS,
 * at most 65535 bytes (a NIC with TSO or a virtio-net with big buffers may send
 * more than the 1514 of a plain Ethernet frame; backends accept them).
 *
 * Guest to host: the NIC calls `NetBackend.send()` while the guest runs. The
 * backend copies what it keeps (the NIC reuses its buffer).
 *
 * Host to guest: a backend never calls into the NIC from a host callback
 * (socket data, a timer). It queues the frame and asks for delivery with the
 * `wake` it was attached with; the machine then calls `deliver()` at the next
 * slice boundary (the host-input point), and `deliver()` hands the queued
 * frames to the NIC's `NetPort.receive()` while `canReceive()` says there is
 * room. A frame the NIC has no room for stays queued (up to a bound, then it
 * is dropped, as a full wire would) until the next `deliver()`; a NIC whose
 * receive ring gains room calls `wake` itself.
 */
export interface NetPort {
  /** True when the NIC has a receive buffer free (the guest enabled the receiver and posted buffers). */
  canReceive(): boolean;
  /**
   * Take one frame into guest memory and raise the receive interrupt. `gso`,
   * when given and non-zero, says the frame is one TCP/IPv4 segment larger
   * than an Ethernet frame that stands for segments of `gso` payload bytes (a
   * large receive, as a host's GRO makes); a backend sends one only to a NIC
   * whose largeReceive() is non-zero.
   */
  receive(frame: Uint8Array, gso?: number): void;
  /**
   * The most TCP payload bytes the NIC takes in one large receive now (the
   * guest negotiated it, e.g. virtio-net's GUEST_TSO4); absent or 0: frames
   * of an ordinary Ethernet MTU only.
   */
  largeReceive?(): number;
}

export interface NetBackend {
  /** Connect the NIC. `wake` asks the machine for a deliver() at the next slice boundary. */
  attach(port: NetPort, wake: () => void): void;
  /** A frame from the guest (called by the NIC during execution). */
  send(frame: Uint8Array): void;
  /** At a slice boundary: hand queued frames to the NIC while it has room. */
  deliver(): void;
  /** Release host resources (sockets, timers, files). */
  close(): void;
  /** What the backend is and holds for the NIC, for `info network` (optional). */
  status?(): NetBackendStatus;
}

/** A network backend's own account of the frames on their way to the NIC. */
export interface NetBackendStatus {
  /** What it is, as `info network` names it: "user", "socket connect=unix:/tmp/lab.sock", ... */
  kind: string;
  /** Frames waiting for the NIC to have room. */
  queued: number;
  /** Frames for the NIC the backend had to drop (its queue was full), since the start. */
  dropped: number;
  /** More to say, for example "reading paused: the NIC is behind". */
  note?: string;
}

/**
 * Entropy from the host for virtio-rng: fill `dst` with random bytes. The
 * Node host uses the operating system's generator; tests use a seeded one so
 * runs repeat.
 */
export interface EntropySource {
  fill(dst: Uint8Array): void;
}

/**
 * A byte stream out of the machine (virtio-console's port): the device calls
 * `write` with what the guest sent; host input goes in through the device's
 * own receive method, at slice boundaries.
 */
export interface CharBackend {
  write(data: Uint8Array): void;
}

/** Linux errno values a file-system backend reports (9P2000.L's Rlerror carries them). */
export const enum Errno {
  EPERM = 1,
  ENOENT = 2,
  EIO = 5,
  EBADF = 9,
  EACCES = 13,
  EBUSY = 16,
  EEXIST = 17,
  EXDEV = 18,
  ENOTDIR = 20,
  EISDIR = 21,
  EINVAL = 22,
  EMFILE = 24,
  EFBIG = 27,
  ENOSPC = 28,
  EROFS = 30,
  ENAMETOOLONG = 36,
  ENOSYS = 38,
  ENOTEMPTY = 39,
  ELOOP = 40,
  EOPNOTSUPP = 95,
}

/** A file-system backend's refusal, with the errno the guest sees. */
export class FsError extends Error {
  constructor(
    readonly errno: number,
    message = `errno ${errno}`,
  ) {
    super(message);
  }
}

/** What lstat says about a file (times in seconds and nanoseconds). */
export interface FsStat {
  /** st_mode: the file type bits (S_IFDIR 0o040000, S_IFREG 0o100000, S_IFLNK 0o120000, ...) and permissions. */
  mode: number;
  ino: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

/** Open flags, in Linux's numbering (9P2000.L passes the guest's flags through). */
export const enum LinuxOpen {
  ACCMODE = 3,
  WRONLY = 1,
  RDWR = 2,
  CREAT = 0o100,
  EXCL = 0o200,
  TRUNC = 0o1000,
  APPEND = 0o2000,
}

/**
 * A shared folder as virtio-9p sees it. Paths are relative to the share's
 * root, '/'-separated, with no '.', '..' or empty components (the device
 * resolves those and never lets '..' climb above the root); "" is the root.
 * An implementation must never touch anything outside the shared folder,
 * never follow a symbolic link on the last component, and check that the
 * directories on the way are still inside the folder (the host may have
 * changed them). Failures throw FsError with the errno the guest should get.
 * Calls are synchronous, like BlockBackend's.
 */
export interface FsBackend {
  readonly readOnly: boolean;
  lstat(path: string): FsStat;
  /** Names in a directory, without '.' and '..'. */
  readdir(path: string): string[];
  /** Open an existing file (never through a symlink); returns a handle. */
  open(path: string, flags: number): number;
  /** Create and open a file (flags include CREAT). */
  create(path: string, flags: number, mode: number): number;
  close(handle: number): void;
  read(handle: number, pos: number, dst: Uint8Array): number;
  write(handle: number, pos: number, src: Uint8Array): number;
  fsync(handle: number): void;
  mkdir(path: string, mode: number): void;
  symlink(target: string, path: string): void;
  link(existing: string, path: string): void;
  readlink(path: string): string;
  rename(from: string, to: string): void;
  /** Remove a file, or an empty directory when `dir`. */
  unlink(path: string, dir: boolean): void;
  /** Change what is given (size truncates or extends; times in seconds, with ns). */
  setattr(path: string, a: { mode?: number; size?: number; atime?: [number, number]; mtime?: [number, number] }): void;
  statfs(): { bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namelen: number };
}
