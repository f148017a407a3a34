/**
 * The CMOS bytes a PC's firmware reads at boot (the IBM AT layout, as QEMU's
 * pc machine fills it): base, extended and high memory sizes, equipment, boot
 * order and CPU count.
 */
import type { Mc146818 } from '../devices/mc146818.js';

const enum Cmos {
  EQUIPMENT = 0x14,
  BASE_MEM_LO = 0x15,
  BASE_MEM_HI = 0x16,
  EXT_MEM_LO = 0x17,
  EXT_MEM_HI = 0x18,
  BOOT_FLAGS = 0x38,
  BOOT_ORDER = 0x3d,
  EXT_MEM2_LO = 0x30,
  EXT_MEM2_HI = 0x31,
  MEM_ABOVE_16M_LO = 0x34,
  MEM_ABOVE_16M_HI = 0x35,
  CPU_COUNT = 0x5f,
  MEM_ABOVE_4G = 0x5b,
}

/** Firmware boot-device codes in CMOS 0x3D/0x38. */
const BOOT_CODE: Record<string, number> = { a: 1, c: 2, d: 3 };

export function setupCmos(rtc: Mc146818, ramSize: number, boot: string): void {
  const baseKb = 640;
  rtc.setByte(Cmos.BASE_MEM_LO, baseKb & 0xff);
  rtc.setByte(Cmos.BASE_MEM_HI, baseKb >> 8);
  const extKb = Math.min(Math.max(0, (ramSize - 0x100000) >>> 10), 0xffff);
  rtc.setByte(Cmos.EXT_MEM_LO, extKb & 0xff);
  rtc.setByte(Cmos.EXT_MEM_HI, extKb >> 8);
  rtc.setByte(Cmos.EXT_MEM2_LO, extKb & 0xff);
  rtc.setByte(Cmos.EXT_MEM2_HI, extKb >> 8);
  const above16 = Math.min(Math.max(0, (ramSize - 16 * 1048576) / 65536), 0xffff);
  rtc.setByte(Cmos.MEM_ABOVE_16M_LO, above16 & 0xff);
  rtc.setByte(Cmos.MEM_ABOVE_16M_HI, above16 >> 8);
  for (let i = 0; i < 3; i++) rtc.setByte(Cmos.MEM_ABOVE_4G + i, 0);
  // equipment: x87 present, VGA (display bits 00), no floppy drives
  rtc.setByte(Cmos.EQUIPMENT, 0x02);
  const codes = [...boot].map((c) => BOOT_CODE[c] ?? 0).filter(Boolean);
  rtc.setByte(Cmos.BOOT_ORDER, (codes[0] ?? 0) | ((codes[1] ?? 0) << 4));
  // bit 0: skip the floppy boot-signature check
  rtc.setByte(Cmos.BOOT_FLAGS, ((codes[2] ?? 0) << 4) | 1);
  rtc.setByte(Cmos.CPU_COUNT, 0);
}
