/**
 * The standard VGA's PCI function (00:02.0 on QEMU's pc machine): vendor
 * 1234 device 1111, class 03:00:00 (VGA-compatible display controller),
 * revision 2, BAR0 = prefetchable framebuffer (the VRAM size), BAR2 = 4 KiB
 * MMIO registers, no expansion ROM (the board maps the VGA BIOS itself).
 *
 * Reference: QEMU docs/specs/standard-vga.txt; PCI Local Bus Specification
 * 3.0, chapter 6 (the PciDevice base implements the configuration space).
 *
 * This function only owns configuration space. Whenever BAR decoding may
 * have changed it calls the board's `onBarChange` hook for each change (the
 * board remaps the pages) and tells the StdVga where its framebuffer and MMIO
 * block now are.
 */
import { PciDevice, pciState } from '../pci/device.js';
import { STDVGA_PCI_IDS, StdVgaBar, stdVgaPciBars } from './stdvga.js';
import type { StdVga } from './stdvga.js';

export class StdVgaPci extends PciDevice {
  /** Configuration space only (the VGA's own state is the StdVga's). */
  static override readonly stateSchema = pciState<StdVgaPci>('stdvga-pci', 1, {}, { transient: ['_vga'] });
  private readonly _vga: StdVga | null;

  constructor(id: string, vga: StdVga) {
    super(id, STDVGA_PCI_IDS, stdVgaPciBars(vga.vram.length));
    this._vga = vga;
  }

  protected override _updateMappings(): void {
    super._updateMappings();
    // The base constructor runs before _vga is set (it maps no BARs then).
    if (this._vga) {
      this._vga.onBarChange(StdVgaBar.FRAMEBUFFER, this.barAddress(StdVgaBar.FRAMEBUFFER), this.barSize(StdVgaBar.FRAMEBUFFER));
      this._vga.onBarChange(StdVgaBar.MMIO, this.barAddress(StdVgaBar.MMIO), this.barSize(StdVgaBar.MMIO));
    }
  }
}
