/**
 * IDENTIFY DEVICE and IDENTIFY PACKET DEVICE data (ATA/ATAPI-6 section 8.15,
 * Table 20, and 8.16, Table 22). Each is a 512-byte block of little-endian
 * words; strings are ASCII, two characters per word with the first in the high
 * byte, padded with spaces. Word 255 carries the integrity signature A5h and a
 * checksum making the 512 bytes sum to 0 mod 256.
 *
 * The values follow what QEMU's hw/ide/core.c reports, because SeaBIOS, GRUB
 * and Linux have been tested against it; the command-set bits only claim
 * what this emulation implements.
 */

/** Number of words in an identify block. */
export const IDENTIFY_WORDS = 256;
/** Largest DRQ block for READ/WRITE MULTIPLE (word 47). */
export const MAX_MULT_SECTORS = 16;
/** Largest cylinder count in the default CHS geometry (words 1, 54). */
export const MAX_CHS_CYLINDERS = 16383;
/** Default geometry heads and sectors per track (as BIOSes and QEMU use for LBA disks). */
export const DEFAULT_HEADS = 16;
export const DEFAULT_SECTORS = 63;
/** LBA28 addresses stop here (words 60-61 are capped at 2^28 - 1). */
export const LBA28_LIMIT = 0x0fff_ffff;
/** Integrity signature in the low byte of word 255. */
const IDENTIFY_SIGNATURE = 0xa5;

/** Word 0 of IDENTIFY PACKET DEVICE: ATAPI (10b), CD-ROM device type 05h, removable, DRQ within 50 us, 12-byte packets. */
export const ATAPI_CONFIG_CDROM = (2 << 14) | (5 << 8) | (1 << 7) | (2 << 5);
/** Word 0 of IDENTIFY DEVICE: fixed (non-removable) ATA device. */
const ATA_CONFIG_FIXED = 0x0040;

/** Transfer-mode settings a drive reports and the guest selects with SET FEATURES. */
export interface XferSettings {
  /** Selected multiword DMA mode 0-2, or -1. */
  mdmaMode: number;
  /** Selected Ultra DMA mode 0-5, or -1. */
  udmaMode: number;
}

/** What IDENTIFY DEVICE reports about a hard disk. */
export interface DiskIdentity extends XferSettings {
  model: string;
  serial: string;
  firmware: string;
  totalSectors: number;
  /** Default geometry (words 1, 3, 6). */
  cylinders: number;
  heads: number;
  sectors: number;
  /** Current logical geometry set by INITIALIZE DEVICE PARAMETERS (words 54-58). */
  curCylinders: number;
  curHeads: number;
  curSectors: number;
  /** Current READ/WRITE MULTIPLE block size, 0 when disabled. */
  multSectors: number;
  writeCache: boolean;
}

/** The default CHS geometry of a disk of `totalSectors`, as QEMU and BIOSes compute it for LBA disks. */
export function defaultGeometry(totalSectors: number): { cylinders: number; heads: number; sectors: number } {
  let cylinders = Math.floor(totalSectors / (DEFAULT_HEADS * DEFAULT_SECTORS));
  if (cylinders > MAX_CHS_CYLINDERS) cylinders = MAX_CHS_CYLINDERS;
  if (cylinders < 1) cylinders = 1;
  return { cylinders, heads: DEFAULT_HEADS, sectors: DEFAULT_SECTORS };
}

function putString(w: Uint16Array, word: number, nwords: number, s: string): void {
  for (let i = 0; i < nwords; i++) {
    const a = i * 2 < s.length ? s.charCodeAt(i * 2) & 0x7f : 0x20;
    const b = i * 2 + 1 < s.length ? s.charCodeAt(i * 2 + 1) & 0x7f : 0x20;
    w[word + i] = (a << 8) | b;
  }
}

function put32(w: Uint16Array, word: number, v: number): void {
  w[word] = v & 0xffff;
  w[word + 1] = Math.floor(v / 0x10000) & 0xffff;
}

function putModes(w: Uint16Array, x: XferSettings): void {
  w[62] = 0x0007; // single-word DMA 0-2 supported (retired, set as drives of the era did)
  w[63] = 0x0007 | (x.mdmaMode >= 0 ? 0x100 << x.mdmaMode : 0); // MWDMA 0-2 supported | selected
  w[64] = 0x0003; // PIO 3 and 4 supported
  w[88] = 0x003f | (x.udmaMode >= 0 ? 0x100 << x.udmaMode : 0); // UDMA 0-5 supported | selected
}

/** Write the identify block's words to `dst` as 512 little-endian bytes, with the word-255 checksum. */
function finish(w: Uint16Array, dst: Uint8Array): void {
  w[255] = IDENTIFY_SIGNATURE;
  let sum = 0;
  for (let i = 0; i < 255; i++) sum += (w[i] & 0xff) + (w[i] >>> 8);
  sum += IDENTIFY_SIGNATURE;
  w[255] |= ((0x100 - (sum & 0xff)) & 0xff) << 8;
  for (let i = 0; i < IDENTIFY_WORDS; i++) {
    dst[i * 2] = w[i] & 0xff;
    dst[i * 2 + 1] = w[i] >>> 8;
  }
}

