/**
 * Intel 82441FX PCI and Memory Controller (PMC), the i440FX host bridge at
 * 00:00.0 (8086:1237), as QEMU's `pc` machine presents it.
 *
 * Reference: Intel 440FX PCIset 82441FX/82442FX datasheet (order 290549-001),
 * 3.2 (PAM0-PAM6 at 59h-5Fh, SMRAM at 72h); QEMU hw/pci-host/i440fx.c for
 * what SeaBIOS expects (subsystem 1AF4:1100, SMRAM reset value 02h, the RAM
 * size byte at 57h older coreboot reads).
 *
 * PAM: 13 regions of the BIOS area. PAM0 bits 5:4 cover F0000-FFFFF (64 KiB);
 * PAM1-PAM6 cover C0000-EFFFF in 16 KiB halves (low nibble = lower half).
 * In each nibble RE (bit 0) sends reads to DRAM and WE (bit 1) sends writes
 * to DRAM; otherwise the cycle goes to PCI (the ROM). The board does the
 * mapping in onPamChange(region, readEnable, writeEnable).
 *
 * SMRAM: D_OPEN makes the A0000-BFFFF SMRAM (DRAM) visible outside SMM (QEMU
 * disables the VGA window then); D_LCK locks D_OPEN off and itself on until
 * reset. No SMM is modelled: the board maps DRAM or VGA at A0000 from
 * onSmramChange(open).
 */
import { PciDevice, PciStatus, PciCommand, pciState, rangesOverlap } from './device.js';

export const I440FX_VENDOR_ID = 0x8086;
export const I440FX_DEVICE_ID = 0x1237;
const I440FX_REVISION = 0x02;
/** Class 06h (bridge), subclass 00h (host bridge). */
const CLASS_HOST_BRIDGE = 0x060000;

export const enum I440fxReg {
  /** Not in the datasheet: QEMU puts RAM size / 8 MiB here for coreboot 4.0. */
  COREBOOT_RAM_SIZE = 0x57,
  PAM0 = 0x59,
  SMRAM = 0x72,
}

export const enum Pam {
  RE = 0x1,
  WE = 0x2,
  COUNT_REGS = 7,
}

export const enum Smram {
  /** C_BASE_SEG = 010b: compatible SMRAM at A0000-BFFFF, hardwired. */
  C_BASE_SEG = 0x02,
  G_SMRAME = 0x08,
  D_LCK = 0x10,
  D_CLS = 0x20,
  D_OPEN = 0x40,
  WRITABLE = 0x78,
}

/** One PAM region of the BIOS area. */
export interface PamRegion {
  base: number;
  size: number;
}

const BIOS_BASE = 0xf0000;
const BIOS_SIZE = 0x10000;
const EXPANSION_BASE = 0xc0000;
const EXPANSION_SIZE = 0x4000;
/** Region 0 = F0000-FFFFF, regions 1-12 = C0000-EFFFF in 16 KiB steps (QEMU's numbering). */
export const PAM_REGION_COUNT = 13;
export const PAM_REGIONS: readonly PamRegion[] = Array.from({ length: PAM_REGION_COUNT }, (_, i) =>
  i === 0 ? { base: BIOS_BASE, size: BIOS_SIZE } : { base: EXPANSION_BASE + (i - 1) * EXPANSION_SIZE, size: EXPANSION_SIZE },
);
const MAX_COREBOOT_RAM_UNITS = 255;
const COREBOOT_RAM_UNIT = 8 * 1024 * 1024;

/** The RE/WE nibble for a PAM region from the PAM registers. */
function pamAttr(config: Uint8Array, region: number): number {
  const reg = config[I440fxReg.PAM0 + ((region + 1) >>> 1)];
  // Region 0 uses PAM0's high nibble; odd regions the low nibble, even ones the high.
  const high = (region & 1) === 0;
  return (high ? reg >>> 4 : reg) & (Pam.RE | Pam.WE);
}

export interface I440fxOptions {
  /** Guest RAM size in bytes (only fills QEMU's coreboot byte at 57h). */
  ramSizeBytes?: number;
}

