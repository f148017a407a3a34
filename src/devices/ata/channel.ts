/**
 * One IDE channel: the command block (data, error/features, sector count,
 * LBA low/mid/high, device, status/command) and control block (alternate
 * status / device control) registers, two devices, the ATA command set, the
 * PIO data engine and the DMA command side of bus-master transfers.
 *
 * References: ATA/ATAPI-6 (INCITS 361-2002) sections 7 (registers), 8
 * (commands) and 9 (protocols: PIO data-in/out, DMA, PACKET, reset); 48-bit
 * addressing with the HOB bit and two-deep taskfile FIFO (section 6.20). Where
 * the standard leaves a choice, behaviour follows QEMU's hw/ide/core.c, which
 * SeaBIOS and Linux's ata_piix driver are known to work with.
 *
 * Timing: a command sets BSY and completes after a short delay in guest time
 * (a Timer per drive), and so do the packet of a PACKET command, each written
 * PIO block and a DMA transfer. Drivers see the BSY -> DRQ/INTRQ sequence real
 * drives produce, while boots stay fast. Later data-in blocks of a command
 * (and the completion of an ATAPI data-in command) follow at once, as in QEMU.
 */
import type { DmaView } from '../../bus/dma.js';
import type { IrqLine } from '../../bus/irq.js';
import type { IoPorts } from '../../bus/ports.js';
import type { Clock, Timer } from '../../time/clock.js';
import { bool, f64, struct, u8, type Fields } from '../../state/schema.js';
import { execPacket, mediumChanged, PACKET_BYTES, PacketResult, checkCondition } from './atapi.js';
import { BusMaster, BUS_MASTER_FIELDS, BUS_MASTER_TRANSIENT, busMasterLoaded, PrdResult } from './bmdma.js';
import { CD_SECTOR_BYTES, DRIVE_FIELDS, DRIVE_TRANSIENT, IdeDrive, type IdeDriveSpec, type IdeDriveState, SECTOR_BYTES, Step, Xfer, FIRMWARE_REVISION } from './drive.js';
import { identifyCdrom, identifyDisk, MAX_CHS_CYLINDERS, MAX_MULT_SECTORS } from './identify.js';
import {
  Asc, AtaCmd, AtaDevCtl, AtaError, AtaReg, AtaSelect, AtaStatus, AtapiIreason, BmStatus,
  SenseKey, SetFeature, XferMode, PowerMode,
} from './regs.js';

/** Guest time from a command (or a PIO block boundary) to its completion: a few microseconds. */
export const ATA_COMMAND_DELAY_NS = 4000;
/** Largest PIO mode (SET TRANSFER MODE 08h|n), MWDMA mode and UDMA mode accepted. */
const MAX_PIO_MODE = 4;
const MAX_MWDMA_MODE = 2;
const MAX_UDMA_MODE = 5;
/** A byte count limit of 0 or FFFFh is taken as FFFEh (ATA/ATAPI-6 9.10: the limit is even). */
const MAX_BYTE_LIMIT = 0xfffe;
/** Sectors moved per backend call during DMA. */
const DMA_CHUNK_SECTORS = MAX_MULT_SECTORS;
/** Largest disk size CHS can address with INITIALIZE DEVICE PARAMETERS geometry. */
const CHS_MAX_SECTORS = MAX_CHS_CYLINDERS * 16 * 63;
const TWO_24 = 0x100_0000;
const TWO_32 = 0x1_0000_0000;
const TWO_40 = 0x100_0000_0000;

/** What the board gives a channel. */
export interface IdeChannelDeps {
  ports: IoPorts;
  clock: Clock;
  irq: IrqLine;
  dma: DmaView;
}

/** A channel's saved state. */
export interface IdeChannelState {
  unit: number;
  devCtl: number;
  intrq: boolean;
  bm: { cmd: number; status: number; prdAddr: number };
  drive0: IdeDriveState;
  drive1: IdeDriveState;
}

export class IdeChannel {
  readonly drives: [IdeDrive, IdeDrive];
  readonly bm: BusMaster;
  /** The selected device (the DEV bit of the last Device register write). */
  unit = 0;
  /** Last Device Control write. */
  devCtl = 0;
  /** The channel's INTRQ before nIEN gating. */
  intrq = false;
  private _irqLevel = 0;
  private readonly _timers: [Timer, Timer];
  private readonly _clock: Clock;
  private readonly _irq: IrqLine;

