/**
 * Intel 82371AB PIIX4 function 3, power management (ACPI), at 00:01.3
 * (8086:7113), as QEMU's `pc` machine presents it.
 *
 * Reference: Intel 82371AB PIIX4 datasheet (order 290562-001): 3.4 function 3
 * configuration (PMBA 40h, DEVACTB 58h, PMREGMISC 80h, SMBBA 90h, SMBHSTCFG
 * D2h), 7.2 power management I/O (PMSTS, PMEN, PMCNTRL, PMTMR), 7.1 APM
 * (APMC B2h, APMS B3h); ACPI 1.0 4.7 (fixed hardware). QEMU hw/acpi/piix4.c
 * and hw/acpi/core.c for what SeaBIOS and Linux see.
 *
 * PM I/O block: 64 bytes at PMBA & FFC0h while PMREGMISC bit 0 (PMIOSE) is
 * set. SeaBIOS programs PMBA = 0600h (QEMU ACPI tables) or B000h (its own).
 *   +0 PM1a_STS (write 1 to clear)   +2 PM1a_EN   +4 PM1a_CNT   +8 PM_TMR
 * The PM timer is 24 bits at 3.579545 MHz, computed from guest time. SCI is
 * asserted while (STS & EN) has TMR, GBL, PWRBTN or RTC set (QEMU
 * acpi_update_sci), on the IrqLine the board gives (IRQ 9).
 *
 * Sleep: writing PM1a_CNT with SLP_EN (bit 13) acts on SLP_TYP (12:10).
 * PIIX4 decodes SUS_TYP 000b as soft off, 001b as suspend to RAM; QEMU's
 * DSDT declares _S5 = 0 and _S3 = 1, and treats its S4 value (2) as off too.
 * So: SLP_TYP 0 or 2 -> onPowerOff(), 1 -> onSuspend().
 *
 * SMM: tsvm has none. Like QEMU without SMM, DEVACTB's APMC_EN (bit 25) reads
 * set, so SeaBIOS skips its SMM relocation (which would spin on APMS), and
 * the platform is ACPI-only: SCI_EN is set at reset. Writing the FADT's
 * ACPI_ENABLE (F1h) / ACPI_DISABLE (F0h) to APMC sets / clears SCI_EN in
 * hardware (QEMU apm_ctrl_changed); other APMC writes call onSmi() when an
 * SMM-capable board asks for it.
 *
 * QEMU's ACPI hotplug registers, which the DSDT SeaBIOS builds reads
 * (QEMU hw/acpi/piix4.c, pcihp.c, cpu_hotplug.c), answer "nothing
 * happened": GPE0 at AFE0h (STS, EN: 2 bytes each) reads 0, so no GPE is
 * ever pending; PCI hotplug at AE00h (PCIU slots up, PCID slots down, B0EJ
 * eject, PCRM removable: 4 bytes each) reads 0; the CPU present bitmap at
 * AF00h (32 bytes) says CPU 0 alone. Left unmapped they read all ones, and
 * Linux, seeing GPE 1 pending and enabled, ran the DSDT's _E01, read PCID
 * as every slot ejected and removed every PCI device but the host bridge
 * (the IDE controller with them) at a random moment of its boot.
 *
 * Not modelled: the SMBus host controller (SMBBA/SMBHSTCFG are only
 * configuration bytes), GPE events, device monitors, throttling.
 */
import type { IrqLine } from '../../bus/irq.js';
import type { IoPorts } from '../../bus/ports.js';
import type { Clock, Timer } from '../../time/clock.js';
import { f64, loadChecked, saveFields, u8, u16 } from '../../state/schema.js';
import { PciDevice, PciStatus, type PciDeviceState, pciState, rangesOverlap } from './device.js';

export const PIIX4_PM_VENDOR_ID = 0x8086;
export const PIIX4_PM_DEVICE_ID = 0x7113;
const PIIX4_PM_REVISION = 0x03;
/** Class 06h/80h: other bridge device (as QEMU and the PIIX4 report). */
const CLASS_BRIDGE_OTHER = 0x068000;
/** INTA#: QEMU reports pin 1, SeaBIOS then writes interrupt line 9 (SCI). */
const PM_INTERRUPT_PIN = 1;

