/**
 * Direct Linux boot (`-kernel/-initrd/-append`) by the 32-bit boot protocol
 * (Linux Documentation/arch/x86/boot.rst): the loader places the protected-mode
 * kernel at 1 MiB, the initrd high in RAM and the command line low, fills the
 * zero page (struct boot_params) with the setup header and the e820 map, and
 * starts the CPU in flat 32-bit protected mode at code32_start with ESI
 * pointing at the zero page. No firmware runs.
 */
import type { PhysicalMemory } from '../bus/memory.js';
import { Seg } from '../cpu/consts.js';
import type { Cpu } from '../cpu/cpu.js';
import { Descriptor, setSegCache } from '../cpu/segments.js';
import { utf8Encode } from '../base/utf8.js';

export class LinuxBootError extends Error {}

/** Offsets in the setup header / boot_params (boot.rst, "The real-mode kernel header"). */
const enum Hdr {
  SETUP_SECTS = 0x1f1,
  SYSSIZE = 0x1f4,
  HEADER = 0x202, // "HdrS"
  VERSION = 0x206,
  TYPE_OF_LOADER = 0x210,
  LOADFLAGS = 0x211,
  CODE32_START = 0x214,
  RAMDISK_IMAGE = 0x218,
  RAMDISK_SIZE = 0x21c,
  HEAP_END_PTR = 0x224,
  CMD_LINE_PTR = 0x228,
  INITRD_ADDR_MAX = 0x22c,
  CMDLINE_SIZE = 0x238,
}
/** boot_params fields outside the setup header. */
const enum Bp {
  /** struct screen_info, at the start of boot_params. */
  SI_ORIG_X = 0x00,
  SI_ORIG_Y = 0x01,
  SI_VIDEO_MODE = 0x06,
  SI_VIDEO_COLS = 0x07,
  SI_VIDEO_EGA_BX = 0x0a,
  SI_VIDEO_LINES = 0x0e,
  SI_VIDEO_IS_VGA = 0x0f,
  SI_VIDEO_POINTS = 0x10,
  ACPI_RSDP_ADDR = 0x070,
  ALT_MEM_K = 0x1e0,
  E820_ENTRIES = 0x1e8,
  E820_TABLE = 0x2d0,
  SIZE = 4096,
}
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;
const HDRS_MAGIC = 0x53726448;
/** The least a bzImage can be (its setup code is at least 5 sectors). */
const BZ_MIN_BYTES = 0x1000;
/** Oldest protocol with the fields this loader writes (2.06: cmdline_size). */
const MIN_PROTOCOL = 0x206;

/** Where the loader puts things (all below 1 MiB, away from the EBDA and the BIOS area). */
const ZERO_PAGE = 0x7000;
const CMDLINE_ADDR = 0x20000;
const GDT_ADDR = 0x6000;
const KERNEL_ADDR = 0x100000;
/** Low RAM ends at 639 KiB; the 1 KiB below 640 KiB is the EBDA. */
const LOW_RAM_END = 0x9fc00;

/** A file the loader reads parts of: its size, and `into.length` bytes from `position` into `into`. */
export interface KernelFile {
  readonly size: number;
  read(into: Uint8Array, position: number): void;
}
/** A kernel, vmlinux or initrd: its bytes, or a file read at every load (src/vmm/resources.ts). */
export type KernelImage = Uint8Array | KernelFile;
function asFile(x: KernelImage): KernelFile {
  if (!(x instanceof Uint8Array)) return x;
  return { size: x.length, read: (into, position) => into.set(x.subarray(position, position + into.length)) };
}
/** Its first `n` bytes (fewer if its `size` is less). */
function head(f: KernelFile, size: number, n: number): Uint8Array {
  const b = new Uint8Array(Math.min(size, n));
  f.read(b, 0);
  return b;
}
/** The most a bzImage's setup code can be: 255 sectors and the boot sector. */
const SETUP_MAX = 256 * 512;
/** What is read of a vmlinux to find its segments: the ELF header and program headers. */
const ELF_HEAD_MAX = 0x10000;