  /**
   * @param id state section name, e.g. "ide.0"
   * @param owner port owner name
   * @param cmdBase command block base (1F0h or 170h)
   * @param ctlPort control block port (3F6h or 376h)
   */
  constructor(
    readonly id: string,
    owner: string,
    readonly cmdBase: number,
    readonly ctlPort: number,
    deps: IdeChannelDeps,
    specs: readonly [IdeDriveSpec | null, IdeDriveSpec | null],
    serialBase: number,
  ) {
    this._clock = deps.clock;
    this._irq = deps.irq;
    this.drives = [new IdeDrive(specs[0], serial(serialBase)), new IdeDrive(specs[1], serial(serialBase + 1))];
    this.drives[1].select |= AtaSelect.DEV;
    this.bm = new BusMaster(deps.dma);
    this.bm.onStart = () => this._kickDma();
    this._timers = [
      deps.clock.timer(`${id}.dev0`, () => this._runStep(0)),
      deps.clock.timer(`${id}.dev1`, () => this._runStep(1)),
    ];
    deps.ports.register(owner, cmdBase, 1, {
      read8: () => 0xff, // 8-bit data transfers are not enabled (CFA feature only)
      write8: () => {},
      read16: () => this._readData16(),
      write16: (_p, v) => this._writeData16(v),
      read32: () => this._readData32(),
      write32: (_p, v) => this._writeData32(v),
    });
    deps.ports.register(owner, cmdBase + 1, 7, {
      read8: (p) => this._readReg(p - cmdBase),
      write8: (p, v) => this._writeReg(p - cmdBase, v & 0xff),
    });
    deps.ports.register(owner, ctlPort, 1, {
      read8: () => this._altStatus(),
      write8: (_p, v) => this._writeDevCtl(v & 0xff),
    });
  }

  /** Hardware reset (RESET- asserted): drives back to power-on settings. */
  reset(): void {
    for (let i = 0; i < 2; i++) {
      this._clock.disarm(this._timers[i]);
      const d = this.drives[i];
      if (d.present) d.powerOn();
      d.select = AtaSelect.OBSOLETE | (i ? AtaSelect.DEV : 0);
    }
    this.unit = 0;
    this.devCtl = 0;
    this.intrq = false;
    this.bm.reset();
    this._updateIrq();
  }

  /** The host inserted or removed the medium of a CD drive. False when the drive is not a CD drive. */
  changeMedium(unit: number, backend: IdeDriveSpec['backend'] | null): boolean {
    const d = this.drives[unit];
    if (!d.isCdrom) return false;
    d.backend = backend;
    d.totalSectors = backend ? Math.floor(backend.sizeBytes / CD_SECTOR_BYTES) : 0;
    d.trayOpen = false;
    mediumChanged(d);
    return true;
  }

  // ---- registers ----

  private _noDrives(): boolean {
    return !this.drives[0].present && !this.drives[1].present;
  }

  private _readReg(reg: number): number {
    const d = this.drives[this.unit];
    if (this._noDrives()) return 0;
    const hob = (this.devCtl & AtaDevCtl.HOB) !== 0;
    switch (reg) {
      case AtaReg.ERROR_FEATURES:
        if (!d.present) return 0;
        return hob ? d.hobFeature : d.error;
      case AtaReg.NSECTOR:
        return hob ? d.hobNsector : d.nsector;
      case AtaReg.SECTOR:
        return hob ? d.hobSector : d.sector;
      case AtaReg.LCYL:
        return hob ? d.hobLcyl : d.lcyl;
      case AtaReg.HCYL:
        return hob ? d.hobHcyl : d.hcyl;
      case AtaReg.SELECT:
        return d.select;
      default: {
        // Status: reading it acknowledges the interrupt.
        this.intrq = false;
        this._updateIrq();
        return d.present ? d.status : 0;
      }
    }
  }

  private _altStatus(): number {
    const d = this.drives[this.unit];
    return d.present ? d.status : 0;
  }

  private _writeReg(reg: number, v: number): void {
    // Any command block write clears HOB (ATA/ATAPI-6 7.9).
    this.devCtl &= ~AtaDevCtl.HOB;
    if (reg === AtaReg.STATUS_COMMAND) {
      this._writeCommand(v);
      return;
    }
    for (let i = 0; i < 2; i++) {
      const d = this.drives[i];
      // A busy device ignores command block writes.
      if (d.status & AtaStatus.BSY) continue;
      switch (reg) {
        case AtaReg.ERROR_FEATURES:
          d.hobFeature = d.feature;
          d.feature = v;
          break;
        case AtaReg.NSECTOR:
          d.hobNsector = d.nsector;
          d.nsector = v;
          break;
        case AtaReg.SECTOR:
          d.hobSector = d.sector;
          d.sector = v;
          break;
        case AtaReg.LCYL:
          d.hobLcyl = d.lcyl;
          d.lcyl = v;
          break;
        case AtaReg.HCYL:
          d.hobHcyl = d.hcyl;
          d.hcyl = v;
          break;
        case AtaReg.SELECT:
          d.select = (v & ~AtaSelect.DEV) | AtaSelect.OBSOLETE | (i ? AtaSelect.DEV : 0);
          break;
      }
    }
    if (reg === AtaReg.SELECT) this.unit = (v & AtaSelect.DEV) !== 0 ? 1 : 0;
  }

