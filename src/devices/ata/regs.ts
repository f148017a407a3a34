/**
 * ATA/ATAPI register, bit and command names.
 *
 * References: ANSI INCITS 361-2002 "AT Attachment with Packet Interface - 6"
 * (ATA/ATAPI-6): sections 7 (registers) and 8 (commands), Table 20 (IDENTIFY
 * DEVICE words); SFF-8020i / INCITS 430 MMC-4 for the ATAPI packet commands;
 * SPC-3 for sense keys and additional sense codes; SFF-8038i (Bus Master
 * Programming Interface for IDE ATA Controllers) for the bus-master block.
 */

/** Offsets in the command block (1F0h-1F7h / 170h-177h). */
export const enum AtaReg {
  DATA = 0,
  /** Read: Error. Write: Features. */
  ERROR_FEATURES = 1,
  /** Sector Count; for ATAPI, Interrupt Reason on reads. */
  NSECTOR = 2,
  /** Sector Number / LBA 7:0. */
  SECTOR = 3,
  /** Cylinder Low / LBA 15:8; ATAPI byte count 7:0. */
  LCYL = 4,
  /** Cylinder High / LBA 23:16; ATAPI byte count 15:8. */
  HCYL = 5,
  /** Device/Head. */
  SELECT = 6,
  /** Read: Status (clears INTRQ). Write: Command. */
  STATUS_COMMAND = 7,
}

/** Status register bits. */
export const enum AtaStatus {
  ERR = 0x01,
  /** Obsolete index bit. */
  IDX = 0x02,
  /** Obsolete corrected-data bit. */
  CORR = 0x04,
  DRQ = 0x08,
  /** Device seek complete (obsolete in ATA-6 but set by every drive guests know). */
  DSC = 0x10,
  /** Device fault. */
  DF = 0x20,
  DRDY = 0x40,
  BSY = 0x80,
}

/** Error register bits. */
export const enum AtaError {
  /** Address mark not found (obsolete); also "diagnostic passed" code 01h after reset. */
  AMNF = 0x01,
  TK0NF = 0x02,
  ABRT = 0x04,
  MCR = 0x08,
  IDNF = 0x10,
  MC = 0x20,
  UNC = 0x40,
  ICRC = 0x80,
}

/** Error register value after reset or EXECUTE DEVICE DIAGNOSTIC: device 0 passed, device 1 passed or absent. */
export const DIAG_PASSED = 0x01;

/** Device/Head register bits. */
export const enum AtaSelect {
  HEAD_MASK = 0x0f,
  /** Drive select: 0 = master (device 0), 1 = slave (device 1). */
  DEV = 0x10,
  LBA = 0x40,
  /** Bits 7 and 5 are obsolete and read back as one on the drives guests expect. */
  OBSOLETE = 0xa0,
}

/** Device Control register (3F6h / 376h, write) bits. */
export const enum AtaDevCtl {
  /** Interrupt disable: INTRQ is not driven while set. */
  NIEN = 0x02,
  /** Software reset of both devices on the channel while set. */
  SRST = 0x04,
  /** High order byte: taskfile reads return the previous (HOB) values. */
  HOB = 0x80,
}

/** ATAPI Interrupt Reason (the Sector Count register of a packet device). */
export const enum AtapiIreason {
  /** Command (1) or data (0). */
  COD = 0x01,
  /** Transfer to the host (1) or to the device (0). */
  IO = 0x02,
  /** Release (overlap). */
  REL = 0x04,
}

/** ATA command opcodes implemented here (ATA/ATAPI-6 section 8). */
export const enum AtaCmd {
  NOP = 0x00,
  DEVICE_RESET = 0x08,
  /** RECALIBRATE is 10h-1Fh. */
  RECALIBRATE = 0x10,
  READ_SECTORS = 0x20,
  READ_SECTORS_NORETRY = 0x21,
  READ_SECTORS_EXT = 0x24,
  READ_DMA_EXT = 0x25,
  READ_MULTIPLE_EXT = 0x29,
  WRITE_SECTORS = 0x30,
  WRITE_SECTORS_NORETRY = 0x31,
  WRITE_SECTORS_EXT = 0x34,
  WRITE_DMA_EXT = 0x35,
  WRITE_MULTIPLE_EXT = 0x39,
  READ_VERIFY = 0x40,
  READ_VERIFY_NORETRY = 0x41,
  READ_VERIFY_EXT = 0x42,
  SEEK = 0x70,
  EXECUTE_DEVICE_DIAGNOSTIC = 0x90,
  INITIALIZE_DEVICE_PARAMETERS = 0x91,
  PACKET = 0xa0,
  IDENTIFY_PACKET_DEVICE = 0xa1,
  READ_MULTIPLE = 0xc4,
  WRITE_MULTIPLE = 0xc5,
  SET_MULTIPLE_MODE = 0xc6,
  READ_DMA = 0xc8,
  READ_DMA_NORETRY = 0xc9,
  WRITE_DMA = 0xca,
  WRITE_DMA_NORETRY = 0xcb,
  STANDBY_IMMEDIATE = 0xe0,
  IDLE_IMMEDIATE = 0xe1,
  STANDBY = 0xe2,
  IDLE = 0xe3,
  CHECK_POWER_MODE = 0xe5,
  SLEEP = 0xe6,
  FLUSH_CACHE = 0xe7,
  FLUSH_CACHE_EXT = 0xea,
  IDENTIFY_DEVICE = 0xec,
  SET_FEATURES = 0xef,
}