/**
 * The images the loader reads at power-on and at every reset. Given as files
 * (src/vmm/resources.ts), they are read straight into guest RAM each time,
 * only the parts a load uses, and nothing of them stays in the process:
 * the default guest's 27 MiB of kernel files were resident for good when
 * kept for resets, and a large buffer read and then freed raises glibc's mmap
 * threshold to its size, after which the process's later allocations fill
 * its heap around the hole (docs/cpu-jit.md, "Memory").
 */
export interface LinuxImages {
  /** The bzImage (its setup header always goes in the zero page). */
  kernel: KernelImage;
  /**
   * Optionally the same kernel already decompressed (its vmlinux ELF): loaded
   * at its physical addresses and entered at phys_startup_32, which skips the
   * bzImage's decompressor (the same entry the decompressor jumps to).
   */
  vmlinux?: KernelImage;
  initrd?: KernelImage;
  cmdline: string;
  /** Physical address of an ACPI RSDP the board placed (boot_params.acpi_rsdp_addr). */
  acpiRsdp?: number;
  /**
   * The VGA text mode the board set (BIOS mode 03h), for screen_info, so
   * that vgacon takes the screen; without it screen_info is zero and Linux
   * has no VGA console (its dummy console instead).
   */
  vgaText?: { mode: number; cols: number; rows: number; cellHeight: number };
}

export interface E820Entry {
  addr: number;
  size: number;
  type: 1 | 2 | 3 | 4;
}

/** The e820 map tsvm reports for a PC with `ramSize` bytes. */
export function e820Map(ramSize: number): E820Entry[] {
  return [
    { addr: 0, size: LOW_RAM_END, type: 1 },
    { addr: LOW_RAM_END, size: 0xa0000 - LOW_RAM_END, type: 2 },
    { addr: 0xf0000, size: 0x10000, type: 2 },
    { addr: 0x100000, size: ramSize - 0x100000, type: 1 },
    { addr: 0xfffc0000, size: 0x40000, type: 2 },
  ];
}

/** Check a bzImage and return its setup size and protocol version, or throw a clear error. */
export function parseBzImage(k: Uint8Array, size = k.length): { setupBytes: number; version: number } {
  const dv = new DataView(k.buffer, k.byteOffset, k.byteLength);
  if (k.length < BZ_MIN_BYTES || dv.getUint32(Hdr.HEADER, true) !== HDRS_MAGIC) {
    throw new LinuxBootError('the kernel is not a Linux bzImage (no "HdrS" boot header at offset 0x202)');
  }
  const version = dv.getUint16(Hdr.VERSION, true);
  if (version < MIN_PROTOCOL) {
    throw new LinuxBootError(`the kernel uses boot protocol ${version >> 8}.${version & 0xff}; tsvm needs 2.06 or newer (Linux 2.6.22+)`);
  }
  if ((k[Hdr.LOADFLAGS] & LOADED_HIGH) === 0) throw new LinuxBootError('the kernel is a zImage (loaded low); only bzImage kernels are supported');
  let sects = k[Hdr.SETUP_SECTS];
  if (sects === 0) sects = 4;
  const setupBytes = (sects + 1) * 512;
  if (setupBytes >= size) throw new LinuxBootError('the kernel image is truncated (setup code runs past its end)');
  return { setupBytes, version };
}

/**
 * Load the kernel, initrd and command line into guest RAM and put the CPU at
 * the 32-bit entry point. Everything is checked before memory is written.
 */