  private _writeDevCtl(v: number): void {
    const old = this.devCtl;
    this.devCtl = v & (AtaDevCtl.NIEN | AtaDevCtl.SRST | AtaDevCtl.HOB);
    if (!(old & AtaDevCtl.SRST) && v & AtaDevCtl.SRST) {
      // SRST asserted: both devices go busy and drop what they were doing.
      for (let i = 0; i < 2; i++) {
        const d = this.drives[i];
        if (!d.present) continue;
        this._clock.disarm(this._timers[i]);
        d.abandon();
        d.status = AtaStatus.BSY | AtaStatus.DSC;
      }
      this.intrq = false;
    } else if (old & AtaDevCtl.SRST && !(v & AtaDevCtl.SRST)) {
      // SRST released: the reset protocol finishes with the signatures loaded and device 0 selected.
      for (const d of this.drives) if (d.present) d.softReset();
      this.unit = 0;
    }
    this._updateIrq();
  }

  private _writeCommand(v: number): void {
    const d = this.drives[this.unit];
    if (!d.present) return; // commands to an absent device are ignored
    if (d.status & AtaStatus.BSY) return;
    if (d.status & AtaStatus.DRQ && !(d.isCdrom && v === AtaCmd.DEVICE_RESET)) return;
    this.intrq = false; // writing the Command register clears INTRQ
    this._updateIrq();
    d.command = v;
    d.status = AtaStatus.BSY;
    this._schedule(this.unit, Step.EXEC_COMMAND);
  }

  // ---- interrupts and timing ----

  private _raise(): void {
    this.intrq = true;
    if (!(this.devCtl & AtaDevCtl.NIEN)) this.bm.status |= BmStatus.INTERRUPT;
    this._updateIrq();
  }

  private _updateIrq(): void {
    const level = this.intrq && !(this.devCtl & AtaDevCtl.NIEN) ? 1 : 0;
    if (level !== this._irqLevel) {
      this._irqLevel = level;
      this._irq.set(level);
    }
  }

  private _schedule(unit: number, step: Step): void {
    this.drives[unit].step = step;
    this._clock.arm(this._timers[unit], this._clock.nowNs + ATA_COMMAND_DELAY_NS);
  }

  private _runStep(unit: number): void {
    const d = this.drives[unit];
    const step = d.step;
    d.step = Step.NONE;
    switch (step) {
      case Step.EXEC_COMMAND:
        this._exec(d, unit);
        return;
      case Step.WRITE_BLOCK:
        this._ataWriteBlock(d);
        return;
      case Step.PACKET_EXEC:
        this._packetExec(d);
        return;
      case Step.DMA_RUN:
        this._runDma(unit);
        return;
      default:
        return;
    }
  }

  // ---- command completion ----

  private _complete(d: IdeDrive): void {
    d.xfer = Xfer.NONE;
    d.status = AtaStatus.DRDY | AtaStatus.DSC;
    d.error = 0;
    this._raise();
  }

  private _fail(d: IdeDrive, error: number): void {
    d.abandon();
    d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.ERR;
    d.error = error;
    if (d.isCdrom) d.nsector = AtapiIreason.IO | AtapiIreason.COD;
    this._raise();
  }

  private _abort(d: IdeDrive): void {
    this._fail(d, AtaError.ABRT);
  }

  // ---- ATA commands ----

