/**
 * The virtio 1.0 PCI transport, "modern" only (virtio 1.0, 4.1): vendor
 * 1AF4, device 1040 + type, revision 1, with vendor-specific capabilities
 * pointing into BAR 4 and MSI-X in BAR 1, the layout QEMU uses:
 *
 *   BAR 4 (16 KiB memory): 0x0000 common configuration (4.1.4.3)
 *                          0x1000 ISR status (read clears; bit 0 queue, bit 1 config)
 *                          0x2000 device configuration
 *                          0x3000 notifications, 4 bytes per queue
 *   BAR 1 (4 KiB memory):  MSI-X table at 0x000, PBA at 0x800
 *
 * Interrupts go through MSI-X while the driver enables it, else through INTA#
 * (level, cleared by reading ISR). A guest error in a queue (see queue.ts), a
 * queue enabled with a bad size or address, sets DEVICE_NEEDS_RESET in the
 * status and raises a configuration-change interrupt (2.1.2); the device
 * then ignores notifications until the driver writes status 0.
 *
 * The legacy (0.9.5) I/O-port interface is not offered: every Linux since
 * 4.0 drives the modern one (SeaBIOS 1.10 on does too; not tested here).
 */
import type { GuestRam } from '../../bus/dma.js';
import { StateError, type StateObject } from '../../state/state.js';
import { loadChecked, saveFields, struct, structs, u16, u32, u32s, u8, type FieldSchema } from '../../state/schema.js';
import { PciDevice, PciCfg, pciState, type PciDeviceState } from '../pci/device.js';
import { Msix, MSIX_TRANSIENT, msixFields, PCI_CAP_ID_MSIX } from '../pci/msix.js';
import { VIRTIO_DEVICE_TRANSIENT, VirtioF, readLe, type VirtioDevice, type VirtioHost } from './device.js';
import { ringsProblem, VIRTQ_MAX_SIZE, VIRTQ_STATE_FIELDS, VIRTQ_TRANSIENT, VirtioError, VirtQueue } from './queue.js';

export const VIRTIO_PCI_VENDOR = 0x1af4;
export const VIRTIO_PCI_DEVICE_BASE = 0x1040;

/** Device status bits (2.1). */
export const enum VirtioStatus {
  ACKNOWLEDGE = 1,
  DRIVER = 2,
  DRIVER_OK = 4,
  FEATURES_OK = 8,
  DEVICE_NEEDS_RESET = 0x40,
  FAILED = 0x80,
}

/** Common configuration offsets (4.1.4.3). */
export const enum Common {
  DFSELECT = 0x00,
  DF = 0x04,
  GFSELECT = 0x08,
  GF = 0x0c,
  MSIX_CONFIG = 0x10,
  NUM_QUEUES = 0x12,
  STATUS = 0x14,
  CFG_GENERATION = 0x15,
  Q_SELECT = 0x16,
  Q_SIZE = 0x18,
  Q_MSIX = 0x1a,
  Q_ENABLE = 0x1c,
  Q_NOFF = 0x1e,
  Q_DESCLO = 0x20,
  Q_DESCHI = 0x24,
  Q_AVAILLO = 0x28,
  Q_AVAILHI = 0x2c,
  Q_USEDLO = 0x30,
  Q_USEDHI = 0x34,
  SIZE = 0x38,
}

/** Regions of BAR 4. */
export const enum VirtioBar {
  CFG_BAR = 4,
  MSIX_BAR = 1,
  CFG_BAR_SIZE = 0x4000,
  MSIX_BAR_SIZE = 0x1000,
  COMMON = 0x0000,
  ISR = 0x1000,
  DEVICE = 0x2000,
  NOTIFY = 0x3000,
  NOTIFY_MULTIPLIER = 4,
  PBA = 0x800,
}

const enum CapType {
  COMMON = 1,
  NOTIFY = 2,
  ISR = 3,
  DEVICE = 4,
}

const PCI_CAP_ID_VNDR = 0x09;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAPABILITY_LIST = 0x34;
const CAP_MSIX = 0x40;
const PCI_COMMAND_MASTER = 0x4;
const NO_VECTOR = 0xffff;

/** PCI class codes (class << 16 | subclass << 8) QEMU gives each type. */
const CLASS_BY_TYPE: Record<number, number> = { 1: 0x020000, 2: 0x010000, 3: 0x078000, 4: 0x00ff00, 9: 0x000200 };