export const enum Piix4PmReg {
  PMBA = 0x40,
  DEVACTB = 0x58,
  /** Byte 3 of DEVACTB: bit 1 = APMC_EN (DEVACTB bit 25). */
  DEVACTB_HI = 0x5b,
  PMREGMISC = 0x80,
  SMBBA = 0x90,
  SMBHSTCFG = 0xd2,
}

export const enum PmBa {
  /** Bit 0 reads 1: an I/O space base. */
  RTE = 0x0001,
  ADDR_MASK = 0xffc0,
  SIZE = 64,
}

export const PMREGMISC_PMIOSE = 0x01;
export const DEVACTB_HI_APMC_EN = 0x02;

/** QEMU's fixed ACPI hotplug register blocks (the DSDT SeaBIOS builds names them). */
export const enum HotplugIo {
  GPE0 = 0xafe0,
  PCIHP = 0xae00,
  CPU_PRESENT = 0xaf00,
}

/** Offsets in the PM I/O block. */
export const enum PmIo {
  PM1_STS = 0x00,
  PM1_EN = 0x02,
  PM1_CNT = 0x04,
  PM_TMR = 0x08,
}

/** PM1 status / enable bits (ACPI 4.7.3.1). */
export const enum Pm1 {
  TMR = 0x0001,
  BM = 0x0010,
  GBL = 0x0020,
  PWRBTN = 0x0100,
  SLPBTN = 0x0200,
  RTC = 0x0400,
  WAK = 0x8000,
  /** Bits that raise SCI (QEMU acpi_update_sci). */
  SCI_SOURCES = 0x0521,
  STS_IMPLEMENTED = 0x8731,
  EN_IMPLEMENTED = 0x0521,
}

/** PM1 control bits (ACPI 4.7.3.2). */
export const enum Pm1Cnt {
  SCI_EN = 0x0001,
  BM_RLD = 0x0002,
  GBL_RLS = 0x0004,
  SLP_TYP_SHIFT = 10,
  SLP_TYP_MASK = 0x1c00,
  SLP_EN = 0x2000,
  IMPLEMENTED = 0x1c07,
}

/** SLP_TYP values (PIIX4 SUS_TYP; QEMU's DSDT _S3/_S4/_S5). */
export const enum SlpTyp {
  SOFT_OFF = 0,
  SUSPEND_TO_RAM = 1,
  QEMU_S4 = 2,
}

/** APM control / status ports. */
export const enum Apm {
  CNT = 0xb2,
  STS = 0xb3,
  ACPI_DISABLE = 0xf0,
  ACPI_ENABLE = 0xf1,
}

/** ACPI PM timer frequency: 3.579545 MHz (ACPI 4.7.3.3). */
export const PM_TIMER_HZ = 3579545;
const NS_PER_S = 1e9;
const PM_TIMER_MASK = 0xffffff;
/** TMR_STS sets whenever bit 23 of the counter toggles. */
const PM_TIMER_HALF = 0x800000;

/** PM timer ticks elapsed at guest time `ns`, exact for any float64 time. */
export function pmTicksAt(ns: number): number {
  const s = Math.floor(ns / NS_PER_S);
  const rem = ns - s * NS_PER_S;
  return s * PM_TIMER_HZ + Math.floor((rem * PM_TIMER_HZ) / NS_PER_S);
}

/** The first guest ns at which the tick count reaches `ticks`. */
export function nsAtPmTicks(ticks: number): number {
  const s = Math.floor(ticks / PM_TIMER_HZ);
  const rem = ticks - s * PM_TIMER_HZ;
  return s * NS_PER_S + Math.ceil((rem * NS_PER_S) / PM_TIMER_HZ);
}

export interface Piix4PmOptions {
  /** The board models SMM (default false: firmware is told SMM is set up, ACPI-only platform). */
  smm?: boolean;
}

export interface Piix4PmState extends PciDeviceState {
  pm1Sts: number;
  pm1En: number;
  pm1Cnt: number;
  /** Tick count at which TMR_STS next sets (bit 23 toggles). */
  overflowTicks: number;
  timerDeadlineNs: number;
  apmc: number;
  apms: number;
  sci: number;
}

