/**
 * Where Debian's SeaBIOS is, the firmware a machine gets by default. Apart
 * from resources.ts (which reads the ROMs) so that front ends can name it in
 * their help and options without loading the machine.
 */
import { existsSync } from 'node:fs';

export const SEABIOS_DIR = '/usr/share/seabios';
export const SEABIOS_BIOS = `${SEABIOS_DIR}/bios-256k.bin`;
export const SEABIOS_VGA = `${SEABIOS_DIR}/vgabios-stdvga.bin`;

/** True when Debian's SeaBIOS VGA ROM is installed (a machine with its own firmware gets it only then). */
export function seabiosVgaInstalled(): boolean {
  return existsSync(SEABIOS_VGA);
}