export function loadLinux(mem: PhysicalMemory, cpu: Cpu, img: LinuxImages): void {
  const kf = asFile(img.kernel);
  const size = kf.size; // (one look at each file per load: a KernelFile may stat it)
  const k = head(kf, size, SETUP_MAX);
  const { setupBytes } = parseBzImage(k, size);
  const dv = new DataView(k.buffer, k.byteOffset, k.byteLength);
  const ram = mem.ramSize;
  const pmSize = size - setupBytes;
  const cmdlineMax = dv.getUint32(Hdr.CMDLINE_SIZE, true);
  const cmd = utf8Encode(img.cmdline);
  if (cmd.length > cmdlineMax) throw new LinuxBootError(`the kernel command line is ${cmd.length} bytes; this kernel takes at most ${cmdlineMax}`);
  // init_size (protocol 2.10+): the memory the kernel needs from its load address while it unpacks itself
  const initSize = dv.getUint32(0x260, true);
  const need = KERNEL_ADDR + Math.max(pmSize, initSize) + 1024 * 1024;
  if (need > ram) {
    throw new LinuxBootError(`${ram >> 20} MiB of RAM is too little for this kernel; give the machine more RAM (at least ${Math.ceil(need / 1048576)} MiB)`);
  }
  const vf = img.vmlinux === undefined ? undefined : asFile(img.vmlinux);
  const vmlinuxSize = vf ? vf.size : 0;
  const elf = vf ? elfLoads(head(vf, vmlinuxSize, ELF_HEAD_MAX), vmlinuxSize) : undefined;
  if (elf) for (const g of elf.segs) checkSegment(g, ram);
  let initrdAddr = 0;
  const initrd = img.initrd === undefined ? undefined : asFile(img.initrd);
  const initrdSize = initrd ? initrd.size : 0;
  if (initrd) {
    const max = Math.min(dv.getUint32(Hdr.INITRD_ADDR_MAX, true) >>> 0, ram - 1);
    initrdAddr = Math.floor((max + 1 - initrdSize) / 4096) * 4096;
    if (initrdAddr < KERNEL_ADDR + pmSize + 8 * 1024 * 1024) {
      throw new LinuxBootError(`the initrd (${(initrdSize / 1048576).toFixed(1)} MiB) does not fit in RAM beside the kernel; give the machine more RAM`);
    }
  }

  // zero page: the setup header as the kernel carries it, then the loader's fields
  const zp = new Uint8Array(Bp.SIZE);
  const hdrEnd = 0x202 + k[0x201];
  zp.set(k.subarray(Hdr.SETUP_SECTS, hdrEnd), Hdr.SETUP_SECTS);
  const z = new DataView(zp.buffer);
  z.setUint8(Hdr.TYPE_OF_LOADER, 0xff);
  z.setUint8(Hdr.LOADFLAGS, zp[Hdr.LOADFLAGS] | CAN_USE_HEAP);
  z.setUint16(Hdr.HEAP_END_PTR, 0xfe00, true);
  z.setUint32(Hdr.CMD_LINE_PTR, CMDLINE_ADDR, true);
  z.setUint32(Hdr.RAMDISK_IMAGE, initrdAddr, true);
  z.setUint32(Hdr.RAMDISK_SIZE, initrdSize, true);
  z.setUint32(Bp.ALT_MEM_K, (ram - 0x100000) >>> 10, true);
  if (img.acpiRsdp) z.setUint32(Bp.ACPI_RSDP_ADDR, img.acpiRsdp, true);
  if (img.vgaText) {
    // what the real-mode setup code would have read from the VGA BIOS (arch/x86/boot/video.c)
    const t = img.vgaText;
    z.setUint8(Bp.SI_ORIG_X, 0);
    z.setUint8(Bp.SI_ORIG_Y, 0);
    z.setUint8(Bp.SI_VIDEO_MODE, t.mode);
    z.setUint8(Bp.SI_VIDEO_COLS, t.cols);
    z.setUint16(Bp.SI_VIDEO_EGA_BX, 0, true); // not a CGA: EGA or better
    z.setUint8(Bp.SI_VIDEO_LINES, t.rows);
    z.setUint8(Bp.SI_VIDEO_IS_VGA, 1);
    z.setUint16(Bp.SI_VIDEO_POINTS, t.cellHeight, true);
  }
  const map = e820Map(ram);
  z.setUint8(Bp.E820_ENTRIES, map.length);
  map.forEach((e, i) => {
    const o = Bp.E820_TABLE + i * 20;
    z.setUint32(o, e.addr >>> 0, true);
    z.setUint32(o + 4, 0, true);
    z.setUint32(o + 8, e.size >>> 0, true);
    z.setUint32(o + 12, 0, true);
    z.setUint32(o + 16, e.type, true);
  });

  // write guest memory
  const m = mem.mem;
  m.fill(0, ZERO_PAGE, ZERO_PAGE + Bp.SIZE);
  m.set(zp, ZERO_PAGE);
  m.fill(0, CMDLINE_ADDR, CMDLINE_ADDR + cmd.length + 1);
  m.set(cmd, CMDLINE_ADDR);
  let entry = dv.getUint32(Hdr.CODE32_START, true) || KERNEL_ADDR;
  if (vf && elf) {
    for (const g of elf.segs) {
      vf.read(m.subarray(g.paddr, g.paddr + g.filesz), g.off);
      m.fill(0, g.paddr + g.filesz, g.paddr + g.memsz);
    }
    entry = elf.entry;
  } else kf.read(m.subarray(KERNEL_ADDR, KERNEL_ADDR + pmSize), setupBytes);
  if (initrd) initrd.read(m.subarray(initrdAddr, initrdAddr + initrdSize), 0);

  // GDT with __BOOT_CS (0x10) and __BOOT_DS (0x18), flat 4 GiB
  const gdt = new DataView(m.buffer, GDT_ADDR, 32);
  gdt.setUint32(0x10, 0x0000ffff, true);
  gdt.setUint32(0x14, 0x00cf9b00, true);
  gdt.setUint32(0x18, 0x0000ffff, true);
  gdt.setUint32(0x1c, 0x00cf9300, true);
  cpu.gdtBase = GDT_ADDR;
  cpu.gdtLimit = 0x1f;
  cpu.idtBase = 0;
  cpu.idtLimit = 0;
  cpu.cr0 |= 1; // PE
  const d = new Descriptor();
  d.lo = 0x0000ffff;
  d.hi = 0x00cf9b00;
  setSegCache(cpu, Seg.CS, 0x10, d);
  d.hi = 0x00cf9300;
  for (const s of [Seg.DS, Seg.ES, Seg.SS, Seg.FS, Seg.GS]) setSegCache(cpu, s, 0x18, d);
  cpu.setCpl(0);
  cpu.setFlags(0x2, -1); // interrupts off
  cpu.reg32.fill(0);
  cpu.reg32[6] = ZERO_PAGE; // ESI
  cpu.eip = entry;
  cpu.updateModes();
  cpu.flushTlb(true);
}