/**
 * The transport's declared state, which depends on the device it carries:
 * the common configuration registers, each queue (VIRTQ_STATE_FIELDS), the
 * MSI-X table and pending bits, and the device type's own fields as the
 * struct `device`. One schema name for every device type: the fields inside
 * `device` tell the types apart, and a state of another type is refused by
 * the PCI IDs (the device ID is 1040h + type) and by its fields.
 */
function transportSchema(dev: VirtioDevice, queues: number, vectors: number): FieldSchema<VirtioPci> {
  return pciState<VirtioPci>(
    'virtio-pci',
    1,
    {
      status: u8.at('_status'),
      dfSelect: u32.at('_dfSelect'),
      gfSelect: u32.at('_gfSelect'),
      driverFeatures: u32s(2).at('_driverFeatures'),
      msixConfig: u16.at('_msixConfig'),
      queueSelect: u16.at('_queueSelect'),
      generation: u8.at('_generation'),
      isr: u8.at('_isr').range(0, 3),
      queues: structs(queues, VIRTQ_STATE_FIELDS),
      msix: struct(msixFields(vectors)),
      errors: u32,
      device: struct(dev.stateFields).at('dev'),
    },
    {
      transient: [
        'ram',
        'schema',
        '_deviceFeatures',
        'lastError',
        ...VIRTQ_TRANSIENT.map((k) => `queues[].${k}`),
        ...MSIX_TRANSIENT.map((k) => `msix.${k}`),
        ...[...VIRTIO_DEVICE_TRANSIENT, ...dev.stateTransient].map((k) => `dev.${k}`),
      ],
      check: (t, s, where) => {
        // a ready queue's rings must lie in guest RAM, as enable() required of the driver
        (s.queues as StateObject[]).forEach((q, i) => {
          const bad = q.ready ? ringsProblem(i, t.queues[i].maxSize, q as unknown as VirtQueue, t.ram) : null;
          if (bad) throw new StateError(`${where}.queues[${i}]: ${bad}`);
        });
        t.dev.checkState?.(s.device as StateObject, `${where}.device`);
      },
      postLoad: (t) => {
        t.msix.control = t.readConfig(CAP_MSIX + 2, 2) & 0xc000;
        for (const q of t.queues) {
          q.eventIdx = t.negotiated(VirtioF.RING_EVENT_IDX);
          q.indirect = t.negotiated(VirtioF.RING_INDIRECT_DESC);
          q.revalidate(t.ram);
        }
      },
    },
  );
}

export class VirtioPci extends PciDevice implements VirtioHost {
  readonly queues: VirtQueue[];
  readonly msix: Msix;
  private _status = 0;
  private _dfSelect = 0;
  private _gfSelect = 0;
  private readonly _driverFeatures = new Uint32Array(2);
  private readonly _deviceFeatures: Uint32Array;
  private _msixConfig = NO_VECTOR;
  private _queueSelect = 0;
  private _generation = 0;
  private _isr = 0;
  /** Guest errors that put the device into DEVICE_NEEDS_RESET (a counter, for tests and diagnostics). */
  errors = 0;
  /** Why the device last entered DEVICE_NEEDS_RESET (a diagnostic of this run, not state). */
  lastError = '';
  /** This transport's declared state (transportSchema). */
  readonly schema: FieldSchema<VirtioPci>;

  constructor(
    readonly dev: VirtioDevice,
    readonly ram: GuestRam,
  ) {
    super(
      dev.id,
      {
        vendorId: VIRTIO_PCI_VENDOR,
        deviceId: VIRTIO_PCI_DEVICE_BASE + dev.type,
        classCode: CLASS_BY_TYPE[dev.type] ?? 0xff0000,
        revision: 1,
        subsystemVendorId: VIRTIO_PCI_VENDOR,
        subsystemId: 0x1100,
        interruptPin: 1,
        status: PCI_STATUS_CAP_LIST,
      },
      [null, { size: VirtioBar.MSIX_BAR_SIZE }, null, null, { size: VirtioBar.CFG_BAR_SIZE, prefetchable: true }],
    );
    this.queues = Array.from({ length: dev.queueCount }, (_, i) => new VirtQueue(i, VIRTQ_MAX_SIZE));
    this.msix = new Msix(dev.queueCount + 1);
    this._deviceFeatures = new Uint32Array([
      (dev.features[0] | (1 << VirtioF.RING_INDIRECT_DESC) | (1 << VirtioF.RING_EVENT_IDX)) >>> 0,
      (dev.features[1] | (1 << (VirtioF.VERSION_1 - 32))) >>> 0,
    ]);
    this._writeCapabilities();
    // capabilities are read-only, except MSI-X enable and function mask
    for (let a = PciCfg.DEVICE_SPECIFIC; a < 256; a++) this._setWriteMask(a, 0);
    this._setWriteMask(CAP_MSIX + 3, 0xc0);
    this.schema = transportSchema(dev, this.queues.length, this.msix.vectors);
    dev.attach(this);
  }

