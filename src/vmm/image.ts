/**
 * The default guest: Debian's i386 kernel (linux-image-686, non-PAE) and its
 * modules plus busybox-static:i386, fetched with the ordinary apt-get client
 * and packed into an initramfs whose init mounts /proc, /sys and /dev, installs
 * busybox's applet links, loads the modules for the devices tsvm offers, sets
 * the hostname and gives a busybox shell on the serial console. Built once into
 * the user's cache directory and reused (`tsvm image build` rebuilds it).
 *
 * The build never executes anything from the packages: they are i386 binaries,
 * and the host may be x86-64 without 32-bit support, or arm64. It only reads
 * their files (unpacked by dpkg-deb, with every execute bit removed); whatever
 * needs busybox itself (the applet links) is done by the guest at boot.
 * docs/guest.md lists the host programs the build runs and why each is safe.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpioMode, writeCpio, type CpioEntry } from './cpio.js';

export class ImageError extends Error {}

export interface DefaultImage {
  dir: string;
  kernel: string;
  /** The same kernel decompressed once at build time. */
  vmlinux: string;
  initrd: string;
  cmdline: string;
  kernelVersion: string;
}

/**
 * Modules the init loads, for the devices tsvm emulates (dependencies are added automatically).
 * crc32c_generic: ext4 asks the crypto API for crc32c at every mount (no modinfo dependency
 * says so), and refuses to mount without it. button and evdev: the ACPI power button as an
 * input device, which busybox acpid reads (so the guest powers off when the button is pressed).
 */
export const GUEST_MODULES = [
  'ata_piix', 'ata_generic', 'sd_mod', 'sr_mod', 'isofs', 'crc32c_generic', 'ext4',
  'virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtio_rng', '9p', '9pnet_virtio',
  'e1000', 'ne2k-pci', 'af_packet',
  'button', 'evdev',
];
/**
 * The default guest's kernel command line. pci=noacpi: the ACPI tables tsvm
 * writes for direct boot describe power management only (no PCI root bridge
 * in the DSDT), so Linux should find PCI devices by scanning the bus itself.
 * cryptomgr.notests: Debian's kernel self-tests every crypto algorithm at
 * boot, including RSA with large keys, which costs an interpreter tens of
 * seconds; the algorithms themselves are unchanged.
 * console=tty0 console=ttyS0: kernel messages on the VGA text console too
 * (the board sets text mode 03h for a direct boot), while the last one,
 * ttyS0, stays /dev/console: init's shell and messages are on the serial port.
 */
export const DEFAULT_CMDLINE = 'console=tty0 console=ttyS0 panic=-1 pci=noacpi cryptomgr.notests';
export const GUEST_HOSTNAME = 'tsvm';
/**
 * Bumped when the image's layout changes. Each format has its own cache folder,
 * so two tsvm versions on one machine do not rebuild each other's image.
 */
export const IMAGE_FORMAT = 8;

export function cacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'tsvm');
}

export function defaultImageDir(): string {
  return join(cacheDir(), 'images', `default-v${IMAGE_FORMAT}`);
}

