/**
 * Minimal ACPI tables for direct Linux boot (no firmware to build them): an
 * RSDP, an RSDT, a FADT describing the PIIX4 power-management block the
 * board enables at PM_BASE (PM1a event/control, the PM timer, SCI on IRQ 9),
 * a FACS, a DSDT whose only object is \_S5 (soft-off with SLP_TYP 0, as
 * QEMU's DSDT has it), and a MADT describing the local APIC and the I/O APIC
 * as QEMU's pc machine does. That is enough for Linux's ACPI power-off, its fixed power button, the
 * acpi_pm clocksource and APIC interrupt routing. ACPI 1.0b / 2.0 table
 * layouts (MADT: ACPI 2.0 section 5.2.10.4).
 */

/** Where the PIIX4 PM I/O block lives (what SeaBIOS programs under QEMU). */
export const PM_BASE = 0xb000;
export const SCI_IRQ = 9;
/** The local APIC's default address, the I/O APIC's address and ID (QEMU's ACPI_BUILD_IOAPIC_ID). */
export const LAPIC_ADDR = 0xfee00000;
export const IOAPIC_ADDR = 0xfec00000;
export const IOAPIC_ID = 0;
/** ISA IRQs QEMU declares level-triggered, active high (its PCI interrupt lines and the SCI). */
const LEVEL_ISA_IRQS = [5, 9, 10, 11];

/** MADT interrupt structure types and flags. */
const enum Madt {
  PCAT_COMPAT = 1,
  LOCAL_APIC = 0,
  IO_APIC = 1,
  SOURCE_OVERRIDE = 2,
  LOCAL_APIC_NMI = 4,
  ENABLED = 1,
  /** MPS INTI flags: polarity bits 1:0 (01 active high), trigger bits 3:2 (11 level). */
  ACTIVE_HIGH_LEVEL = 0x0d,
  CONFORMING = 0,
  ALL_PROCESSORS = 0xff,
}

function checksum(b: Uint8Array, start: number, len: number, at: number): void {
  let sum = 0;
  for (let i = start; i < start + len; i++) if (i !== at) sum += b[i];
  b[at] = (0x100 - (sum & 0xff)) & 0xff;
}

function header(b: DataView, at: number, sig: string, len: number, rev: number): void {
  for (let i = 0; i < 4; i++) b.setUint8(at + i, sig.charCodeAt(i));
  b.setUint32(at + 4, len, true);
  b.setUint8(at + 8, rev);
  const oem = 'TSVM  TSVMVIRT';
  for (let i = 0; i < 14; i++) b.setUint8(at + 10 + i, oem.charCodeAt(i)); // OEM ID (6) + OEM table ID (8)
  b.setUint32(at + 24, 1, true); // OEM revision
  for (let i = 0; i < 4; i++) b.setUint8(at + 28 + i, 'TSVM'.charCodeAt(i)); // creator ID
  b.setUint32(at + 32, 1, true);
}

/**
 * Build the tables for physical address `base`; returns the bytes and the
 * RSDP's physical address.
 */