  private _writeCapabilities(): void {
    const c = this.config;
    c[PCI_CAPABILITY_LIST] = CAP_MSIX;
    // MSI-X: table in BAR 1 at 0, PBA in BAR 1 at 0x800
    c[CAP_MSIX] = PCI_CAP_ID_MSIX;
    c[CAP_MSIX + 1] = 0x50;
    c[CAP_MSIX + 2] = (this.msix.vectors - 1) & 0xff;
    c[CAP_MSIX + 3] = ((this.msix.vectors - 1) >>> 8) & 7;
    put32c(c, CAP_MSIX + 4, VirtioBar.MSIX_BAR);
    put32c(c, CAP_MSIX + 8, VirtioBar.PBA | VirtioBar.MSIX_BAR);
    const caps: [number, number, number, number][] = [
      [0x50, CapType.COMMON, VirtioBar.COMMON, Common.SIZE],
      [0x60, CapType.ISR, VirtioBar.ISR, 1],
      [0x70, CapType.NOTIFY, VirtioBar.NOTIFY, VirtioBar.NOTIFY_MULTIPLIER * Math.max(1, this.queues.length)],
      [0x88, CapType.DEVICE, VirtioBar.DEVICE, Math.max(4, this.dev.config.length)],
    ];
    for (let i = 0; i < caps.length; i++) {
      const [at, type, off, len] = caps[i];
      c[at] = PCI_CAP_ID_VNDR;
      c[at + 1] = i + 1 < caps.length ? caps[i + 1][0] : 0;
      c[at + 2] = type === CapType.NOTIFY ? 20 : 16;
      c[at + 3] = type;
      c[at + 4] = VirtioBar.CFG_BAR;
      put32c(c, at + 8, off);
      put32c(c, at + 12, len);
      if (type === CapType.NOTIFY) put32c(c, at + 16, VirtioBar.NOTIFY_MULTIPLIER);
    }
  }

  protected override _resetRegisters(): void {
    this._writeCapabilities();
  }

  protected override _configWritten(addr: number, size: number): void {
    if (addr < CAP_MSIX + 4 && addr + size > CAP_MSIX + 2) {
      const wasEnabled = this.msix.enabled;
      this.msix.setControl(this.readConfig(CAP_MSIX + 2, 2));
      if (this.msix.enabled !== wasEnabled) this._updateIntx();
    }
  }

  // ---- VirtioHost ----

  get live(): boolean {
    return (this._status & (VirtioStatus.DRIVER_OK | VirtioStatus.DEVICE_NEEDS_RESET)) === VirtioStatus.DRIVER_OK;
  }

  negotiated(bit: number): boolean {
    return ((this._driverFeatures[bit >>> 5] >>> (bit & 31)) & 1) !== 0;
  }

  used(q: VirtQueue): void {
    if (!q.shouldInterrupt(this.ram)) return;
    this._interrupt(q.msixVector, 1);
  }

  configChanged(): void {
    this._generation = (this._generation + 1) & 0xff;
    this._interrupt(this._msixConfig, 2);
  }

  private _interrupt(vector: number, isrBit: number): void {
    if (this.msix.enabled) {
      // a bus master with master disabled cannot send the message write
      if (this.readConfig(PciCfg.COMMAND, 2) & PCI_COMMAND_MASTER) this.msix.notify(vector);
      return;
    }
    this._isr |= isrBit;
    this._updateIntx();
  }

  private _updateIntx(): void {
    this.setIntx(this._isr !== 0 && !this.msix.enabled ? 1 : 0);
  }

