/**
 * ATAPI packet commands of a CD/DVD-ROM drive.
 *
 * References: INCITS 430 MMC-4 (READ TOC/PMA/ATIP, GET CONFIGURATION, GET
 * EVENT STATUS NOTIFICATION, READ DISC INFORMATION, MODE SENSE page 2Ah,
 * MECHANISM STATUS, START STOP UNIT), SPC-3 (INQUIRY, REQUEST SENSE fixed
 * format, sense keys), SFF-8020i (ATAPI transport). Field values follow QEMU's
 * hw/ide/atapi.c where MMC leaves a choice, since Linux's sr/cdrom drivers,
 * SeaBIOS and GRUB are known to work with those.
 *
 * A packet is executed here; the channel runs the data phase. Errors are a
 * CHECK CONDITION: the sense key, ASC and ASCQ are stored for REQUEST SENSE.
 */
import { Asc, ScsiCmd, SenseKey } from './regs.js';
import { CD_SECTOR_BYTES, FIRMWARE_REVISION, type IdeDrive, MediaEvent } from './drive.js';

/** Result of a packet command other than a reply length (>= 0 bytes in ioBuf). */
export const enum PacketResult {
  /** Completed with no data. */
  DONE = -1,
  /** CHECK CONDITION: sense data is set. */
  CHECK = -2,
  /** Sector data: xferLba/xferRemain say what to read. */
  READ = -3,
}

/** The ATAPI command packet is 12 bytes. */
export const PACKET_BYTES = 12;
/** Frames per second and the 2-second pregap of a CD (MSF addresses are LBA + 150). */
const FRAMES_PER_SECOND = 75;
const MSF_PREGAP_FRAMES = 150;
/** Largest CD in sectors (80 minutes); a bigger image is reported as a DVD. */
const CD_MAX_SECTORS = 80 * 60 * FRAMES_PER_SECOND;
/** TOC ADR/Control: data track, ADR 1 (Q sub-channel encodes position). */
const TOC_CONTROL_DATA = 0x14;
const TOC_CONTROL_LEADOUT = 0x16;
const TOC_LEADOUT_TRACK = 0xaa;
/** Full TOC (format 2): descriptor size and the POINT values for first track, last track, lead-out. */
const TOC_FULL_DESCRIPTOR_BYTES = 11;
const TOC_POINT_FIRST_TRACK = 0xa0;
const TOC_POINT_LAST_TRACK = 0xa1;
const TOC_POINT_LEADOUT = 0xa2;
/** MMC profiles (GET CONFIGURATION). */
const PROFILE_CDROM = 0x0008;
const PROFILE_DVDROM = 0x0010;
/** Interface standard in the Core feature: ATAPI. */
const CORE_INTERFACE_ATAPI = 2;
/** Event class bit for media events (GET EVENT STATUS NOTIFICATION). */
const EVENT_CLASS_MEDIA = 4;
const EVENT_NEA = 0x80;
/** Mode pages. */
const MODE_PAGE_ERROR_RECOVERY = 0x01;
const MODE_PAGE_CAPABILITIES = 0x2a;
const MODE_PAGE_ALL = 0x3f;
/** Read speed in kB/s that page 2Ah reports (4x: 4 * 176). */
const READ_SPEED_KBS = 704;
/** Fixed-format sense data: 18 bytes, response code 70h (current errors) with the VALID bit. */
const SENSE_BYTES = 18;
const SENSE_CURRENT = 0x70;
const SENSE_VALID = 0x80;
/** INQUIRY: peripheral device type 05h (CD/DVD), removable, response data format 1 with ATAPI version 2. */
const INQUIRY_BYTES = 36;
const PERIPHERAL_CDROM = 0x05;
const INQUIRY_RMB = 0x80;
const INQUIRY_FORMAT = 0x21;
/** ASCQ values. */
const ASCQ_TRAY_CLOSED = 0x01;
const ASCQ_TRAY_OPEN = 0x02;
const ASCQ_REMOVAL_PREVENTED = 0x02;

/** Store sense data and report CHECK CONDITION. */
export function checkCondition(d: IdeDrive, key: SenseKey, asc: Asc, ascq = 0): PacketResult {
  d.senseKey = key;
  d.asc = asc;
  d.ascq = ascq;
  return PacketResult.CHECK;
}

/** The medium was inserted or removed by the host: the guest sees a UNIT ATTENTION and a media event. */
export function mediumChanged(d: IdeDrive): void {
  d.senseKey = SenseKey.UNIT_ATTENTION;
  d.asc = Asc.MEDIUM_MAY_HAVE_CHANGED;
  d.ascq = 0;
  d.mediaEvent = d.mediumPresent ? MediaEvent.NEW_MEDIA : MediaEvent.MEDIA_REMOVAL;
}