/** SET FEATURES subcommands (Features register). */
export const enum SetFeature {
  ENABLE_WRITE_CACHE = 0x02,
  SET_TRANSFER_MODE = 0x03,
  ENABLE_APM = 0x05,
  DISABLE_READ_LOOKAHEAD = 0x55,
  DISABLE_REVERT_TO_DEFAULTS = 0x66,
  DISABLE_WRITE_CACHE = 0x82,
  DISABLE_APM = 0x85,
  ENABLE_READ_LOOKAHEAD = 0xaa,
  ENABLE_REVERT_TO_DEFAULTS = 0xcc,
}

/** SET TRANSFER MODE values (Sector Count): mode type in bits 7:3, mode number in 2:0. */
export const enum XferMode {
  PIO_DEFAULT = 0x00,
  PIO_DEFAULT_NO_IORDY = 0x01,
  PIO_FLOW = 0x08,
  MWDMA = 0x20,
  UDMA = 0x40,
  TYPE_MASK = 0xf8,
  NUM_MASK = 0x07,
}

/** CHECK POWER MODE results (Sector Count). */
export const enum PowerMode {
  STANDBY = 0x00,
  IDLE = 0x80,
  ACTIVE_OR_IDLE = 0xff,
}

/** ATAPI packet opcodes (MMC-4 / SPC-3). */
export const enum ScsiCmd {
  TEST_UNIT_READY = 0x00,
  REQUEST_SENSE = 0x03,
  INQUIRY = 0x12,
  MODE_SELECT_6 = 0x15,
  MODE_SENSE_6 = 0x1a,
  START_STOP_UNIT = 0x1b,
  PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1e,
  READ_CAPACITY = 0x25,
  READ_10 = 0x28,
  SEEK_10 = 0x2b,
  READ_SUBCHANNEL = 0x42,
  READ_TOC = 0x43,
  GET_CONFIGURATION = 0x46,
  GET_EVENT_STATUS_NOTIFICATION = 0x4a,
  READ_DISC_INFORMATION = 0x51,
  MODE_SENSE_10 = 0x5a,
  READ_12 = 0xa8,
  SET_CD_SPEED = 0xbb,
  MECHANISM_STATUS = 0xbd,
}

/** SCSI sense keys. */
export const enum SenseKey {
  NO_SENSE = 0x0,
  NOT_READY = 0x2,
  MEDIUM_ERROR = 0x3,
  ILLEGAL_REQUEST = 0x5,
  UNIT_ATTENTION = 0x6,
}

/** Additional sense codes (ASC; the qualifier is 0 unless named). */
export const enum Asc {
  NONE = 0x00,
  UNRECOVERED_READ_ERROR = 0x11,
  INVALID_COMMAND_OPCODE = 0x20,
  LBA_OUT_OF_RANGE = 0x21,
  INVALID_FIELD_IN_CDB = 0x24,
  /** NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED. */
  MEDIUM_MAY_HAVE_CHANGED = 0x28,
  /** POWER ON, RESET, OR BUS DEVICE RESET OCCURRED. */
  POWER_ON_RESET = 0x29,
  SAVING_PARAMETERS_NOT_SUPPORTED = 0x39,
  MEDIUM_NOT_PRESENT = 0x3a,
  /** With ASCQ 02h: MEDIUM REMOVAL PREVENTED. */
  MEDIUM_REMOVAL_PREVENTED = 0x53,
}

/** Bus-master register offsets within a channel's 8 bytes (SFF-8038i section 2). */
export const enum BmReg {
  COMMAND = 0,
  STATUS = 2,
  PRD_ADDR = 4,
}

/** Bus-master command register bits. */
export const enum BmCmd {
  START = 0x01,
  /** Direction: 1 = bus master writes memory (a device read). */
  WRITE_TO_MEMORY = 0x08,
}

/** Bus-master status register bits. */
export const enum BmStatus {
  ACTIVE = 0x01,
  /** Set on a PCI target/master abort during the transfer; write 1 to clear. */
  ERROR = 0x02,
  /** Set when the IDE device asserted its interrupt; write 1 to clear. */
  INTERRUPT = 0x04,
  DRIVE0_DMA_CAPABLE = 0x20,
  DRIVE1_DMA_CAPABLE = 0x40,
  /** Channels cannot run DMA at the same time (0 on the PIIX3). */
  SIMPLEX = 0x80,
}

/** A PRD entry's last word: bit 15 marks the end of the table. */
export const PRD_EOT = 0x8000;
/** Bytes per PRD entry. */
export const PRD_ENTRY_BYTES = 8;
/** A byte count of 0 in a PRD entry means 64 KiB. */
export const PRD_MAX_BYTES = 0x10000;
/**
 * PRD entries walked before giving up on a table with no end bit. A table may
 * not cross a 64 KiB boundary (SFF-8038i), so a real controller would wrap
 * within it; QEMU stops after 4 KiB of entries, as we do.
 */
export const PRD_MAX_ENTRIES = 512;
