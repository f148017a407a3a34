/**
 * The PS/2 connector: how a controller (the 8042) and a device (keyboard or
 * mouse) talk, plus the scan-code translation both sides need. This is an
 * interface file, like backends.ts, not a device: the 8042 owns two Ps2Port
 * objects and each PS/2 device plugs itself into one at construction, so
 * neither holds the other's class.
 *
 * Reference: IBM PS/2 Hardware Interface Technical Reference (Keyboard and
 * Auxiliary Device Controller); the set 2 -> set 1 table is the 8042's
 * translation (Intel 8042 firmware as used in PC/AT-compatibles).
 */

/** A PS/2 device as its controller sees it. */
export interface Ps2Device {
  /** A byte from the controller: a command, or the argument of the previous command. */
  write(byte: number): void;
  /** Take the next byte the device has to send, or -1 when it has none. */
  read(): number;
}

/** One PS/2 connector of a controller, as a device sees it. */
export interface Ps2Port {
  /** Plug `dev` into this connector (the device does this in its constructor). */
  attach(dev: Ps2Device): void;
  /** The device has bytes to send: the controller takes them with read() when its buffer is free. */
  dataReady(): void;
}

/** The prefix of a break code in scan code set 2. */
export const SET2_BREAK_PREFIX = 0xf0;
/** In set 1 a break code is the make code with this bit set. */
export const SET1_BREAK_BIT = 0x80;

/**
 * Set 2 -> set 1 translation, indexed by the set 2 byte. Bytes 0x80 and up pass
 * through unchanged (prefixes E0/E1 and the replies FA, AA, EE, FE), except
 * 0x83 (F7's make code), which is the one set 2 make code above 0x7F.
 */
export const SET2_TO_SET1: Uint8Array = (() => {
  const low = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
  ];
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = i < 0x80 ? low[i] : i;
  t[0x83] = 0x41;
  return t;
})();

/**
 * A set 2 -> set 1 translator with the state the 8042 keeps between bytes (an
 * F0 prefix waiting for its key). Returns the translated byte, or -1 for a
 * swallowed F0.
 */
export function translateSet2(byte: number, state: { f0: boolean }): number {
  if (byte === SET2_BREAK_PREFIX) {
    state.f0 = true;
    return -1;
  }
  const v = SET2_TO_SET1[byte & 0xff] | (state.f0 ? SET1_BREAK_BIT : 0);
  state.f0 = false;
  return v;
}