function be16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}
function be32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}
function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}
function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}
function putAscii(b: Uint8Array, off: number, len: number, s: string): void {
  for (let i = 0; i < len; i++) b[off + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
}

/** Put an address as 4 bytes: LBA big-endian, or 00h M S F. */
function putAddress(b: Uint8Array, off: number, lba: number, msf: boolean): void {
  if (!msf) {
    put32(b, off, lba);
    return;
  }
  const [m, sec, f] = toMsf(lba);
  b[off] = 0;
  b[off + 1] = m;
  b[off + 2] = sec;
  b[off + 3] = f;
}

/** Minute, second and frame of a logical block (MSF counts the 2-second pregap). */
function toMsf(lba: number): [number, number, number] {
  const f = lba + MSF_PREGAP_FRAMES;
  return [Math.floor(f / (FRAMES_PER_SECOND * 60)) & 0xff, Math.floor(f / FRAMES_PER_SECOND) % 60, f % FRAMES_PER_SECOND];
}

/** Commands that still run while a UNIT ATTENTION is pending (SPC-3 5.9.7; MMC-4 4.1.6.1). */
function allowedWithUnitAttention(op: number): boolean {
  return op === ScsiCmd.INQUIRY || op === ScsiCmd.REQUEST_SENSE || op === ScsiCmd.GET_CONFIGURATION || op === ScsiCmd.GET_EVENT_STATUS_NOTIFICATION;
}

function notReady(d: IdeDrive): PacketResult {
  return checkCondition(d, SenseKey.NOT_READY, Asc.MEDIUM_NOT_PRESENT, d.trayOpen ? ASCQ_TRAY_OPEN : ASCQ_TRAY_CLOSED);
}

function isDvd(d: IdeDrive): boolean {
  return d.totalSectors > CD_MAX_SECTORS;
}

/**
 * Execute the packet in d.ioBuf[0..12). Returns the reply length (the reply is
 * in d.ioBuf from offset 0, already cut to the allocation length) or a PacketResult.
 */
export function execPacket(d: IdeDrive): number {
  const b = d.ioBuf;
  const cdb = b.slice(0, PACKET_BYTES);
  const op = cdb[0];
  if (d.senseKey === SenseKey.UNIT_ATTENTION) {
    if (!allowedWithUnitAttention(op)) return PacketResult.CHECK;
  } else if (op !== ScsiCmd.REQUEST_SENSE) {
    d.senseKey = SenseKey.NO_SENSE;
    d.asc = Asc.NONE;
    d.ascq = 0;
  }
  b.fill(0);
  switch (op) {
    case ScsiCmd.TEST_UNIT_READY:
      return d.mediumPresent ? PacketResult.DONE : notReady(d);

    case ScsiCmd.REQUEST_SENSE: {
      b[0] = SENSE_CURRENT | SENSE_VALID;
      b[2] = d.senseKey;
      b[7] = SENSE_BYTES - 8;
      b[12] = d.asc;
      b[13] = d.ascq;
      d.senseKey = SenseKey.NO_SENSE;
      d.asc = Asc.NONE;
      d.ascq = 0;
      return Math.min(SENSE_BYTES, cdb[4]);
    }

    case ScsiCmd.INQUIRY: {
      if (cdb[1] & 1) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
      b[0] = PERIPHERAL_CDROM;
      b[1] = INQUIRY_RMB;
      b[2] = 0;
      b[3] = INQUIRY_FORMAT;
      b[4] = INQUIRY_BYTES - 5;
      const sp = d.model.indexOf(' ');
      putAscii(b, 8, 8, sp > 0 ? d.model.slice(0, sp) : 'tsvm');
      putAscii(b, 16, 16, sp > 0 ? d.model.slice(sp + 1) : d.model);
      putAscii(b, 32, 4, FIRMWARE_REVISION);
      return Math.min(INQUIRY_BYTES, be16(cdb, 3));
    }

    case ScsiCmd.MODE_SENSE_10:
      return modeSense(d, cdb);

    case ScsiCmd.START_STOP_UNIT: {
      const loej = (cdb[4] & 2) !== 0;
      const start = (cdb[4] & 1) !== 0;
      if (!loej) return PacketResult.DONE;
      if (start) {
        if (d.trayOpen) {
          d.trayOpen = false;
          if (d.mediumPresent) mediumChanged(d);
        }
        return PacketResult.DONE;
      }
      if (d.locked) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.MEDIUM_REMOVAL_PREVENTED, ASCQ_REMOVAL_PREVENTED);
      if (!d.trayOpen) {
        d.trayOpen = true;
        d.mediaEvent = MediaEvent.MEDIA_REMOVAL;
      }
      return PacketResult.DONE;
    }

    case ScsiCmd.PREVENT_ALLOW_MEDIUM_REMOVAL:
      d.locked = (cdb[4] & 1) !== 0;
      return PacketResult.DONE;

    case ScsiCmd.READ_CAPACITY:
      if (!d.mediumPresent) return notReady(d);
      put32(b, 0, d.totalSectors - 1);
      put32(b, 4, CD_SECTOR_BYTES);
      return 8;

    case ScsiCmd.READ_10:
    case ScsiCmd.READ_12: {
      if (!d.mediumPresent) return notReady(d);
      const lba = be32(cdb, 2);
      const n = op === ScsiCmd.READ_10 ? be16(cdb, 7) : be32(cdb, 6);
      if (lba + n > d.totalSectors) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE);
      if (n === 0) return PacketResult.DONE;
      d.xferLba = lba;
      d.xferRemain = n;
      return PacketResult.READ;
    }

    case ScsiCmd.SEEK_10:
      if (!d.mediumPresent) return notReady(d);
      if (be32(cdb, 2) >= d.totalSectors) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.LBA_OUT_OF_RANGE);
      return PacketResult.DONE;

    case ScsiCmd.READ_TOC:
      if (!d.mediumPresent) return notReady(d);
      return readToc(d, cdb);

    case ScsiCmd.READ_DISC_INFORMATION: {
      if (!d.mediumPresent) return notReady(d);
      if (cdb[1] & 7) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
      const len = 34;
      put16(b, 0, len - 2);
      b[2] = 0x0e; // last session complete, disc finalized
      b[3] = 1; // first track on disc
      b[4] = 1; // number of sessions (LSB)
      b[5] = 1; // first track in last session (LSB)
      b[6] = 1; // last track in last session (LSB)
      b[7] = 0x20; // unrestricted use
      b[8] = 0x00; // disc type: CD-DA or CD-ROM
      return Math.min(len, be16(cdb, 7));
    }

    case ScsiCmd.GET_CONFIGURATION:
      return getConfiguration(d, cdb);

    case ScsiCmd.GET_EVENT_STATUS_NOTIFICATION: {
      if (!(cdb[1] & 1)) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB); // only polled mode
      const supported = 1 << EVENT_CLASS_MEDIA;
      let len: number;
      if (cdb[4] & supported) {
        b[2] = EVENT_CLASS_MEDIA;
        b[3] = supported;
        b[4] = d.mediaEvent;
        b[5] = (d.mediumPresent ? 2 : 0) | (d.trayOpen ? 1 : 0);
        d.mediaEvent = MediaEvent.NONE;
        len = 8;
      } else {
        b[2] = EVENT_NEA;
        b[3] = supported;
        len = 4;
      }
      put16(b, 0, len - 4);
      return Math.min(len, be16(cdb, 7));
    }

    case ScsiCmd.MECHANISM_STATUS:
      b[1] = d.trayOpen ? 0x10 : 0; // door open
      return Math.min(8, be16(cdb, 8));

    case ScsiCmd.SET_CD_SPEED:
      return PacketResult.DONE;

    default:
      return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_COMMAND_OPCODE);
  }
}