interface ElfLoad {
  off: number;
  paddr: number;
  filesz: number;
  memsz: number;
}
const ELF_HEADER = 52;
const ELF_PHDR = 32;

/** A 32-bit x86 ELF kernel's entry point and PT_LOAD segments (`elf` holds its headers at least), checked against the file's size. */
function elfLoads(elf: Uint8Array, size = elf.length): { entry: number; segs: ElfLoad[] } {
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.length < ELF_HEADER || dv.getUint32(0, false) !== 0x7f454c46 || elf[4] !== 1 || elf[5] !== 1 || dv.getUint16(18, true) !== 3) {
    throw new LinuxBootError('the decompressed kernel is not a 32-bit little-endian x86 ELF file');
  }
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  const segs: ElfLoad[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + ELF_PHDR > elf.length) throw new LinuxBootError('the kernel ELF file is truncated (program headers)');
    if (dv.getUint32(o, true) !== 1) continue; // PT_LOAD
    const seg = { off: dv.getUint32(o + 4, true), paddr: dv.getUint32(o + 12, true), filesz: dv.getUint32(o + 16, true), memsz: dv.getUint32(o + 20, true) };
    if (seg.off + seg.filesz > size) throw new LinuxBootError('the kernel ELF file is truncated (segment data)');
    segs.push(seg);
  }
  if (segs.length === 0) throw new LinuxBootError('the kernel ELF file has nothing to load');
  return { entry, segs };
}

function checkSegment(g: ElfLoad, ram: number): void {
  if (g.paddr + g.memsz > ram) throw new LinuxBootError(`the kernel needs RAM up to ${Math.ceil((g.paddr + g.memsz) / 1048576)} MiB; give the machine more RAM`);
}
