/**
 * One ATA/ATAPI device on an IDE channel: its copy of the taskfile, its status,
 * the sector buffer behind the data port, and the settings the guest changes
 * (multiple mode, transfer modes, logical geometry, write cache, power mode;
 * for a CD drive the sense data, tray and lock).
 *
 * Both devices on a cable latch every taskfile write (ATA/ATAPI-6 section 7:
 * "the host writes the Command Block registers of both devices"), but each
 * answers reads from its own copy, which is why signatures differ after a reset.
 */
import type { BlockBackend } from '../backends.js';
import { bool, f64, i32, u8, u8s, u16, u32, type Fields } from '../../state/schema.js';
import { AtaSelect, AtaStatus, DIAG_PASSED } from './regs.js';
import { defaultGeometry, LBA28_LIMIT, MAX_MULT_SECTORS } from './identify.js';

/** What is plugged in at a drive position. */
export const enum DriveKind {
  NONE = 0,
  DISK = 1,
  CDROM = 2,
}

/** Bytes behind the data port: the largest DRQ block (16 sectors of 512) and room for a 2048-byte CD sector. */
export const IO_BUF_BYTES = MAX_MULT_SECTORS * 512;
export const SECTOR_BYTES = 512;
export const CD_SECTOR_BYTES = 2048;

/** What the end of the current PIO data block leads to. */
export const enum Xfer {
  NONE = 0,
  /** A data-in block after which the command is complete (IDENTIFY). */
  IN_LAST = 1,
  /** READ SECTORS / MULTIPLE: more sectors may follow. */
  ATA_READ = 2,
  /** WRITE SECTORS / MULTIPLE: the block goes to the medium when full. */
  ATA_WRITE = 3,
  /** The 12-byte ATAPI command packet. */
  PACKET_CDB = 4,
  /** ATAPI data to the host, in chunks of at most the byte count limit. */
  ATAPI_IN = 5,
}

/** What the drive's timer does when it fires (the drive is busy until then). */
export const enum Step {
  NONE = 0,
  EXEC_COMMAND = 1,
  WRITE_BLOCK = 2,
  PACKET_EXEC = 3,
  DMA_RUN = 4,
}

/** A drive position's configuration, given by the board. */
export type IdeDriveSpec =
  | { kind: 'disk'; backend: BlockBackend; serial?: string; model?: string }
  | { kind: 'cdrom'; backend: BlockBackend | null; serial?: string; model?: string };

/** Firmware revision reported by IDENTIFY and INQUIRY. */
export const FIRMWARE_REVISION = '0.1';
export const DISK_MODEL = 'tsvm HARDDISK';
export const CDROM_MODEL = 'tsvm DVD-ROM';

/** A drive's saved state (DRIVE_FIELDS, and the channel's timer deadline for it). */
export type IdeDriveState = { kind: number; ioBuf: Uint8Array; deadlineNs: number; [field: string]: number | boolean | Uint8Array };

/** Media event codes of GET EVENT STATUS NOTIFICATION (MMC-4 Table 306). */
export const enum MediaEvent {
  NONE = 0,
  EJECT_REQUEST = 1,
  NEW_MEDIA = 2,
  MEDIA_REMOVAL = 3,
}

export class IdeDrive {
  readonly kind: DriveKind;
  backend: BlockBackend | null;
  readonly serial: string;
  readonly model: string;
  /** 512-byte sectors of a disk, 2048-byte sectors of a CD medium. */
  totalSectors = 0;
  readonly cylinders: number = 0;
  readonly heads: number = 0;
  readonly sectors: number = 0;

  // Taskfile (current and previous "HOB" values) and status.
  status = 0;
  error = 0;
  feature = 0;
  nsector = 0;
  sector = 0;
  lcyl = 0;
  hcyl = 0;
  select: number = AtaSelect.OBSOLETE;
  hobFeature = 0;
  hobNsector = 0;
  hobSector = 0;
  hobLcyl = 0;
  hobHcyl = 0;
  /** The command being executed. */
  command = 0;
  /** The command uses 48-bit addressing (the EXT forms). */
  lba48 = false;