function readToc(d: IdeDrive, cdb: Uint8Array): number {
  const b = d.ioBuf;
  const msf = (cdb[1] & 2) !== 0;
  let format = cdb[2] & 0x0f;
  if (format === 0) format = cdb[9] >>> 6; // SFF-8020i put the format in the control byte
  const startTrack = cdb[6];
  const alloc = be16(cdb, 7);
  let len: number;
  if (format === 0) {
    if (startTrack > 1 && startTrack !== TOC_LEADOUT_TRACK) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
    b[2] = 1; // first track
    b[3] = 1; // last track
    let p = 4;
    if (startTrack <= 1) {
      b[p + 1] = TOC_CONTROL_DATA;
      b[p + 2] = 1;
      putAddress(b, p + 4, 0, msf);
      p += 8;
    }
    b[p + 1] = TOC_CONTROL_LEADOUT;
    b[p + 2] = TOC_LEADOUT_TRACK;
    putAddress(b, p + 4, d.totalSectors, msf);
    len = p + 8;
  } else if (format === 1) {
    b[2] = 1; // first session
    b[3] = 1; // last session
    b[5] = TOC_CONTROL_DATA;
    b[6] = 1; // first track of the last session
    putAddress(b, 8, 0, msf);
    len = 12;
  } else if (format === 2) {
    // Full TOC: Q sub-channel descriptors of the lead-in (MMC-4 6.26.3.4), 11 bytes each:
    // session, ADR/control, TNO 0, POINT, MIN, SEC, FRAME, ZERO, PMIN, PSEC, PFRAME.
    b[2] = 1; // first session
    b[3] = 1; // last session
    let p = 4;
    const desc = (point: number, pmin: number, psec: number, pframe: number) => {
      b[p] = 1;
      b[p + 1] = TOC_CONTROL_DATA;
      b[p + 3] = point;
      b[p + 8] = pmin;
      b[p + 9] = psec;
      b[p + 10] = pframe;
      p += TOC_FULL_DESCRIPTOR_BYTES;
    };
    desc(TOC_POINT_FIRST_TRACK, 1, 0x00, 0); // first track 1, disc type CD-DA/CD-ROM
    desc(TOC_POINT_LAST_TRACK, 1, 0, 0); // last track 1
    desc(TOC_POINT_LEADOUT, ...toMsf(d.totalSectors)); // lead-out start
    desc(1, ...toMsf(0)); // track 1 start
    len = p;
  } else {
    return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
  }
  put16(b, 0, len - 2);
  return Math.min(len, alloc);
}