  private _exec(d: IdeDrive, unit: number): void {
    const cmd = d.command;
    // Commands both kinds of device implement.
    switch (cmd) {
      case AtaCmd.EXECUTE_DEVICE_DIAGNOSTIC:
        for (let i = 0; i < 2; i++) {
          const x = this.drives[i];
          if (!x.present) continue;
          if (i !== unit) this._clock.disarm(this._timers[i]);
          x.softReset();
        }
        this._raise();
        return;
      case AtaCmd.SET_FEATURES:
        this._setFeatures(d);
        return;
      case AtaCmd.CHECK_POWER_MODE:
        d.nsector = d.standby ? PowerMode.STANDBY : PowerMode.ACTIVE_OR_IDLE;
        this._complete(d);
        return;
      case AtaCmd.IDLE:
      case AtaCmd.IDLE_IMMEDIATE:
        d.standby = false;
        this._complete(d);
        return;
      case AtaCmd.STANDBY:
      case AtaCmd.STANDBY_IMMEDIATE:
      case AtaCmd.SLEEP:
        d.standby = true;
        this._complete(d);
        return;
    }
    if (d.isCdrom) {
      this._execPacketDevice(d);
      return;
    }
    d.standby = false;
    switch (cmd) {
      case AtaCmd.IDENTIFY_DEVICE:
        identifyDisk(
          {
            model: d.model, serial: d.serial, firmware: FIRMWARE_REVISION, totalSectors: d.totalSectors,
            cylinders: d.cylinders, heads: d.heads, sectors: d.sectors,
            curCylinders: d.curCylinders, curHeads: d.curHeads, curSectors: d.curSectors,
            multSectors: d.multSectors, writeCache: d.writeCache, mdmaMode: d.mdmaMode, udmaMode: d.udmaMode,
          },
          d.ioBuf,
        );
        this._pioIn(d, 512, Xfer.IN_LAST);
        return;
      case AtaCmd.READ_SECTORS:
      case AtaCmd.READ_SECTORS_NORETRY:
        this._ataRw(d, false, RwKind.PIO_READ, false);
        return;
      case AtaCmd.READ_SECTORS_EXT:
        this._ataRw(d, true, RwKind.PIO_READ, false);
        return;
      case AtaCmd.READ_MULTIPLE:
        this._ataRw(d, false, RwKind.PIO_READ, true);
        return;
      case AtaCmd.READ_MULTIPLE_EXT:
        this._ataRw(d, true, RwKind.PIO_READ, true);
        return;
      case AtaCmd.WRITE_SECTORS:
      case AtaCmd.WRITE_SECTORS_NORETRY:
        this._ataRw(d, false, RwKind.PIO_WRITE, false);
        return;
      case AtaCmd.WRITE_SECTORS_EXT:
        this._ataRw(d, true, RwKind.PIO_WRITE, false);
        return;
      case AtaCmd.WRITE_MULTIPLE:
        this._ataRw(d, false, RwKind.PIO_WRITE, true);
        return;
      case AtaCmd.WRITE_MULTIPLE_EXT:
        this._ataRw(d, true, RwKind.PIO_WRITE, true);
        return;
      case AtaCmd.READ_DMA:
      case AtaCmd.READ_DMA_NORETRY:
        this._ataRw(d, false, RwKind.DMA_READ, false);
        return;
      case AtaCmd.READ_DMA_EXT:
        this._ataRw(d, true, RwKind.DMA_READ, false);
        return;
      case AtaCmd.WRITE_DMA:
      case AtaCmd.WRITE_DMA_NORETRY:
        this._ataRw(d, false, RwKind.DMA_WRITE, false);
        return;
      case AtaCmd.WRITE_DMA_EXT:
        this._ataRw(d, true, RwKind.DMA_WRITE, false);
        return;
      case AtaCmd.READ_VERIFY:
      case AtaCmd.READ_VERIFY_NORETRY:
        this._ataRw(d, false, RwKind.VERIFY, false);
        return;
      case AtaCmd.READ_VERIFY_EXT:
        this._ataRw(d, true, RwKind.VERIFY, false);
        return;
      case AtaCmd.SEEK: {
        d.lba48 = false;
        const lba = this._lba(d);
        if (lba < 0 || lba >= d.lba28Sectors) {
          this._fail(d, AtaError.IDNF);
          return;
        }
        this._complete(d);
        return;
      }
      case AtaCmd.SET_MULTIPLE_MODE: {
        const n = d.nsector;
        if (n === 0 || n > MAX_MULT_SECTORS || (n & (n - 1)) !== 0) {
          this._abort(d);
          return;
        }
        d.multSectors = n;
        this._complete(d);
        return;
      }
      case AtaCmd.INITIALIZE_DEVICE_PARAMETERS: {
        const spt = d.nsector;
        const heads = (d.select & AtaSelect.HEAD_MASK) + 1;
        if (spt === 0) {
          this._abort(d);
          return;
        }
        d.curSectors = spt;
        d.curHeads = heads;
        d.curCylinders = Math.min(Math.floor(Math.min(d.totalSectors, CHS_MAX_SECTORS) / (spt * heads)), 0xffff);
        this._complete(d);
        return;
      }
      case AtaCmd.FLUSH_CACHE:
      case AtaCmd.FLUSH_CACHE_EXT:
        try {
          d.backend?.flush();
        } catch {
          this._abort(d);
          return;
        }
        this._complete(d);
        return;
      default:
        if ((cmd & 0xf0) === AtaCmd.RECALIBRATE) {
          this._complete(d);
          return;
        }
        this._abort(d);
        return;
    }
  }

  /** ATA commands sent to a packet device. */
  private _execPacketDevice(d: IdeDrive): void {
    switch (d.command) {
      case AtaCmd.PACKET:
        d.atapiDma = (d.feature & 1) !== 0;
        d.byteLimit = d.lcyl | (d.hcyl << 8);
        d.nsector = AtapiIreason.COD;
        d.dataPos = 0;
        d.dataEnd = PACKET_BYTES;
        d.xfer = Xfer.PACKET_CDB;
        d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ; // no interrupt before the packet
        return;
      case AtaCmd.IDENTIFY_PACKET_DEVICE:
        identifyCdrom({ model: d.model, serial: d.serial, firmware: FIRMWARE_REVISION, mdmaMode: d.mdmaMode, udmaMode: d.udmaMode }, d.ioBuf);
        this._pioIn(d, 512, Xfer.IN_LAST);
        return;
      case AtaCmd.DEVICE_RESET:
        // Completes without an interrupt; the signature tells the host a packet device is there.
        d.softReset();
        return;
      case AtaCmd.IDENTIFY_DEVICE:
      case AtaCmd.READ_SECTORS:
      case AtaCmd.READ_SECTORS_NORETRY:
        // A packet device aborts these with its signature in the taskfile, which is how hosts find it.
        d.setSignature();
        this._abort(d);
        return;
      default:
        this._abort(d);
        return;
    }
  }

