/**
 * Intel MultiProcessor Specification 1.4 tables for direct Linux boot: the
 * floating pointer ("_MP_") and a configuration table ("PCMP") describing
 * the one processor, the PCI and ISA buses, the I/O APIC and how the ISA
 * interrupts reach it. SeaBIOS builds the same table under QEMU
 * (src/fw/mptable.c); Linux reads it for the I/O APIC when ACPI interrupt
 * routing is off, which `pci=noacpi` (the default guest's command line)
 * implies: Linux then takes the local APIC from the MADT and the I/O APIC
 * and its interrupt assignments from here.
 *
 * Reference: MultiProcessor Specification version 1.4, chapter 4
 * (floating pointer structure, configuration table header, entries).
 */
import { CPUID_1_EDX, CPUID_1_EDX_APIC, CPUID_SIGNATURE } from '../cpu/ops/system.js';
import { IOAPIC_ADDR, IOAPIC_ID, LAPIC_ADDR } from './acpi.js';

const enum Mp {
  SPEC_REV = 4, // version 1.4
  PROCESSOR = 0,
  BUS = 1,
  IOAPIC = 2,
  IO_INTERRUPT = 3,
  LOCAL_INTERRUPT = 4,
  INT = 0,
  NMI = 1,
  EXTINT = 3,
  CPU_ENABLED = 1,
  CPU_BSP = 2,
  IOAPIC_ENABLED = 1,
  /** Interrupt flags: polarity bits 1:0, trigger mode bits 3:2 (0 = conforms to the bus). */
  CONFORMING = 0,
  ACTIVE_HIGH_LEVEL = 0x0d,
  PCI_BUS = 0,
  ISA_BUS = 1,
}

/** Local APIC version the processor entry reports (the version register's low byte). */
const LAPIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11;
/** ISA IRQs with no I/O interrupt entry: the cascade (IRQ2; IRQ0 takes its pin), and the PCI interrupt lines 5, 10, 11 as SeaBIOS leaves them out. */
const SKIPPED_ISA_IRQS = [2, 5, 10, 11];
/** The SCI: level-triggered, active high, as the MADT's source override says. */
const SCI_IRQ = 9;

/** A PCI function's interrupt pin (1-4 = INTA#-INTD#) on a slot, and the I/O APIC pin it reaches. */
export interface PciIrq {
  slot: number;
  pin: number;
  ioapicPin: number;
}

/**
 * Build the floating pointer at physical `base` (16-byte aligned) followed by
 * the configuration table. Returns the bytes to place there.
 */
export function buildMpTables(base: number, pciIrqs: readonly PciIrq[] = []): Uint8Array {
  if (base & 15) throw new RangeError('the MP floating pointer must be 16-byte aligned');
  const isaIrqs = Array.from({ length: 16 }, (_, i) => i).filter((i) => !SKIPPED_ISA_IRQS.includes(i));
  const entries = 1 + 2 + 1 + isaIrqs.length + pciIrqs.length + 2;
  const configLen = 44 + 20 + 8 * (entries - 1);
  const bytes = new Uint8Array(16 + configLen);
  const v = new DataView(bytes.buffer);
  const ascii = (at: number, s: string): void => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  const sum = (start: number, len: number, at: number): void => {
    let s = 0;
    for (let i = start; i < start + len; i++) s += bytes[i];
    bytes[at] = (0x100 - (s & 0xff)) & 0xff;
  };

  // floating pointer: config table right after it; feature bytes 0 (a table is present, no IMCR: virtual wire mode)
  ascii(0, '_MP_');
  v.setUint32(4, base + 16, true);
  v.setUint8(8, 1); // length in 16-byte units
  v.setUint8(9, Mp.SPEC_REV);
  sum(0, 16, 10);

  const c = 16;
  ascii(c, 'PCMP');
  v.setUint16(c + 4, configLen, true);
  v.setUint8(c + 6, Mp.SPEC_REV);
  ascii(c + 8, 'TSVM    ');
  ascii(c + 16, 'TSVMVIRT    ');
  v.setUint16(c + 34, entries, true);
  v.setUint32(c + 36, LAPIC_ADDR, true);
  let at = c + 44;

  v.setUint8(at, Mp.PROCESSOR);
  v.setUint8(at + 1, 0); // local APIC ID
  v.setUint8(at + 2, LAPIC_VERSION);
  v.setUint8(at + 3, Mp.CPU_ENABLED | Mp.CPU_BSP);
  v.setUint32(at + 4, CPUID_SIGNATURE, true);
  v.setUint32(at + 8, CPUID_1_EDX | CPUID_1_EDX_APIC, true);
  at += 20;
  const bus = (id: number, type: string): void => {
    v.setUint8(at, Mp.BUS);
    v.setUint8(at + 1, id);
    ascii(at + 2, type);
    at += 8;
  };
  bus(Mp.PCI_BUS, 'PCI   ');
  bus(Mp.ISA_BUS, 'ISA   ');
  v.setUint8(at, Mp.IOAPIC);
  v.setUint8(at + 1, IOAPIC_ID);
  v.setUint8(at + 2, IOAPIC_VERSION);
  v.setUint8(at + 3, Mp.IOAPIC_ENABLED);
  v.setUint32(at + 4, IOAPIC_ADDR, true);
  at += 8;
  const interrupt = (kind: number, type: number, flags: number, srcIrq: number, destId: number, destPin: number, srcBus: number = Mp.ISA_BUS): void => {
    v.setUint8(at, kind);
    v.setUint8(at + 1, type);
    v.setUint16(at + 2, flags, true);
    v.setUint8(at + 4, srcBus);
    v.setUint8(at + 5, srcIrq);
    v.setUint8(at + 6, destId);
    v.setUint8(at + 7, destPin);
    at += 8;
  };
  // ISA IRQ n on I/O APIC pin n, except IRQ0 (the PIT) on pin 2, as the board wires them
  for (const irq of isaIrqs) {
    interrupt(Mp.IO_INTERRUPT, Mp.INT, irq === SCI_IRQ ? Mp.ACTIVE_HIGH_LEVEL : Mp.CONFORMING, irq, IOAPIC_ID, irq === 0 ? 2 : irq);
  }
  // PCI INTx of the add-in slots: source = slot << 2 | (pin - 1) on the PCI bus, to the I/O APIC
  // pin the board wires that PIRQ to (16-19); flags 0 = the PCI bus's own (level, active low)
  for (const p of pciIrqs) interrupt(Mp.IO_INTERRUPT, Mp.INT, Mp.CONFORMING, (p.slot << 2) | (p.pin - 1), IOAPIC_ID, p.ioapicPin, Mp.PCI_BUS);
  // the 8259 on LINT0 (virtual wire), NMI on LINT1 of every local APIC
  interrupt(Mp.LOCAL_INTERRUPT, Mp.EXTINT, Mp.CONFORMING, 0, 0, 0);
  interrupt(Mp.LOCAL_INTERRUPT, Mp.NMI, Mp.CONFORMING, 0, 0xff, 1);
  sum(c, configLen, c + 7);
  return bytes;
}