/** Fill `dst[0..512)` with IDENTIFY DEVICE data for a hard disk. */
export function identifyDisk(id: DiskIdentity, dst: Uint8Array): void {
  const w = new Uint16Array(IDENTIFY_WORDS);
  w[0] = ATA_CONFIG_FIXED;
  w[1] = id.cylinders;
  w[3] = id.heads;
  w[4] = 512 * id.sectors; // retired: unformatted bytes per track
  w[5] = 512; // retired: unformatted bytes per sector
  w[6] = id.sectors;
  putString(w, 10, 10, id.serial);
  w[20] = 3; // retired: buffer type (dual ported, read cache)
  w[21] = 512; // retired: buffer size in sectors
  w[22] = 4; // obsolete: ECC bytes on READ/WRITE LONG
  putString(w, 23, 4, id.firmware);
  putString(w, 27, 20, id.model);
  w[47] = 0x8000 | MAX_MULT_SECTORS;
  w[48] = 1; // 32-bit PIO supported (vendor-specific word, read by old drivers)
  w[49] = (1 << 11) | (1 << 9) | (1 << 8); // IORDY supported, LBA supported, DMA supported
  w[50] = 0x4000; // capabilities word 2 valid
  w[51] = 0x200; // retired: PIO cycle timing mode 2
  w[52] = 0x200; // retired: DMA cycle timing mode 2
  w[53] = 0x0007; // words 54-58, 64-70 and 88 are valid
  w[54] = id.curCylinders;
  w[55] = id.curHeads;
  w[56] = id.curSectors;
  put32(w, 57, id.curCylinders * id.curHeads * id.curSectors);
  w[59] = id.multSectors ? 0x100 | id.multSectors : 0;
  put32(w, 60, Math.min(id.totalSectors, LBA28_LIMIT));
  putModes(w, id);
  w[65] = 120; // minimum MWDMA cycle time (ns)
  w[66] = 120; // recommended MWDMA cycle time
  w[67] = 120; // minimum PIO cycle time without flow control
  w[68] = 120; // minimum PIO cycle time with IORDY
  w[80] = 0x00f0; // ATA-4 to ATA-7
  w[81] = 0x0016; // minor version: ATA/ATAPI-5 T13 1321D revision 3
  // Words 82-87: supported (82-84) and enabled (85-87) command sets.
  // 82: NOP (14), write cache (5), power management (3). 83/86: bit 14 (valid, 83 only), FLUSH CACHE EXT (13),
  // FLUSH CACHE (12), 48-bit addressing (10). 84/87: bit 14 (valid).
  w[82] = (1 << 14) | (1 << 5) | (1 << 3);
  w[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10);
  w[84] = 1 << 14;
  w[85] = (1 << 14) | (id.writeCache ? 1 << 5 : 0) | (1 << 3);
  w[86] = (1 << 13) | (1 << 12) | (1 << 10);
  w[87] = 1 << 14;
  w[93] = (1 << 14) | (1 << 13) | 1; // hardware reset result: valid, 80-conductor cable (CBLID-), device 0 by jumper
  const lo = id.totalSectors % 0x1_0000_0000;
  const hi = Math.floor(id.totalSectors / 0x1_0000_0000);
  put32(w, 100, lo); // words 100-103: 48-bit maximum LBA + 1
  put32(w, 102, hi);
  finish(w, dst);
}

/** What IDENTIFY PACKET DEVICE reports about a CD/DVD drive. */
export interface CdromIdentity extends XferSettings {
  model: string;
  serial: string;
  firmware: string;
}

/** Fill `dst[0..512)` with IDENTIFY PACKET DEVICE data for a CD/DVD-ROM drive. */
export function identifyCdrom(id: CdromIdentity, dst: Uint8Array): void {
  const w = new Uint16Array(IDENTIFY_WORDS);
  w[0] = ATAPI_CONFIG_CDROM;
  putString(w, 10, 10, id.serial);
  w[20] = 3;
  w[21] = 512;
  w[22] = 4;
  putString(w, 23, 4, id.firmware);
  putString(w, 27, 20, id.model);
  w[48] = 1;
  w[49] = (1 << 11) | (1 << 9) | (1 << 8); // IORDY, LBA, DMA
  w[53] = 0x0007;
  putModes(w, id);
  w[65] = 0xb4; // minimum MWDMA cycle time (ns)
  w[66] = 0xb4;
  w[67] = 0x12c; // minimum PIO cycle time without flow control
  w[68] = 0xb4;
  w[71] = 30; // typical time (ns) to release the bus after PACKET
  w[72] = 30; // typical time after SERVICE
  w[80] = 0x001e; // ATA/ATAPI-1 to -4
  w[82] = (1 << 14) | (1 << 4) | (1 << 3); // NOP, PACKET, power management
  w[83] = 1 << 14;
  w[84] = 1 << 14;
  w[85] = (1 << 14) | (1 << 4) | (1 << 3);
  w[87] = 1 << 14;
  w[93] = (1 << 14) | (1 << 13) | 1;
  finish(w, dst);
}