  private _setFeatures(d: IdeDrive): void {
    switch (d.feature) {
      case SetFeature.ENABLE_WRITE_CACHE:
        d.writeCache = true;
        break;
      case SetFeature.DISABLE_WRITE_CACHE:
        d.writeCache = false;
        break;
      case SetFeature.SET_TRANSFER_MODE: {
        const type = d.nsector & XferMode.TYPE_MASK;
        const num = d.nsector & XferMode.NUM_MASK;
        if (type === XferMode.PIO_DEFAULT && num <= XferMode.PIO_DEFAULT_NO_IORDY) {
          d.mdmaMode = d.udmaMode = -1;
        } else if (type === XferMode.PIO_FLOW && num <= MAX_PIO_MODE) {
          d.mdmaMode = d.udmaMode = -1;
        } else if (type === XferMode.MWDMA && num <= MAX_MWDMA_MODE) {
          d.mdmaMode = num;
          d.udmaMode = -1;
        } else if (type === XferMode.UDMA && num <= MAX_UDMA_MODE) {
          d.udmaMode = num;
          d.mdmaMode = -1;
        } else {
          this._abort(d);
          return;
        }
        break;
      }
      case SetFeature.ENABLE_APM:
      case SetFeature.DISABLE_APM:
      case SetFeature.ENABLE_READ_LOOKAHEAD:
      case SetFeature.DISABLE_READ_LOOKAHEAD:
      case SetFeature.ENABLE_REVERT_TO_DEFAULTS:
      case SetFeature.DISABLE_REVERT_TO_DEFAULTS:
        break;
      default:
        this._abort(d);
        return;
    }
    this._complete(d);
  }

  /** The address in the taskfile (LBA28, LBA48 or CHS through the current geometry); -1 for an impossible CHS address. */
  private _lba(d: IdeDrive): number {
    if (d.select & AtaSelect.LBA) {
      const low = ((d.hcyl << 16) | (d.lcyl << 8) | d.sector) >>> 0;
      if (d.lba48) return d.hobHcyl * TWO_40 + d.hobLcyl * TWO_32 + d.hobSector * TWO_24 + low;
      return (d.select & AtaSelect.HEAD_MASK) * TWO_24 + low;
    }
    const cyl = (d.hcyl << 8) | d.lcyl;
    const head = d.select & AtaSelect.HEAD_MASK;
    const sec = d.sector;
    if (sec === 0 || sec > d.curSectors || head >= d.curHeads) return -1;
    return (cyl * d.curHeads + head) * d.curSectors + sec - 1;
  }

  /** Put an address back in the taskfile, in the addressing mode the command used. */
  private _setLba(d: IdeDrive, lba: number): void {
    if (d.select & AtaSelect.LBA) {
      d.sector = lba & 0xff;
      d.lcyl = (lba >>> 8) & 0xff;
      d.hcyl = (lba >>> 16) & 0xff;
      const hi = Math.floor(lba / TWO_24);
      if (d.lba48) {
        d.hobSector = hi & 0xff;
        d.hobLcyl = (hi >>> 8) & 0xff;
        d.hobHcyl = (hi >>> 16) & 0xff;
      } else {
        d.select = (d.select & ~AtaSelect.HEAD_MASK) | (hi & AtaSelect.HEAD_MASK);
      }
      return;
    }
    const perCyl = d.curHeads * d.curSectors;
    if (perCyl === 0) return;
    const cyl = Math.floor(lba / perCyl);
    const r = lba - cyl * perCyl;
    d.hcyl = (cyl >>> 8) & 0xff;
    d.lcyl = cyl & 0xff;
    d.select = (d.select & ~AtaSelect.HEAD_MASK) | (Math.floor(r / d.curSectors) & AtaSelect.HEAD_MASK);
    d.sector = (r % d.curSectors) + 1;
  }

  private _ataRw(d: IdeDrive, lba48: boolean, kind: RwKind, mult: boolean): void {
    d.lba48 = lba48;
    const lba = this._lba(d);
    const count = lba48 ? ((d.hobNsector << 8) | d.nsector) || 0x10000 : d.nsector || 0x100;
    const limit = lba48 ? d.totalSectors : d.lba28Sectors;
    if (lba < 0 || lba + count > limit) {
      this._fail(d, AtaError.IDNF);
      return;
    }
    if (mult && d.multSectors === 0) {
      this._abort(d);
      return;
    }
    const write = kind === RwKind.PIO_WRITE || kind === RwKind.DMA_WRITE;
    if (write && (!d.backend || d.backend.readOnly)) {
      // A drive that cannot write aborts the command (ATA/ATAPI-6 8.61: ABRT when the command cannot complete).
      this._abort(d);
      return;
    }
    d.xferLba = lba;
    d.xferRemain = count;
    d.multCmd = mult;
    switch (kind) {
      case RwKind.PIO_READ:
        this._ataReadBlock(d);
        return;
      case RwKind.PIO_WRITE:
        this._ataWriteDrq(d, false);
        return;
      case RwKind.VERIFY:
        this._setLba(d, lba + count - 1);
        this._complete(d);
        return;
      default:
        d.dmaPending = true;
        d.dmaToMemory = kind === RwKind.DMA_READ;
        d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
        this._kickDma();
        return;
    }
  }