export class Piix4Pm extends PciDevice {
  /**
   * Configuration space, the PM1 registers, the PM timer's next overflow
   * and its deadline, APM and the SCI level; loading masks unimplemented
   * bits, remaps the PM block and re-arms the timer.
   */
  static override readonly stateSchema = pciState<Piix4Pm>(
    'piix4-pm',
    1,
    {
      pm1Sts: u16.at('_pm1Sts'),
      pm1En: u16.at('_pm1En'),
      pm1Cnt: u16.at('_pm1Cnt'),
      overflowTicks: f64.at('_overflowTicks').range(0, Infinity),
      timerDeadlineNs: f64.via(
        (p: Piix4Pm) => p._timer.deadlineNs,
        (p: Piix4Pm, v: number) => (v >= 0 ? p._clock.arm(p._timer, v) : p._clock.disarm(p._timer)),
      ),
      apmc: u8.at('_apmc'),
      apms: u8.at('_apms'),
      sci: u8.at('_sci').range(0, 1),
    },
    {
      transient: ['onPowerOff', 'onSuspend', 'onSmi', '_ports', '_clock', '_timer', '_sciLine', '_smm', '_mappedBase', '_pmOwner', 'conflicts'],
      postLoad: (p) => {
        p._pm1Sts &= Pm1.STS_IMPLEMENTED;
        p._pm1En &= Pm1.EN_IMPLEMENTED;
        p._pm1Cnt &= Pm1Cnt.IMPLEMENTED;
        p._overflowTicks = Math.floor(p._overflowTicks);
        p._remap();
      },
    },
  );
  /** Board hook: the guest asked for soft off (S5). */
  onPowerOff: () => void = () => {};
  /** Board hook: the guest asked for suspend to RAM (S3). */
  onSuspend: () => void = () => {};
  /** Board hook: an APMC write that should raise SMI (only with opts.smm). */
  onSmi: () => void = () => {};
  private readonly _ports: IoPorts;
  private readonly _clock: Clock;
  private readonly _timer: Timer;
  private readonly _sciLine: IrqLine;
  private readonly _smm: boolean;
  private _pm1Sts = 0;
  private _pm1En = 0;
  private _pm1Cnt = 0;
  private _overflowTicks = 0;
  private _apmc = 0;
  private _apms = 0;
  private _sci = 0;
  /** Where the PM I/O block is registered now, or -1. */
  private _mappedBase = -1;
  /** Port owner name of the movable PM block (distinct from the fixed APM ports). */
  private readonly _pmOwner: string;
  /** Guest writes of PMBA that could not be decoded (another device owns the ports). */
  conflicts = 0;

  constructor(id: string, ports: IoPorts, clock: Clock, sci: IrqLine, opts: Piix4PmOptions = {}) {
    super(id, {
      vendorId: PIIX4_PM_VENDOR_ID,
      deviceId: PIIX4_PM_DEVICE_ID,
      classCode: CLASS_BRIDGE_OTHER,
      revision: PIIX4_PM_REVISION,
      interruptPin: PM_INTERRUPT_PIN,
      status: PciStatus.FAST_BACK | PciStatus.DEVSEL_MEDIUM,
    });
    this._ports = ports;
    this._clock = clock;
    this._sciLine = sci;
    this._smm = opts.smm ?? false;
    this._pmOwner = `${id}.pmio`;
    this._timer = clock.timer(`${id}.tmr`, () => this._updateSci());
    // PMBA: bits 15:6 writable, bit 0 hardwired 1, 31:16 reserved.
    this._setWriteMask(Piix4PmReg.PMBA, PmBa.ADDR_MASK & 0xff);
    this._setWriteMask(Piix4PmReg.PMBA + 1, PmBa.ADDR_MASK >>> 8);
    this._setWriteMask(Piix4PmReg.PMBA + 2, 0);
    this._setWriteMask(Piix4PmReg.PMBA + 3, 0);
    ports.register(id, Apm.CNT, 1, { read8: () => this._apmc, write8: (_p, v) => this._apmcWrite(v) });
    ports.register(id, Apm.STS, 1, { read8: () => this._apms, write8: (_p, v) => (this._apms = v & 0xff) });
    // the hotplug registers (see the top of the file): nothing pending, nothing ejected, CPU 0 present
    const none = { read8: () => 0, write8: () => {} };
    ports.register(`${id}.gpe0`, HotplugIo.GPE0, 4, none);
    ports.register(`${id}.pcihp`, HotplugIo.PCIHP, 16, none);
    ports.register(`${id}.cpuhp`, HotplugIo.CPU_PRESENT, 32, { read8: (p) => (p === HotplugIo.CPU_PRESENT ? 0x01 : 0), write8: () => {} });
    this.reset();
  }