  /** Enter DEVICE_NEEDS_RESET (2.1.2): the driver hears of it through a config interrupt. */
  fail(reason: string): void {
    this.errors++;
    this.lastError = reason;
    if (this._status & VirtioStatus.DEVICE_NEEDS_RESET) return;
    this._status |= VirtioStatus.DEVICE_NEEDS_RESET;
    if (this._status & VirtioStatus.DRIVER_OK) this.configChanged();
  }

  /** Run a device action, turning a guest error into DEVICE_NEEDS_RESET. */
  guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof VirtioError) this.fail(e.message);
      else throw e;
    }
  }

  /** Current device status register. */
  get status(): number {
    return this._status;
  }

  // ---- BAR access (the board maps BAR 4 and BAR 1 to these) ----

  /** Read `size` bytes at `off` in BAR `bar`. */
  barRead(bar: number, off: number, size: number): number {
    if (bar === VirtioBar.MSIX_BAR) {
      if (off >= VirtioBar.PBA) return this.msix.readPba(off - VirtioBar.PBA) >>> (8 * (off & 3));
      return size === 4 ? this.msix.readTable(off) : (this.msix.readTable(off & ~3) >>> (8 * (off & 3))) & (size === 2 ? 0xffff : 0xff);
    }
    if (off < VirtioBar.ISR) return this._commonRead(off, size);
    if (off < VirtioBar.DEVICE) {
      if (off !== VirtioBar.ISR) return 0;
      const v = this._isr;
      this._isr = 0;
      this._updateIntx();
      return v;
    }
    if (off < VirtioBar.NOTIFY) return readLe(this.dev.config, off - VirtioBar.DEVICE, size);
    return 0;
  }

  barWrite(bar: number, off: number, v: number, size: number): void {
    if (bar === VirtioBar.MSIX_BAR) {
      if (off < VirtioBar.PBA && size === 4) this.msix.writeTable(off, v);
      return;
    }
    if (off < VirtioBar.ISR) return this._commonWrite(off, v >>> 0, size);
    if (off >= VirtioBar.DEVICE && off < VirtioBar.NOTIFY) {
      const o = off - VirtioBar.DEVICE;
      if (this.dev.configWrite && o + size <= this.dev.config.length) this.guarded(() => this.dev.configWrite!(o, v >>> 0, size));
      return;
    }
    if (off >= VirtioBar.NOTIFY && off < VirtioBar.CFG_BAR_SIZE) {
      const q = (off - VirtioBar.NOTIFY) / VirtioBar.NOTIFY_MULTIPLIER;
      if (Number.isInteger(q)) this._notify(q);
    }
  }

  private _notify(q: number): void {
    if (!this.live || q >= this.queues.length || !this.queues[q].ready) return;
    this.guarded(() => this.dev.notify(q));
  }

  private _selected(): VirtQueue | null {
    return this._queueSelect < this.queues.length ? this.queues[this._queueSelect] : null;
  }

  private _commonRead(off: number, size: number): number {
    const q = this._selected();
    let v: number;
    const field = off & ~(size === 1 ? 0 : size === 2 ? 1 : 3);
    switch (field) {
      case Common.DFSELECT:
        v = this._dfSelect;
        break;
      case Common.DF:
        v = this._dfSelect < 2 ? this._deviceFeatures[this._dfSelect] : 0;
        break;
      case Common.GFSELECT:
        v = this._gfSelect;
        break;
      case Common.GF:
        v = this._gfSelect < 2 ? this._driverFeatures[this._gfSelect] : 0;
        break;
      case Common.MSIX_CONFIG:
        v = this._msixConfig;
        break;
      case Common.NUM_QUEUES:
        v = this.queues.length;
        break;
      case Common.STATUS:
        v = this._status;
        break;
      case Common.CFG_GENERATION:
        v = this._generation;
        break;
      case Common.Q_SELECT:
        v = this._queueSelect;
        break;
      case Common.Q_SIZE:
        v = q ? q.size : 0;
        break;
      case Common.Q_MSIX:
        v = q ? q.msixVector : NO_VECTOR;
        break;
      case Common.Q_ENABLE:
        v = q && q.ready ? 1 : 0;
        break;
      case Common.Q_NOFF:
        v = q ? q.index : 0;
        break;
      case Common.Q_DESCLO:
        v = q ? q.descAddr : 0;
        break;
      case Common.Q_AVAILLO:
        v = q ? q.availAddr : 0;
        break;
      case Common.Q_USEDLO:
        v = q ? q.usedAddr : 0;
        break;
      default:
        v = 0; // high halves of 64-bit addresses (a 32-bit machine) and unaligned reads
    }
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  private _commonWrite(off: number, v: number, size: number): void {
    const q = this._selected();
    switch (off) {
      case Common.DFSELECT:
        this._dfSelect = v;
        return;
      case Common.GFSELECT:
        this._gfSelect = v;
        return;
      case Common.GF:
        // features may only change before FEATURES_OK
        if (this._gfSelect < 2 && !(this._status & VirtioStatus.FEATURES_OK)) this._driverFeatures[this._gfSelect] = v;
        return;
      case Common.MSIX_CONFIG:
        this._msixConfig = v < this.msix.vectors ? v : NO_VECTOR;
        return;
      case Common.STATUS:
        if (size !== 1) return;
        this._writeStatus(v & 0xff);
        return;
      case Common.Q_SELECT:
        this._queueSelect = v & 0xffff;
        return;
    }
    if (!q || q.ready) return; // queue registers are fixed once the queue is enabled
    switch (off) {
      case Common.Q_SIZE:
        q.size = v & 0xffff;
        return;
      case Common.Q_MSIX:
        q.msixVector = v < this.msix.vectors ? v & 0xffff : NO_VECTOR;
        return;
      case Common.Q_ENABLE:
        if (v & 1) this.guarded(() => q.enable(this.ram));
        return;
      case Common.Q_DESCLO:
        q.descAddr = v;
        return;
      case Common.Q_AVAILLO:
        q.availAddr = v;
        return;
      case Common.Q_USEDLO:
        q.usedAddr = v;
        return;
      case Common.Q_DESCHI:
      case Common.Q_AVAILHI:
      case Common.Q_USEDHI:
        // a 32-bit machine has no RAM above 4 GiB: a nonzero high half can never be valid
        if (v !== 0) this.fail(`queue ${q.index}: ring address above 4 GiB`);
        return;
    }
  }

  private _writeStatus(v: number): void {
    if (v === 0) {
      this._resetDevice();
      return;
    }
    const added = v & ~this._status;
    if (added & VirtioStatus.FEATURES_OK) {
      // accept only features the device offered, and only modern drivers (VERSION_1)
      const ok =
        (this._driverFeatures[0] & ~this._deviceFeatures[0]) === 0 &&
        (this._driverFeatures[1] & ~this._deviceFeatures[1]) === 0 &&
        this.negotiated(VirtioF.VERSION_1);
      if (!ok) v &= ~VirtioStatus.FEATURES_OK;
      for (const q of this.queues) {
        q.eventIdx = this.negotiated(VirtioF.RING_EVENT_IDX);
        q.indirect = this.negotiated(VirtioF.RING_INDIRECT_DESC);
      }
    }
    // DEVICE_NEEDS_RESET is the device's to set; the driver cannot clear it except by reset
    this._status = (v & ~VirtioStatus.DEVICE_NEEDS_RESET) | (this._status & VirtioStatus.DEVICE_NEEDS_RESET);
    if (added & VirtioStatus.DRIVER_OK && this.live && this.dev.driverOk) this.guarded(() => this.dev.driverOk!());
  }

  private _resetDevice(): void {
    this._status = 0;
    this._dfSelect = this._gfSelect = 0;
    this._driverFeatures.fill(0);
    this._msixConfig = NO_VECTOR;
    this._queueSelect = 0;
    this._isr = 0;
    for (const q of this.queues) {
      q.reset();
      q.eventIdx = q.indirect = false;
    }
    this.dev.reset();
    this._updateIntx();
  }

  override reset(): void {
    this._resetDevice();
    this._generation = 0;
    this.msix.reset();
    super.reset();
  }

  /** The state as this transport's schema declares it. */
  override saveState(): PciDeviceState {
    return saveFields(this.schema.fields, this) as unknown as PciDeviceState;
  }

  /** Check the state against this transport's schema, then restore it. */
  override loadState(s: PciDeviceState): void {
    loadChecked(this.id, this.schema, this, s);
  }
}

function put32c(c: Uint8Array, o: number, v: number): void {
  c[o] = v & 0xff;
  c[o + 1] = (v >>> 8) & 0xff;
  c[o + 2] = (v >>> 16) & 0xff;
  c[o + 3] = (v >>> 24) & 0xff;
}