function modeSense(d: IdeDrive, cdb: Uint8Array): number {
  const b = d.ioBuf;
  const pc = cdb[2] >>> 6;
  const page = cdb[2] & 0x3f;
  const alloc = be16(cdb, 7);
  if (pc === 3) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.SAVING_PARAMETERS_NOT_SUPPORTED);
  if (page !== MODE_PAGE_ERROR_RECOVERY && page !== MODE_PAGE_CAPABILITIES && page !== MODE_PAGE_ALL) {
    return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
  }
  const changeable = pc === 1;
  b[2] = d.mediumPresent ? 0x01 : 0x70; // medium type: 120 mm data CD, or door closed / no disc
  let p = 8;
  if (page === MODE_PAGE_ERROR_RECOVERY || page === MODE_PAGE_ALL) {
    b[p] = MODE_PAGE_ERROR_RECOVERY;
    b[p + 1] = 6;
    if (!changeable) b[p + 3] = 5; // read retry count
    p += 8;
  }
  if (page === MODE_PAGE_CAPABILITIES || page === MODE_PAGE_ALL) {
    b[p] = MODE_PAGE_CAPABILITIES;
    b[p + 1] = 0x12;
    if (!changeable) {
      b[p + 2] = 0x3b; // reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM media
      b[p + 4] = 0x71; // audio play, mode 2 form 1 and 2, multisession
      b[p + 5] = 0x60; // ISRC, UPC
      b[p + 6] = 0x29 | (d.locked ? 0x02 : 0); // lock supported, eject, tray loader (| locked)
      put16(b, p + 8, READ_SPEED_KBS); // maximum read speed
      put16(b, p + 10, 2); // volume levels
      put16(b, p + 12, 512); // buffer size in KiB
      put16(b, p + 14, READ_SPEED_KBS); // current read speed
    }
    p += 20;
  }
  put16(b, 0, p - 2);
  return Math.min(p, alloc);
}

function getConfiguration(d: IdeDrive, cdb: Uint8Array): number {
  const b = d.ioBuf;
  const rt = cdb[1] & 3;
  const start = be16(cdb, 2);
  const alloc = be16(cdb, 7);
  if (rt === 3) return checkCondition(d, SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
  const profile = d.mediumPresent ? (isDvd(d) ? PROFILE_DVDROM : PROFILE_CDROM) : 0;
  put16(b, 6, profile);
  let p = 8;
  const want = (code: number) => (rt === 2 ? code === start : code >= start);
  if (want(0x0000)) {
    // Profile List: DVD-ROM and CD-ROM, the current one flagged.
    put16(b, p, 0x0000);
    b[p + 2] = 0x03; // persistent, current
    b[p + 3] = 8;
    put16(b, p + 4, PROFILE_DVDROM);
    b[p + 6] = profile === PROFILE_DVDROM ? 1 : 0;
    put16(b, p + 8, PROFILE_CDROM);
    b[p + 10] = profile === PROFILE_CDROM ? 1 : 0;
    p += 12;
  }
  if (want(0x0001)) {
    // Core: the physical interface is ATAPI.
    put16(b, p, 0x0001);
    b[p + 2] = 0x03;
    b[p + 3] = 4;
    put32(b, p + 4, CORE_INTERFACE_ATAPI);
    p += 8;
  }
  if (want(0x0003)) {
    // Removable Medium: tray loader, eject, lock (and whether locked).
    put16(b, p, 0x0003);
    b[p + 2] = 0x03;
    b[p + 3] = 4;
    b[p + 4] = (1 << 5) | 0x08 | 0x01 | (d.locked ? 0x04 : 0);
    p += 8;
  }
  put32(b, 0, p - 4);
  return Math.min(p, alloc);
}