  private _blockSectors(d: IdeDrive): number {
    return Math.min(d.multCmd ? d.multSectors : 1, d.xferRemain);
  }

  private _ataReadBlock(d: IdeDrive): void {
    const n = this._blockSectors(d);
    try {
      d.backend!.read(d.xferLba * SECTOR_BYTES, d.ioBuf.subarray(0, n * SECTOR_BYTES));
    } catch {
      this._setLba(d, d.xferLba);
      this._fail(d, AtaError.UNC);
      return;
    }
    this._setLba(d, d.xferLba + n - 1);
    d.xferLba += n;
    d.xferRemain -= n;
    d.blockSectors = n;
    this._pioIn(d, n * SECTOR_BYTES, Xfer.ATA_READ);
  }

  private _ataWriteDrq(d: IdeDrive, irq: boolean): void {
    const n = this._blockSectors(d);
    d.blockSectors = n;
    d.dataPos = 0;
    d.dataEnd = n * SECTOR_BYTES;
    d.xfer = Xfer.ATA_WRITE;
    d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
    if (irq) this._raise();
  }

  private _ataWriteBlock(d: IdeDrive): void {
    const n = d.blockSectors;
    try {
      d.backend!.write(d.xferLba * SECTOR_BYTES, d.ioBuf.subarray(0, n * SECTOR_BYTES));
    } catch {
      this._setLba(d, d.xferLba);
      this._abort(d);
      return;
    }
    this._setLba(d, d.xferLba + n - 1);
    d.xferLba += n;
    d.xferRemain -= n;
    if (d.xferRemain > 0) this._ataWriteDrq(d, true);
    else this._complete(d);
  }

  /** Start a PIO data-in block of `len` bytes from ioBuf[0]: DRQ and an interrupt. */
  private _pioIn(d: IdeDrive, len: number, xfer: Xfer): void {
    d.dataPos = 0;
    d.dataEnd = len;
    d.xfer = xfer;
    d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
    this._raise();
  }

  // ---- data port ----

  private _readData16(): number {
    const d = this.drives[this.unit];
    if (!(d.status & AtaStatus.DRQ) || !isDataIn(d.xfer)) return 0;
    const p = d.dataPos;
    if (p + 1 >= d.ioBuf.length) return 0;
    const v = d.ioBuf[p] | (d.ioBuf[p + 1] << 8);
    d.dataPos = p + 2;
    if (d.dataPos >= d.dataEnd) this._endPioBlock(d);
    return v;
  }

  private _writeData16(v: number): void {
    const d = this.drives[this.unit];
    if (!(d.status & AtaStatus.DRQ) || !isDataOut(d.xfer)) return;
    const p = d.dataPos;
    if (p + 1 >= d.ioBuf.length) return;
    d.ioBuf[p] = v & 0xff;
    d.ioBuf[p + 1] = (v >>> 8) & 0xff;
    d.dataPos = p + 2;
    if (d.dataPos >= d.dataEnd) this._endPioBlock(d);
  }

  /** A 32-bit access is two 16-bit transfers within the current block; with under 4 bytes left, only one. */
  private _readData32(): number {
    const d = this.drives[this.unit];
    if (d.dataEnd - d.dataPos < 4) return this._readData16();
    const lo = this._readData16();
    return (lo | (this._readData16() << 16)) >>> 0;
  }

  private _writeData32(v: number): void {
    const d = this.drives[this.unit];
    if (d.dataEnd - d.dataPos < 4) {
      this._writeData16(v & 0xffff);
      return;
    }
    this._writeData16(v & 0xffff);
    this._writeData16((v >>> 16) & 0xffff);
  }

  /** The host has moved the whole DRQ block. */
  private _endPioBlock(d: IdeDrive): void {
    const unit = d === this.drives[0] ? 0 : 1;
    d.dataPos = d.dataEnd;
    switch (d.xfer) {
      case Xfer.IN_LAST:
        d.xfer = Xfer.NONE;
        d.status = AtaStatus.DRDY | AtaStatus.DSC;
        return;
      case Xfer.ATA_READ:
        // The next block is ready at once (as in QEMU): waiting here would cost
        // a whole CPU slice per block when the board only stops at deadlines
        // known at the slice start.
        if (d.xferRemain > 0) {
          this._ataReadBlock(d);
        } else {
          d.xfer = Xfer.NONE;
          d.status = AtaStatus.DRDY | AtaStatus.DSC;
        }
        return;
      case Xfer.ATA_WRITE:
        d.status = AtaStatus.BSY;
        this._schedule(unit, Step.WRITE_BLOCK);
        return;
      case Xfer.PACKET_CDB:
        d.status = AtaStatus.BSY;
        this._schedule(unit, Step.PACKET_EXEC);
        return;
      case Xfer.ATAPI_IN:
        // The next chunk, or the completion, follows at once (as in QEMU).
        this._atapiChunk(d);
        return;
      default:
        return;
    }
  }