/** The cached default image, or null if it has not been built. */
export function findDefaultImage(): DefaultImage | null {
  const dir = defaultImageDir();
  const info = join(dir, 'image.json');
  if (!existsSync(info)) return null;
  try {
    const j = JSON.parse(readFileSync(info, 'utf8')) as { kernelVersion: string; cmdline: string; format?: number };
    if (j.format !== IMAGE_FORMAT) return null; // built by an older tsvm: rebuild
    const img = { dir, kernel: join(dir, 'bzImage'), vmlinux: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.img'), cmdline: DEFAULT_CMDLINE, kernelVersion: j.kernelVersion };
    if (!existsSync(img.kernel) || !existsSync(img.initrd) || !existsSync(img.vmlinux)) return null;
    return img;
  } catch {
    return null;
  }
}

export type Progress = (message: string) => void;

/**
 * The vmlinux ELF inside a bzImage: the payload (boot protocol 2.08+
 * payload_offset/payload_length) is xz-compressed on Debian's kernels.
 */
export function extractVmlinux(bz: Buffer, work: string): Buffer {
  const setupSects = bz[0x1f1] || 4;
  const pm = (setupSects + 1) * 512;
  const payloadOff = bz.readUInt32LE(0x248);
  const payloadLen = bz.readUInt32LE(0x24c);
  const payload = bz.subarray(pm + payloadOff, pm + payloadOff + payloadLen);
  if (!(payload[0] === 0xfd && payload.subarray(1, 6).toString('latin1') === '7zXZ\0')) {
    throw new ImageError('the kernel payload is not xz-compressed; tsvm expects Debian\'s xz-compressed kernels');
  }
  const xzFile = join(work, 'payload.xz');
  writeFileSync(xzFile, payload);
  const r = spawnSync('xz', ['-dc', '--single-stream', xzFile], { maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new ImageError(`cannot run xz to decompress the kernel (${r.error.message}); install it with: sudo apt-get install xz-utils`);
  if (r.status !== 0) throw new ImageError(`xz could not decompress the kernel: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

function run(cmd: string, args: string[], what: string, cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new ImageError(`${what}: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new ImageError(`${what} failed (${cmd} ${args.join(' ')}):\n${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/**
 * apt-get update, where a failure is not the end: apt exits non-zero when any one
 * source fails to download (a flaky mirror, an unrelated third-party repository),
 * yet the lists it did fetch are in place. Go on with what is there; if the i386
 * packages are still missing, the lookup that follows says so and what to do.
 */
function aptUpdate(progress: Progress): void {
  const r = spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new ImageError(`apt-get update: cannot run apt-get: ${r.error.message}`);
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join('\n  ');
    progress(`apt-get update did not fetch every package list (exit ${r.status}); going on with the lists it has:\n  ${why}`);
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Make sure apt-get exists and the i386 architecture is enabled (enabling it when root). */
function checkApt(progress: Progress): void {
  if (spawnSync('apt-get', ['--version']).error) {
    throw new ImageError(
      'apt-get is not available: tsvm builds its default guest from Debian packages with apt-get.\n' +
        'Run tsvm on Debian (or a Debian-based system), or pass your own kernel and initrd with -kernel and -initrd.',
    );
  }
  const archs = run('dpkg', ['--print-foreign-architectures'], 'checking dpkg architectures').split(/\s+/);
  const native = run('dpkg', ['--print-architecture'], 'checking dpkg architecture').trim();
  if (native === 'i386' || archs.includes('i386')) return;
  if (!isRoot()) {
    throw new ImageError(
      'the i386 architecture is not enabled in dpkg, and tsvm needs i386 packages for its guest.\n' +
        'Enable it with:\n  sudo dpkg --add-architecture i386\n  sudo apt-get update\nthen run the command again.',
    );
  }
  progress('enabling the i386 architecture (dpkg --add-architecture i386; apt-get update)');
  run('dpkg', ['--add-architecture', 'i386'], 'enabling i386');
  aptUpdate(progress);
}

/** The versioned kernel package behind the linux-image-686 metapackage. */
function kernelPackage(progress: Progress): string {
  const find = () => {
    const r = spawnSync('apt-cache', ['depends', 'linux-image-686:i386'], { encoding: 'utf8' });
    const m = /Depends:\s*(linux-image-[0-9][^\s:]*-686)/.exec(r.stdout ?? '');
    return m ? m[1] : null;
  };
  let pkg = find();
  if (!pkg && isRoot()) {
    progress('refreshing the package lists (apt-get update)');
    aptUpdate(progress);
    pkg = find();
  }
  if (!pkg) {
    throw new ImageError(
      'apt cannot find linux-image-686:i386. Refresh the package lists (sudo apt-get update) and check that the i386 architecture is enabled.',
    );
  }
  return pkg;
}

/** Dependencies of a module, read from its .modinfo "depends=" string. */
function moduleDeps(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const i = ko.indexOf(key);
  if (i < 0) return [];
  const end = ko.indexOf(0, i + key.length);
  const list = ko.subarray(i + key.length, end).toString('ascii');
  return list ? list.split(',') : [];
}

/** The marker the kernel's sign-file appends after a module's signature. */
const SIG_MAGIC = Buffer.from('~Module signature appended~\n');
/** Bytes of struct module_signature, between the signature and the marker (its last field is the signature's length, big-endian). */
const SIG_INFO = 12;

/**
 * A module without its appended signature (Debian signs every module with
 * RSA-4096); an unsigned module comes back as it is. Checking the
 * signatures of the default guest's 38 modules took 1.15 G guest
 * instructions of the boot's 4.0 G (the kernel's generic multi-precision
 * arithmetic, mpihelp_*); without them the kernel loads them all the same
 * (Debian's kernel does not enforce signatures) and says once
 * "module verification failed: signature and/or required key missing -
 * tainting kernel" (taint flag E). docs/guest.md, "Module signatures".
 */
export function stripModuleSignature(ko: Buffer): Buffer {
  if (ko.length < SIG_MAGIC.length + SIG_INFO || !ko.subarray(ko.length - SIG_MAGIC.length).equals(SIG_MAGIC)) return ko;
  const info = ko.length - SIG_MAGIC.length - SIG_INFO;
  const sigLen = ko.readUInt32BE(info + 8);
  if (sigLen > info) return ko; // not a signature this function understands: leave the module whole
  return ko.subarray(0, info - sigLen);
}

/** Index every module file by its name (dashes and underscores are the same to the kernel). */
function indexModules(root: string): Map<string, string> {
  const idx = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ko')) idx.set(n.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(root);
  return idx;
}

/**
 * Remove every execute bit under `root`: the unpacked packages are data to this
 * build, and a file that cannot be executed cannot be run by mistake.
 */
function stripExecBits(root: string): void {
  for (const n of readdirSync(root)) {
    const p = join(root, n);
    const st = lstatSync(p);
    if (st.isDirectory()) stripExecBits(p);
    else if (st.isFile() && (st.mode & 0o111) !== 0) chmodSync(p, st.mode & 0o7666);
  }
}

const INITTAB = `::sysinit:/etc/rc
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
`;

/** Where the default guest mounts its data disk (the first virtio disk). */
export const DATA_MOUNT = '/data';

/**
 * The data disk: the first virtio disk, /dev/vda (a created VM's disks/vda.qcow2,
 * or 'tsvm run -drive file=X,if=virtio'), mounted on /data. A blank disk (its
 * first 64 KiB all zero: a new qcow2 or a fresh sparse file) gets an ext2 file
 * system first, made by the guest's busybox mke2fs; a disk holding anything
 * else that does not mount (a partition table, another file system) is left
 * untouched, so no data is ever formatted away. A read-only disk is mounted
 * read-only and never formatted.
 */
const DATA_DISK_RC = `if [ -b /dev/vda ]; then
  mkdir -p ${DATA_MOUNT}
  if [ "$(cat /sys/block/vda/ro)" = 1 ]; then dataopt=ro; else dataopt=rw; fi
  if mount -o $dataopt /dev/vda ${DATA_MOUNT} 2>/dev/null; then
    echo "data disk: /dev/vda mounted on ${DATA_MOUNT} ($dataopt)"
  elif [ $dataopt = rw ] && [ -z "$(dd if=/dev/vda bs=65536 count=1 2>/dev/null | tr -d '\\000')" ]; then
    echo "data disk: /dev/vda is blank; making an ext2 file system on it"
    if mke2fs -q -L data /dev/vda && mount /dev/vda ${DATA_MOUNT}; then echo "data disk: /dev/vda mounted on ${DATA_MOUNT} (new file system)"; else echo "data disk: could not make a file system on /dev/vda"; fi
  else
    echo "data disk: /dev/vda holds no file system this guest mounts and is not blank; left as it is (mount it yourself)"
  fi
fi`;

export function rcScript(modules: string[]): string {
  return `#!/bin/sh
# tsvm default guest: early set-up (run by busybox init)
/bin/busybox mount -t proc proc /proc
# the applet links (busybox finds itself through /proc/self/exe)
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /root
mount -t devpts devpts /dev/pts
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko 2>/dev/null; done
hostname ${GUEST_HOSTNAME}
# the ACPI power button (tsvm stop --acpi, the daemon's power off, QMP system_powerdown): a clean power-off
mkdir -p /var/log /var/run
acpid -l /var/log/acpid.log
ifconfig lo 127.0.0.1 up
# a NIC (tsvm run -nic user): its address, route and DNS server by DHCP; no NIC, no wait
if [ -e /sys/class/net/eth0 ]; then udhcpc -i eth0 -s /etc/udhcpc.script -q -n -t 5 -T 1 >/dev/null 2>&1 || echo "network: no DHCP answer on eth0"; fi
${DATA_DISK_RC}
echo "tsvm default guest ready: Linux $(uname -r), busybox $(busybox | head -1 | cut -d' ' -f2)"
`;
}

/** udhcpc's event script: configure the interface from the lease (busybox ships none). */
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
deconfig) ifconfig "$interface" 0.0.0.0 up ;;
bound|renew)
  ifconfig "$interface" "$ip" netmask "\${subnet:-255.255.255.0}" up
  while route del default dev "$interface" 2>/dev/null; do :; done
  for r in $router; do route add default gw "$r" dev "$interface"; done
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  echo "network: $interface $ip via $router, DNS $dns" > /dev/console
  ;;
esac
`;

/** What the guest does when its ACPI power button is pressed (busybox acpid runs it). */
export const POWER_BUTTON_SCRIPT = `#!/bin/sh
echo "power button pressed: powering off" > /dev/console
poweroff
`;

const PROFILE = `export PS1='\\h:\\w\\$ '
export HOME=/root
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
cd /root
`;

/**
 * Build the default image into the cache (replacing any previous one only
 * when the new one is complete). Progress messages go to `progress`.
 */
export function buildDefaultImage(progress: Progress): DefaultImage {
  checkApt(progress);
  const kpkg = kernelPackage(progress);
  const work = mkdtempSync(join(tmpdir(), 'tsvm-image-'));
  try {
    progress(`downloading ${kpkg}:i386 and busybox-static:i386 with apt-get`);
    run('apt-get', ['download', '-q', `${kpkg}:i386`, 'busybox-static:i386'], 'apt-get download', work);
    const debs = readdirSync(work).filter((n) => n.endsWith('.deb'));
    const kdeb = debs.find((n) => n.startsWith('linux-image-'));
    const bdeb = debs.find((n) => n.startsWith('busybox-static'));
    if (!kdeb || !bdeb) throw new ImageError(`apt-get download did not produce both packages (got: ${debs.join(', ') || 'nothing'})`);
    progress('unpacking the packages');
    run('dpkg-deb', ['-x', join(work, kdeb), join(work, 'k')], 'unpacking the kernel');
    run('dpkg-deb', ['-x', join(work, bdeb), join(work, 'b')], 'unpacking busybox');
    stripExecBits(join(work, 'k'));
    stripExecBits(join(work, 'b'));
    const bootDir = join(work, 'k', 'boot');
    const vmlinuz = readdirSync(bootDir).find((n) => n.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new ImageError(`the kernel package ${kdeb} holds no /boot/vmlinuz-*`);
    const kver = vmlinuz.slice('vmlinuz-'.length);
    const modRoot = join(work, 'k', 'lib', 'modules', kver);

    progress('building the initramfs');
    const idx = indexModules(modRoot);
    const order: string[] = [];
    const seen = new Set<string>();
    const visit = (name: string) => {
      const key = name.replace(/-/g, '_');
      if (seen.has(key)) return;
      seen.add(key);
      const p = idx.get(key);
      if (!p) return; // built into the kernel, or not in this kernel
      for (const d of moduleDeps(readFileSync(p))) if (d) visit(d);
      order.push(key);
    };
    for (const m of GUEST_MODULES) visit(m);

    const entries: CpioEntry[] = [];
    const dir = (name: string) => entries.push({ name, mode: CpioMode.DIR | 0o755 });
    const file = (name: string, data: Uint8Array, perm = 0o644) => entries.push({ name, mode: CpioMode.FILE | perm, data });
    for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'lib', 'lib/modules']) dir(d);
    entries.push({ name: 'dev/console', mode: CpioMode.CHAR | 0o600, rdevMajor: 5, rdevMinor: 1 });
    file('bin/busybox', readFileSync(join(work, 'b', 'bin', 'busybox')), 0o755);
    // the shell that runs /etc/rc; the init script makes the other applet links at boot
    entries.push({ name: 'bin/sh', mode: CpioMode.SYMLINK | 0o777, data: Buffer.from('busybox') });
    entries.push({ name: 'init', mode: CpioMode.SYMLINK | 0o777, data: Buffer.from('bin/busybox') });
    file('etc/inittab', Buffer.from(INITTAB));
    file('etc/rc', Buffer.from(rcScript(order)), 0o755);
    file('etc/profile', Buffer.from(PROFILE));
    file('etc/udhcpc.script', Buffer.from(UDHCPC_SCRIPT), 0o755);
    // busybox acpid runs /etc/acpi/<event>/<code> for each event: the power button's is PWRF/00000080
    for (const d of ['etc/acpi', 'etc/acpi/PWRF']) dir(d);
    file('etc/acpi/PWRF/00000080', Buffer.from(POWER_BUTTON_SCRIPT), 0o755);
    file('etc/hostname', Buffer.from(GUEST_HOSTNAME + '\n'));
    file('etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\n'));
    file('etc/group', Buffer.from('root:x:0:\n'));
    for (const m of order) file(`lib/modules/${m}.ko`, stripModuleSignature(readFileSync(idx.get(m) as string)));
    // Left uncompressed: the kernel then copies it instead of inflating it, which
    // costs hundreds of millions of guest instructions in an emulator.
    const initrd = writeCpio(entries);

    const out = defaultImageDir();
    const tmpOut = `${out}.new-${process.pid}`;
    rmSync(tmpOut, { recursive: true, force: true });
    mkdirSync(tmpOut, { recursive: true });
    const bz = readFileSync(join(bootDir, vmlinuz));
    writeFileSync(join(tmpOut, 'bzImage'), bz);
    progress('decompressing the kernel once (so each boot skips the decompressor)');
    writeFileSync(join(tmpOut, 'vmlinux'), extractVmlinux(bz, work));
    writeFileSync(join(tmpOut, 'initrd.img'), initrd);
    const info = { format: IMAGE_FORMAT, kernelVersion: kver, kernelPackage: kpkg, cmdline: DEFAULT_CMDLINE, modules: order, builtAt: new Date().toISOString() };
    writeFileSync(join(tmpOut, 'image.json'), JSON.stringify(info, null, 2) + '\n');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(join(out, '..'), { recursive: true });
    renameSync(tmpOut, out);
    progress(`default image ready: Linux ${kver}, ${order.length} modules, initrd ${(initrd.length / 1048576).toFixed(1)} MiB (uncompressed cpio)`);
    return findDefaultImage() as DefaultImage;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}