export function buildAcpiTables(base: number): { bytes: Uint8Array; rsdp: number } {
  const RSDP = 0,
    RSDT = 32,
    FADT = 80,
    FACS = 208,
    DSDT = 272,
    MADT = 320;
  const dsdtBody = [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00]; // Name(_S5, Package(4){0,0,0,0})
  const dsdtLen = 36 + dsdtBody.length;
  const madtLen = 44 + 8 + 12 + 10 * (1 + LEVEL_ISA_IRQS.length) + 6;
  const bytes = new Uint8Array(MADT + madtLen);
  const v = new DataView(bytes.buffer);

  // RSDP (ACPI 1.0, 20 bytes)
  'RSD PTR '.split('').forEach((c, i) => v.setUint8(RSDP + i, c.charCodeAt(0)));
  'TSVM  '.split('').forEach((c, i) => v.setUint8(RSDP + 9 + i, c.charCodeAt(0)));
  v.setUint8(RSDP + 15, 0);
  v.setUint32(RSDP + 16, base + RSDT, true);
  checksum(bytes, RSDP, 20, RSDP + 8);

  // RSDT: the FADT and the MADT
  header(v, RSDT, 'RSDT', 44, 1);
  v.setUint32(RSDT + 36, base + FADT, true);
  v.setUint32(RSDT + 40, base + MADT, true);
  checksum(bytes, RSDT, 44, RSDT + 9);

  // FADT (revision 1, 116 bytes)
  header(v, FADT, 'FACP', 116, 1);
  v.setUint32(FADT + 36, base + FACS, true); // FIRMWARE_CTRL
  v.setUint32(FADT + 40, base + DSDT, true); // DSDT
  v.setUint16(FADT + 46, SCI_IRQ, true); // SCI_INT
  v.setUint32(FADT + 48, 0, true); // SMI_CMD: none, ACPI mode is always on
  v.setUint32(FADT + 56, PM_BASE, true); // PM1a_EVT_BLK
  v.setUint32(FADT + 64, PM_BASE + 4, true); // PM1a_CNT_BLK
  v.setUint32(FADT + 76, PM_BASE + 8, true); // PM_TMR_BLK
  v.setUint8(FADT + 88, 4); // PM1_EVT_LEN
  v.setUint8(FADT + 89, 2); // PM1_CNT_LEN
  v.setUint8(FADT + 91, 4); // PM_TMR_LEN
  v.setUint16(FADT + 96, 0xfff, true); // P_LVL2_LAT: C2 not supported
  v.setUint16(FADT + 98, 0xfff, true); // P_LVL3_LAT: C3 not supported
  // WBINVD and SLP_BUTTON (no sleep button). PWR_BUTTON clear: the power button is the fixed-feature one
  // (PM1 PWRBTN_STS/EN), as in QEMU's FADT, so Linux adds LNXPWRBN and reports a press as KEY_POWER
  v.setUint32(FADT + 112, (1 << 0) | (1 << 5), true);
  checksum(bytes, FADT, 116, FADT + 9);

  // FACS (64 bytes, no checksum)
  'FACS'.split('').forEach((c, i) => v.setUint8(FACS + i, c.charCodeAt(0)));
  v.setUint32(FACS + 4, 64, true);

  // DSDT
  header(v, DSDT, 'DSDT', dsdtLen, 1);
  bytes.set(dsdtBody, DSDT + 36);
  checksum(bytes, DSDT, dsdtLen, DSDT + 9);

  // MADT: one processor (UID 0, APIC ID 0), the I/O APIC with GSIs 0-23, ISA IRQ0 on GSI 2,
  // QEMU's level-triggered ISA IRQs, and LINT1 as NMI on every processor
  header(v, MADT, 'APIC', madtLen, 1);
  v.setUint32(MADT + 36, LAPIC_ADDR, true);
  v.setUint32(MADT + 40, Madt.PCAT_COMPAT, true); // 8259s present: Linux masks them when it switches to the APIC
  let at = MADT + 44;
  v.setUint8(at, Madt.LOCAL_APIC);
  v.setUint8(at + 1, 8);
  v.setUint8(at + 2, 0); // ACPI processor UID
  v.setUint8(at + 3, 0); // APIC ID
  v.setUint32(at + 4, Madt.ENABLED, true);
  at += 8;
  v.setUint8(at, Madt.IO_APIC);
  v.setUint8(at + 1, 12);
  v.setUint8(at + 2, IOAPIC_ID);
  v.setUint32(at + 4, IOAPIC_ADDR, true);
  v.setUint32(at + 8, 0, true); // GSI base
  at += 12;
  const override = (irq: number, gsi: number, flags: number): void => {
    v.setUint8(at, Madt.SOURCE_OVERRIDE);
    v.setUint8(at + 1, 10);
    v.setUint8(at + 2, 0); // bus: ISA
    v.setUint8(at + 3, irq);
    v.setUint32(at + 4, gsi, true);
    v.setUint16(at + 8, flags, true);
    at += 10;
  };
  override(0, 2, Madt.CONFORMING);
  for (const irq of LEVEL_ISA_IRQS) override(irq, irq, Madt.ACTIVE_HIGH_LEVEL);
  v.setUint8(at, Madt.LOCAL_APIC_NMI);
  v.setUint8(at + 1, 6);
  v.setUint8(at + 2, Madt.ALL_PROCESSORS);
  v.setUint16(at + 3, Madt.CONFORMING, true);
  v.setUint8(at + 5, 1); // LINT1
  checksum(bytes, MADT, madtLen, MADT + 9);

  return { bytes, rsdp: base + RSDP };
}