  // ---- ATAPI data phases ----

  private _packetExec(d: IdeDrive): void {
    const r = execPacket(d);
    if (r === PacketResult.CHECK) {
      this._atapiError(d);
      return;
    }
    if (r === PacketResult.DONE || r === 0) {
      this._atapiDone(d);
      return;
    }
    d.dataPos = 0;
    if (r === PacketResult.READ) {
      d.bufEnd = 0;
    } else {
      d.bufEnd = r;
      d.xferRemain = 0;
    }
    if (d.atapiDma) {
      d.dmaPending = true;
      d.dmaToMemory = true;
      d.nsector = AtapiIreason.IO;
      d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
      this._kickDma();
      return;
    }
    this._atapiChunk(d);
  }

  /** Present the next PIO chunk of ATAPI data (at most the byte count limit, never across a sector). */
  private _atapiChunk(d: IdeDrive): void {
    if (d.dataPos >= d.bufEnd) {
      if (d.xferRemain <= 0) {
        this._atapiDone(d);
        return;
      }
      if (!this._cdReadSector(d)) return;
      d.dataPos = 0;
      d.bufEnd = CD_SECTOR_BYTES;
    }
    let limit = d.byteLimit;
    if (limit === 0 || limit > MAX_BYTE_LIMIT) limit = MAX_BYTE_LIMIT;
    limit &= ~1;
    if (limit < 2) limit = 2;
    const n = Math.min(d.bufEnd - d.dataPos, limit);
    d.dataEnd = d.dataPos + n;
    d.lcyl = n & 0xff;
    d.hcyl = (n >>> 8) & 0xff;
    d.nsector = AtapiIreason.IO;
    d.xfer = Xfer.ATAPI_IN;
    d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
    this._raise();
  }

  /** Read the next CD sector into ioBuf[0..2048); on a host error, end the command with MEDIUM ERROR. */
  private _cdReadSector(d: IdeDrive): boolean {
    try {
      if (!d.mediumPresent) throw new Error('no medium');
      d.backend!.read(d.xferLba * CD_SECTOR_BYTES, d.ioBuf.subarray(0, CD_SECTOR_BYTES));
    } catch {
      checkCondition(d, SenseKey.MEDIUM_ERROR, Asc.UNRECOVERED_READ_ERROR);
      this._atapiError(d);
      return false;
    }
    d.xferLba++;
    d.xferRemain--;
    return true;
  }

  private _atapiDone(d: IdeDrive): void {
    d.abandon();
    d.nsector = AtapiIreason.IO | AtapiIreason.COD;
    d.status = AtaStatus.DRDY | AtaStatus.DSC;
    d.error = 0;
    this._raise();
  }

  private _atapiError(d: IdeDrive): void {
    d.abandon();
    d.nsector = AtapiIreason.IO | AtapiIreason.COD;
    d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.ERR;
    d.error = (d.senseKey << 4) & 0xf0;
    this._raise();
  }

  // ---- bus-master DMA ----

  /** Run a waiting DMA command once the bus master has been started. */
  private _kickDma(): void {
    if (!this.bm.started) return;
    for (let i = 0; i < 2; i++) {
      const d = this.drives[i];
      if (d.dmaPending && d.step === Step.NONE) this._schedule(i, Step.DMA_RUN);
    }
  }