  protected override _resetRegisters(): void {
    const c = this.config;
    c[Piix4PmReg.PMBA] = PmBa.RTE;
    c[Piix4PmReg.SMBBA] = PmBa.RTE;
    if (!this._smm) c[Piix4PmReg.DEVACTB_HI] = DEVACTB_HI_APMC_EN;
  }

  override reset(): void {
    super.reset();
    this._pm1Sts = 0;
    this._pm1En = 0;
    // ACPI-only platform without SMM: SCI_EN always starts set (QEMU acpi_pm1_cnt_reset).
    this._pm1Cnt = this._smm ? 0 : Pm1Cnt.SCI_EN;
    this._overflowTicks = 0;
    this._apmc = 0;
    this._apms = 0;
    this._remap();
    this._updateSci();
  }

  // ---- configuration ----

  protected override _configWritten(addr: number, size: number): void {
    if (rangesOverlap(addr, size, Piix4PmReg.PMBA, 4) || rangesOverlap(addr, size, Piix4PmReg.PMREGMISC, 1)) this._remap();
  }

  /** Where the PM block should decode, or -1. */
  pmBase(): number {
    if (!(this.config[Piix4PmReg.PMREGMISC] & PMREGMISC_PMIOSE)) return -1;
    return this.readConfig(Piix4PmReg.PMBA, 2) & PmBa.ADDR_MASK;
  }

  /** Move the PM I/O block to where PMBA/PMIOSE say. A block that would overlap another device stays unmapped. */
  private _remap(): void {
    const want = this.pmBase();
    if (want === this._mappedBase) return;
    if (this._mappedBase >= 0) this._ports.unregister(this._pmOwner, this._mappedBase, PmBa.SIZE);
    this._mappedBase = -1;
    if (want < 0) return;
    if (!this._ports.isFree(this._pmOwner, want, PmBa.SIZE)) {
      this.conflicts++;
      return;
    }
    this._mappedBase = want;
    this._ports.register(this._pmOwner, want, PmBa.SIZE, {
      read8: (p) => (this._pmRead16((p - want) & ~1) >>> (8 * ((p - want) & 1))) & 0xff,
      write8: (p, v) => this._pmWrite8(p - want, v),
      read16: (p) => this._pmRead16(p - want),
      write16: (p, v) => this._pmWrite16(p - want, v),
      read32: (p) => this._pmRead32(p - want),
      write32: (p, v) => {
        this._pmWrite16(p - want, v & 0xffff);
        this._pmWrite16(p - want + 2, v >>> 16);
      },
    });
  }

  // ---- PM I/O block ----

  private _nowTicks(): number {
    return pmTicksAt(this._clock.nowNs);
  }

  /** PM1_STS with TMR_STS folded in lazily (QEMU acpi_pm1_evt_get_sts). */
  private _sts(): number {
    if (this._nowTicks() >= this._overflowTicks) this._pm1Sts |= Pm1.TMR;
    return this._pm1Sts;
  }

  /** The 24-bit PM timer. */
  pmTimer(): number {
    return this._nowTicks() % (PM_TIMER_MASK + 1);
  }

  private _pmRead16(off: number): number {
    switch (off) {
      case PmIo.PM1_STS:
        return this._sts();
      case PmIo.PM1_EN:
        return this._pm1En;
      case PmIo.PM1_CNT:
        return this._pm1Cnt;
      case PmIo.PM_TMR:
        return this.pmTimer() & 0xffff;
      case PmIo.PM_TMR + 2:
        return this.pmTimer() >>> 16;
      default:
        return 0;
    }
  }

