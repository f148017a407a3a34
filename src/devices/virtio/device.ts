/**
 * What a virtio device type (blk, net, console, rng, 9p) implements, and what
 * the transport gives it. A device knows its queues and its configuration
 * space; the transport (pci.ts) owns feature negotiation, status, queue
 * set-up, notifications and interrupts, as in the virtio 1.0 split between
 * "device types" (chapter 5) and "transports" (chapter 4).
 */
import type { GuestRam } from '../../bus/dma.js';
import type { Fields } from '../../state/schema.js';
import type { StateObject } from '../../state/state.js';
import type { VirtQueue } from './queue.js';

/** Virtio device IDs (5, "Device Types"). */
export const enum VirtioId {
  NET = 1,
  BLOCK = 2,
  CONSOLE = 3,
  ENTROPY = 4,
  NINEP = 9,
}

/** Transport-level feature bits (6, "Reserved Feature Bits"). */
export const enum VirtioF {
  RING_INDIRECT_DESC = 28,
  RING_EVENT_IDX = 29,
  VERSION_1 = 32,
}

/** The transport's side, handed to the device by attach(). */
export interface VirtioHost {
  readonly ram: GuestRam;
  readonly queues: readonly VirtQueue[];
  /** The device put buffers on `q`'s used ring: interrupt the driver if it asked for one. */
  used(q: VirtQueue): void;
  /** The device configuration changed (a config-change interrupt). */
  configChanged(): void;
  /** True while the driver has set DRIVER_OK and the device is not in its error state. */
  readonly live: boolean;
  /** Run `fn`, turning a VirtioError it throws into DEVICE_NEEDS_RESET (for work started by the host, not by a notification). */
  guarded(fn: () => void): void;
  /** Whether feature bit `bit` was negotiated. */
  negotiated(bit: number): boolean;
}

export interface VirtioDevice {
  readonly id: string;
  /** The virtio device ID (VirtioId). */
  readonly type: number;
  readonly queueCount: number;
  /** Device-specific feature bits, as two 32-bit words (bits 0-31, 32-63). */
  readonly features: readonly [number, number];
  /** The device configuration space the driver reads. */
  readonly config: Uint8Array;
  attach(host: VirtioHost): void;
  /** The driver wrote the device configuration space (default: read-only). */
  configWrite?(off: number, value: number, size: number): void;
  /** The driver notified queue `q` (may throw VirtioError on a malformed ring). */
  notify(q: number): void;
  /** The driver set DRIVER_OK. */
  driverOk?(): void;
  /** The driver reset the device (status 0) or the machine reset. */
  reset(): void;
  /**
   * The device type's own state, declared field by field (docs/state.md);
   * the transport's schema holds it as its struct `device`. Most types hold
   * none: their requests complete within the notification that starts them.
   */
  readonly stateFields: Fields;
  /** The device's own properties that are not state (its backend, scratch buffers, diagnostics), beside VIRTIO_DEVICE_TRANSIENT. */
  readonly stateTransient: readonly string[];
  /** Checks of the device's state that need more than its fields' kinds (throws StateError), run before anything is loaded. */
  checkState?(s: StateObject, where: string): void;
}

/** What every device type has that is not state: its name, type, queues, features and configuration space (configuration), and its transport (wiring). */
export const VIRTIO_DEVICE_TRANSIENT = ['id', 'type', 'queueCount', 'features', 'config', '_host', 'stateFields', 'stateTransient'];

/** Little-endian helpers for configuration spaces and request headers. */
export function le16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
export function le32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
/** A 64-bit little-endian value as a double (exact below 2^53; larger values come out huge and are refused by range checks). */
export function le64(b: Uint8Array, o: number): number {
  return le32(b, o) + le32(b, o + 4) * 0x1_0000_0000;
}
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}
export function put64(b: Uint8Array, o: number, v: number): void {
  put32(b, o, v >>> 0);
  put32(b, o + 4, Math.floor(v / 0x1_0000_0000) >>> 0);
}

/** Read `size` bytes little-endian at `off` from a byte array (0 beyond its end). */
export function readLe(b: Uint8Array, off: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | (off + i < b.length ? b[off + i] : 0);
  return v >>> 0;
}