export class I440fx extends PciDevice {
  /** Board hook: map PAM_REGIONS[region] (reads/writes to DRAM when enabled, else to ROM/PCI). */
  /** State is the configuration space; the PAM and SMRAM decodes and D_LCK's lock are derived from it (and re-announced on load). */
  static override readonly stateSchema = pciState<I440fx>('i440fx', 1, {}, {
    transient: ['onPamChange', 'onSmramChange', '_ramUnits', '_pam', '_smramOpen'],
    postLoad: (nb) => {
      nb._setWriteMask(I440fxReg.SMRAM, Smram.WRITABLE);
      nb._smramWritten();
      nb._update(true);
    },
  });
  onPamChange: (region: number, readEnable: boolean, writeEnable: boolean) => void = () => {};
  /** Board hook: SMRAM at A0000-BFFFF visible (DRAM) instead of the VGA window. */
  onSmramChange: (open: boolean) => void = () => {};
  private readonly _ramUnits: number;
  private readonly _pam = new Int8Array(PAM_REGION_COUNT).fill(-1);
  private _smramOpen = false;

  constructor(id: string, opts: I440fxOptions = {}) {
    super(id, {
      vendorId: I440FX_VENDOR_ID,
      deviceId: I440FX_DEVICE_ID,
      classCode: CLASS_HOST_BRIDGE,
      revision: I440FX_REVISION,
      command: PciCommand.MEMORY | PciCommand.MASTER,
      status: PciStatus.FAST_BACK | PciStatus.DEVSEL_MEDIUM,
    });
    this._ramUnits = Math.min(MAX_COREBOOT_RAM_UNITS, Math.floor((opts.ramSizeBytes ?? 0) / COREBOOT_RAM_UNIT));
    this._setWriteMask(I440fxReg.SMRAM, Smram.WRITABLE);
    this.reset();
  }

  protected override _resetRegisters(): void {
    this._setWriteMask(I440fxReg.SMRAM, Smram.WRITABLE);
    this.config[I440fxReg.SMRAM] = Smram.C_BASE_SEG;
    this.config[I440fxReg.COREBOOT_RAM_SIZE] = this._ramUnits;
  }

  /** Power-on reset: PAM regions back to ROM, SMRAM closed; the board is told every region's state. */
  override reset(): void {
    super.reset();
    this._update(true);
  }

  protected override _configWritten(addr: number, size: number): void {
    if (rangesOverlap(addr, size, I440fxReg.SMRAM, 1)) this._smramWritten();
    if (rangesOverlap(addr, size, I440fxReg.PAM0, Pam.COUNT_REGS) || rangesOverlap(addr, size, I440fxReg.SMRAM, 1)) this._update(false);
  }

  /** D_LCK (82441FX 3.2.32): once set, D_OPEN reads 0 and D_LCK/G_SMRAME stay until reset. */
  private _smramWritten(): void {
    const c = this.config;
    if (c[I440fxReg.SMRAM] & Smram.D_LCK) {
      c[I440fxReg.SMRAM] &= ~Smram.D_OPEN;
      this._setWriteMask(I440fxReg.SMRAM, Smram.D_CLS);
    }
  }

  private _update(all: boolean): void {
    for (let r = 0; r < PAM_REGION_COUNT; r++) {
      const a = pamAttr(this.config, r);
      if (all || a !== this._pam[r]) {
        this._pam[r] = a;
        this.onPamChange(r, (a & Pam.RE) !== 0, (a & Pam.WE) !== 0);
      }
    }
    const open = (this.config[I440fxReg.SMRAM] & Smram.D_OPEN) !== 0;
    if (all || open !== this._smramOpen) {
      this._smramOpen = open;
      this.onSmramChange(open);
    }
  }

  /** Current RE/WE of a PAM region (for the board and tests). */
  pamState(region: number): { readEnable: boolean; writeEnable: boolean } {
    const a = pamAttr(this.config, region);
    return { readEnable: (a & Pam.RE) !== 0, writeEnable: (a & Pam.WE) !== 0 };
  }
}
