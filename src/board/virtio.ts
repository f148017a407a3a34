/**
 * Virtio devices on the PC: each VirtioDevice the configuration names gets
 * the PCI transport, the first free slot from 3 on (QEMU's first -device
 * lands on 00:03.0 too), its BARs mapped where the guest programs them, and
 * its MSI-X messages delivered to the local APIC.
 */
import { PhysicalGuestRam } from '../bus/dma.js';
import type { MmioHandlers, PhysicalMemory } from '../bus/memory.js';
import type { LocalApic } from '../devices/apic/lapic.js';
import type { PciHost } from '../devices/pci/host.js';
import { decodeMsi } from '../devices/pci/msix.js';
import type { VirtioDevice } from '../devices/virtio/device.js';
import { VirtioBar, VirtioPci } from '../devices/virtio/pci.js';

const FIRST_SLOT = 3;
const SLOTS = 32;

/** Put `devices` on the PCI bus; returns their transports (the machine resets and saves them). */
export function wireVirtio(devices: readonly VirtioDevice[], deps: { mem: PhysicalMemory; pci: PciHost; lapic: () => LocalApic }): VirtioPci[] {
  const ram = new PhysicalGuestRam(deps.mem);
  return devices.map((dev) => {
    const t = new VirtioPci(dev, ram);
    t.msix.sink = (lo, hi, data) => {
      const m = decodeMsi(lo, hi, data);
      if (m) deps.lapic().deliver(m.vector, m.mode, false, m.logical, m.dest);
    };
    const mapped = new Map<number, [number, number]>();
    t.onBarChange = (bar, addr, size) => {
      const old = mapped.get(bar);
      if (old) deps.mem.unmap(old[0], old[1]);
      mapped.delete(bar);
      if (addr < 0 || (bar !== VirtioBar.CFG_BAR && bar !== VirtioBar.MSIX_BAR)) return;
      mapped.set(bar, [addr, size]);
      deps.mem.addMmio(addr, size, barHandlers(t, bar, addr));
    };
    let slot = FIRST_SLOT;
    while (slot < SLOTS && deps.pci.deviceAt(slot, 0)) slot++;
    if (slot >= SLOTS) throw new Error(`no free PCI slot for ${dev.id}`);
    deps.pci.attach(slot, 0, t);
    return t;
  });
}

function barHandlers(t: VirtioPci, bar: number, base: number): MmioHandlers {
  return {
    read8: (a) => t.barRead(bar, a - base, 1),
    write8: (a, v) => t.barWrite(bar, a - base, v, 1),
    read16: (a) => t.barRead(bar, a - base, 2),
    write16: (a, v) => t.barWrite(bar, a - base, v, 2),
    read32: (a) => t.barRead(bar, a - base, 4),
    write32: (a, v) => t.barWrite(bar, a - base, v, 4),
  };
}