  private _runDma(unit: number): void {
    const d = this.drives[unit];
    if (!d.dmaPending || !this.bm.started) return; // waits for the start bit
    const bm = this.bm;
    bm.begin();
    let res: PrdResult = PrdResult.OK;
    let ioError = false;
    if (d.isCdrom) {
      if (d.bufEnd > 0) res = bm.transfer(d.ioBuf.subarray(0, d.bufEnd), true);
      while (res === PrdResult.OK && d.xferRemain > 0) {
        try {
          if (!d.mediumPresent) throw new Error('no medium');
          d.backend!.read(d.xferLba * CD_SECTOR_BYTES, d.ioBuf.subarray(0, CD_SECTOR_BYTES));
        } catch {
          ioError = true;
          break;
        }
        res = bm.transfer(d.ioBuf.subarray(0, CD_SECTOR_BYTES), true);
        d.xferLba++;
        d.xferRemain--;
      }
    } else {
      while (res === PrdResult.OK && d.xferRemain > 0) {
        const n = Math.min(DMA_CHUNK_SECTORS, d.xferRemain);
        const buf = d.ioBuf.subarray(0, n * SECTOR_BYTES);
        try {
          if (d.dmaToMemory) {
            d.backend!.read(d.xferLba * SECTOR_BYTES, buf);
            res = bm.transfer(buf, true);
          } else {
            res = bm.transfer(buf, false);
            if (res === PrdResult.OK) d.backend!.write(d.xferLba * SECTOR_BYTES, buf);
          }
        } catch {
          ioError = true;
          break;
        }
        if (res === PrdResult.OK) this._setLba(d, d.xferLba + n - 1);
        d.xferLba += n;
        d.xferRemain -= n;
      }
    }
    d.dmaPending = false;
    if (ioError) {
      bm.status &= ~BmStatus.ACTIVE;
      if (d.isCdrom) {
        checkCondition(d, SenseKey.MEDIUM_ERROR, Asc.UNRECOVERED_READ_ERROR);
        this._atapiError(d);
      } else {
        this._setLba(d, d.xferLba);
        this._fail(d, d.dmaToMemory ? AtaError.UNC : AtaError.ABRT);
      }
      return;
    }
    switch (res) {
      case PrdResult.OK:
        // Active stays set when the table had room left (SFF-8038i 3.1: interrupt with Active set).
        if (bm.exhausted) bm.status &= ~BmStatus.ACTIVE;
        if (d.isCdrom) this._atapiDone(d);
        else this._complete(d);
        return;
      case PrdResult.SHORT:
        // The table ran out before the device's data: the engine stops (Active clears) and no
        // interrupt comes, as on real controllers; the host's timeout and reset recover.
        bm.status &= ~BmStatus.ACTIVE;
        d.abandon();
        d.status = AtaStatus.DRDY | AtaStatus.DSC;
        return;
      default:
        // A descriptor or buffer outside memory (PCI master abort) or a table without an end.
        bm.status = (bm.status | BmStatus.ERROR) & ~BmStatus.ACTIVE;
        if (d.isCdrom) {
          d.senseKey = SenseKey.NO_SENSE;
          d.abandon();
          d.nsector = AtapiIreason.IO | AtapiIreason.COD;
          d.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.ERR;
          d.error = AtaError.ABRT;
          this._raise();
        } else {
          this._abort(d);
        }
        return;
    }
  }

  // ---- state ----

  /**
   * A channel's state: the selected device, Device Control, INTRQ, the bus
   * master's registers and both drives, each with its timer's deadline
   * (IdeController.stateSchema holds the two channels).
   */
  static readonly stateFields: Fields = {
    unit: u8.range(0, 1),
    devCtl: u8,
    intrq: bool,
    bm: struct(BUS_MASTER_FIELDS),
    drive0: struct(IdeChannel._driveFields()).at('drives.0'),
    drive1: struct(IdeChannel._driveFields()).at('drives.1'),
  };
  /** Channel properties that are not state: wiring, and the IRQ level derived from intrq and nIEN. */
  static readonly stateTransient = [
    'id', 'cmdBase', 'ctlPort', '_irqLevel', '_timers', '_clock', '_irq',
    ...BUS_MASTER_TRANSIENT.map((k) => `bm.${k}`),
    ...DRIVE_TRANSIENT.flatMap((k) => [`drives.0.${k}`, `drives.1.${k}`]),
  ];

  private static _driveFields(): Fields {
    return {
      ...DRIVE_FIELDS,
      // a drive's timer is its channel's; it runs only while the drive has a step to take
      deadlineNs: f64.via(
        (d: IdeDrive, ch: IdeChannel) => ch._timers[ch.drives.indexOf(d)].deadlineNs,
        (d: IdeDrive, v: number, ch: IdeChannel) => {
          const t = ch._timers[ch.drives.indexOf(d)];
          if (v >= 0 && d.step !== Step.NONE) ch._clock.arm(t, v);
          else ch._clock.disarm(t);
        },
      ),
    };
  }

  /** After a load (IdeController.stateSchema's postLoad): implemented bits only, buffer indices in order, INTRQ driven. */
  static loaded(ch: IdeChannel): void {
    ch.devCtl &= AtaDevCtl.NIEN | AtaDevCtl.SRST | AtaDevCtl.HOB;
    busMasterLoaded(ch.bm);
    for (const d of ch.drives) d.dataPos = Math.min(d.dataPos, d.dataEnd);
    ch._irqLevel = ch.intrq && !(ch.devCtl & AtaDevCtl.NIEN) ? 1 : 0;
    ch._irq.set(ch._irqLevel);
  }
}

/** Kinds of sector command. */
const enum RwKind {
  PIO_READ = 0,
  PIO_WRITE = 1,
  DMA_READ = 2,
  DMA_WRITE = 3,
  VERIFY = 4,
}

function isDataIn(x: Xfer): boolean {
  return x === Xfer.IN_LAST || x === Xfer.ATA_READ || x === Xfer.ATAPI_IN;
}

function isDataOut(x: Xfer): boolean {
  return x === Xfer.ATA_WRITE || x === Xfer.PACKET_CDB;
}

/** Default serial numbers, one per drive position: "TSVM00001".. (QEMU uses QM00001..). */
function serial(n: number): string {
  return `TSVM${String(n).padStart(5, '0')}`;
}