  // PIO and DMA transfer.
  readonly ioBuf = new Uint8Array(IO_BUF_BYTES);
  xfer: Xfer = Xfer.NONE;
  /** Current DRQ block is ioBuf[dataPos, dataEnd). */
  dataPos = 0;
  dataEnd = 0;
  /** ATAPI: valid reply bytes in ioBuf (the DRQ chunk is a part of it). */
  bufEnd = 0;
  /** Next sector to move to or from the medium, and how many are left. */
  xferLba = 0;
  xferRemain = 0;
  /** Sectors in the current DRQ block. */
  blockSectors = 0;
  /** READ/WRITE MULTIPLE (DRQ blocks of multSectors). */
  multCmd = false;
  /** A DMA command is waiting for the bus master to be started. */
  dmaPending = false;
  /** The pending DMA moves data into guest memory. */
  dmaToMemory = false;
  step: Step = Step.NONE;

  // Settings.
  multSectors = MAX_MULT_SECTORS;
  curCylinders = 0;
  curHeads = 0;
  curSectors = 0;
  mdmaMode = -1;
  udmaMode = 5;
  writeCache = true;
  standby = false;

  // ATAPI.
  senseKey = 0;
  asc = 0;
  ascq = 0;
  mediaEvent: MediaEvent = MediaEvent.NONE;
  trayOpen = false;
  locked = false;
  /** PACKET's Features bit 0: the data phase uses DMA. */
  atapiDma = false;
  /** PACKET's byte count limit (Cylinder High/Low). */
  byteLimit = 0;

  constructor(spec: IdeDriveSpec | null, defaultSerial: string) {
    if (!spec) {
      this.kind = DriveKind.NONE;
      this.backend = null;
      this.serial = '';
      this.model = '';
      return;
    }
    this.backend = spec.backend;
    this.serial = spec.serial ?? defaultSerial;
    if (spec.kind === 'disk') {
      this.kind = DriveKind.DISK;
      this.model = spec.model ?? DISK_MODEL;
      this.totalSectors = Math.floor(spec.backend.sizeBytes / SECTOR_BYTES);
      const g = defaultGeometry(this.totalSectors);
      this.cylinders = g.cylinders;
      this.heads = g.heads;
      this.sectors = g.sectors;
    } else {
      this.kind = DriveKind.CDROM;
      this.model = spec.model ?? CDROM_MODEL;
      this.totalSectors = spec.backend ? Math.floor(spec.backend.sizeBytes / CD_SECTOR_BYTES) : 0;
    }
    this.powerOn();
  }

  get present(): boolean {
    return this.kind !== DriveKind.NONE;
  }

  get isCdrom(): boolean {
    return this.kind === DriveKind.CDROM;
  }

  /** A CD drive has a readable medium: one inserted and the tray closed. */
  get mediumPresent(): boolean {
    return this.kind === DriveKind.CDROM && this.backend !== null && !this.trayOpen && this.totalSectors > 0;
  }

  /** Power-on / hardware reset: settings back to defaults, then the reset protocol. */
  powerOn(): void {
    this.multSectors = MAX_MULT_SECTORS;
    this.mdmaMode = -1;
    this.udmaMode = 5;
    this.writeCache = true;
    this.standby = false;
    this.setDefaultLogicalGeometry();
    this.senseKey = 0;
    this.asc = 0;
    this.ascq = 0;
    this.mediaEvent = MediaEvent.NONE;
    this.trayOpen = false;
    this.locked = false;
    this.feature = this.hobFeature = this.hobNsector = this.hobSector = this.hobLcyl = this.hobHcyl = 0;
    this.select = AtaSelect.OBSOLETE;
    this.softReset();
  }