  private _pmRead32(off: number): number {
    if (off === PmIo.PM_TMR) return this.pmTimer();
    return (this._pmRead16(off) | (this._pmRead16(off + 2) << 16)) >>> 0;
  }

  /** Byte writes merge with the other half of the 16-bit register (QEMU core.c). */
  private _pmWrite8(off: number, v: number): void {
    const reg = off & ~1;
    if (reg === PmIo.PM1_STS) {
      // Write-one-to-clear: the other byte writes zeros, clearing nothing.
      this._pmWrite16(reg, (v & 0xff) << (8 * (off & 1)));
      return;
    }
    if (reg !== PmIo.PM1_EN && reg !== PmIo.PM1_CNT) return;
    const cur = reg === PmIo.PM1_EN ? this._pm1En : this._pm1Cnt;
    const merged = off & 1 ? (cur & 0x00ff) | ((v & 0xff) << 8) : (cur & 0xff00) | (v & 0xff);
    this._pmWrite16(reg, merged);
  }

  private _pmWrite16(off: number, v: number): void {
    v &= 0xffff;
    switch (off) {
      case PmIo.PM1_STS: {
        const sts = this._sts();
        if (sts & v & Pm1.TMR) this._overflowTicks = nextOverflow(this._nowTicks());
        this._pm1Sts = sts & ~v;
        this._updateSci();
        return;
      }
      case PmIo.PM1_EN:
        this._pm1En = v & Pm1.EN_IMPLEMENTED;
        this._updateSci();
        return;
      case PmIo.PM1_CNT:
        this._cntWrite(v);
        return;
      default:
        return;
    }
  }

  private _cntWrite(v: number): void {
    this._pm1Cnt = v & Pm1Cnt.IMPLEMENTED;
    if (!(v & Pm1Cnt.SLP_EN)) return;
    const typ = (v & Pm1Cnt.SLP_TYP_MASK) >>> Pm1Cnt.SLP_TYP_SHIFT;
    if (typ === SlpTyp.SOFT_OFF || typ === SlpTyp.QEMU_S4) this.onPowerOff();
    else if (typ === SlpTyp.SUSPEND_TO_RAM) this.onSuspend();
  }

  private _apmcWrite(v: number): void {
    this._apmc = v & 0xff;
    if (this._apmc === Apm.ACPI_ENABLE || this._apmc === Apm.ACPI_DISABLE) {
      // ACPI-only (no SMM) platforms keep SCI_EN as it is (QEMU acpi_pm1_cnt_update).
      if (this._smm) {
        if (this._apmc === Apm.ACPI_ENABLE) this._pm1Cnt |= Pm1Cnt.SCI_EN;
        else this._pm1Cnt &= ~Pm1Cnt.SCI_EN;
      }
      return;
    }
    if (this._smm && this.config[Piix4PmReg.DEVACTB_HI] & DEVACTB_HI_APMC_EN) this.onSmi();
  }

  /** The power button was pressed (host request for an orderly ACPI shutdown). */
  pressPowerButton(): void {
    this._pm1Sts |= Pm1.PWRBTN;
    this._updateSci();
  }

  /** Drive SCI and arm the overflow timer when the timer interrupt is wanted (QEMU acpi_update_sci). */
  private _updateSci(): void {
    const sts = this._sts();
    const level = sts & this._pm1En & Pm1.SCI_SOURCES ? 1 : 0;
    if (level !== this._sci) {
      this._sci = level;
      this._sciLine.set(level);
    }
    if (this._pm1En & Pm1.TMR && !(sts & Pm1.TMR)) this._clock.arm(this._timer, nsAtPmTicks(this._overflowTicks));
    else this._clock.disarm(this._timer);
  }

  // ---- state ----

  override saveState(): Piix4PmState {
    return saveFields(Piix4Pm.stateSchema.fields, this) as unknown as Piix4PmState;
  }

  override loadState(s: Piix4PmState): void {
    loadChecked(this.id, Piix4Pm.stateSchema, this, s);
  }
}

/** The tick count at which bit 23 next toggles after `ticks`. */
function nextOverflow(ticks: number): number {
  return Math.floor((ticks + PM_TIMER_HALF) / PM_TIMER_HALF) * PM_TIMER_HALF;
}