  /** The current geometry goes back to the default one (power-on, or INITIALIZE DEVICE PARAMETERS undone). */
  setDefaultLogicalGeometry(): void {
    this.curCylinders = this.cylinders;
    this.curHeads = this.heads;
    this.curSectors = this.sectors;
  }

  /** End of a soft reset (SRST, DEVICE RESET): abandon any transfer, load the signature. */
  softReset(): void {
    this.abandon();
    this.setSignature();
    this.error = DIAG_PASSED;
    // Packet devices leave DRDY clear after a reset (ATA/ATAPI-6 9.1).
    this.status = this.kind === DriveKind.DISK ? AtaStatus.DRDY | AtaStatus.DSC : 0;
    this.lba48 = false;
  }

  /** Stop any transfer in progress (the caller disarms the timer). */
  abandon(): void {
    this.xfer = Xfer.NONE;
    this.dataPos = this.dataEnd = this.bufEnd = 0;
    this.xferLba = this.xferRemain = this.blockSectors = 0;
    this.multCmd = false;
    this.dmaPending = false;
    this.dmaToMemory = false;
    this.atapiDma = false;
    this.step = Step.NONE;
  }

  /** The reset signature in the taskfile: 01h/01h, then 0000h for ATA or EB14h for ATAPI (ATA/ATAPI-6 9.12). */
  setSignature(): void {
    this.select &= ~AtaSelect.HEAD_MASK;
    this.nsector = 1;
    this.sector = 1;
    if (this.kind === DriveKind.CDROM) {
      this.lcyl = 0x14;
      this.hcyl = 0xeb;
    } else {
      this.lcyl = 0;
      this.hcyl = 0;
    }
  }

  /** Addressable sectors with LBA28 commands. */
  get lba28Sectors(): number {
    return Math.min(this.totalSectors, LBA28_LIMIT + 1);
  }
}

/**
 * A drive's state: the taskfile and its HOB values, the transfer in
 * progress and its buffer, the settings and the ATAPI state. `kind` is saved
 * so that a state is refused by a drive of another kind; the rest of the
 * configuration (backend, geometry, names) comes from the board. The
 * channel adds the drive's timer deadline (IdeChannel.stateFields).
 */
export const DRIVE_FIELDS: Fields = {
  kind: u8,
  ioBuf: u8s(IO_BUF_BYTES),
  status: u8,
  error: u8,
  feature: u8,
  nsector: u8,
  sector: u8,
  lcyl: u8,
  hcyl: u8,
  select: u8,
  hobFeature: u8,
  hobNsector: u8,
  hobSector: u8,
  hobLcyl: u8,
  hobHcyl: u8,
  command: u8,
  xfer: u8.range(Xfer.NONE, Xfer.ATAPI_IN),
  dataPos: u32.range(0, IO_BUF_BYTES),
  dataEnd: u32.range(0, IO_BUF_BYTES),
  bufEnd: u32.range(0, IO_BUF_BYTES),
  xferLba: f64.range(0, 2 ** 48),
  xferRemain: u32,
  blockSectors: u8.range(0, MAX_MULT_SECTORS),
  step: u8.range(Step.NONE, Step.DMA_RUN),
  multSectors: u8.range(0, MAX_MULT_SECTORS),
  curCylinders: u16,
  curHeads: u8.range(0, 16),
  curSectors: u8,
  mdmaMode: i32.range(-1, 2),
  udmaMode: i32.range(-1, 5),
  senseKey: u8,
  asc: u8,
  ascq: u8,
  mediaEvent: u8.range(MediaEvent.NONE, MediaEvent.MEDIA_REMOVAL),
  byteLimit: u16,
  lba48: bool,
  multCmd: bool,
  dmaPending: bool,
  dmaToMemory: bool,
  writeCache: bool,
  standby: bool,
  trayOpen: bool,
  locked: bool,
  atapiDma: bool,
};

/** Drive properties that are configuration from the board, not state. */
export const DRIVE_TRANSIENT = ['backend', 'serial', 'model', 'totalSectors', 'cylinders', 'heads', 'sectors'];
