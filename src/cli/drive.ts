/**
 * QEMU's -drive option, as far as tsvm's PC has drives: IDE only, index 0 and 1
 * the disks on the primary channel (-hda, -hdb), index 2 the CD-ROM drive on
 * the secondary master (-cdrom).
 *
 *   -drive file=PATH[,format=qcow2|raw][,if=ide][,index=N][,media=disk|cdrom][,snapshot=on|off][,readonly=on|off]
 */
import { UsageError } from './options.js';
import { onOff, splitQemuList } from './qemuopts.js';

export type DriveSlot = 'hda' | 'hdb' | 'cdrom';

export interface DriveSpec {
  file: string;
  format?: 'raw' | 'qcow2';
  slot: DriveSlot;
  media: 'disk' | 'cdrom';
  snapshot: boolean;
  readonly: boolean;
}

const SLOTS: DriveSlot[] = ['hda', 'hdb', 'cdrom'];

/**
 * Parse the -drive values in order and give each a slot; `taken` holds the
 * slots -hda/-hdb/-cdrom already fill. Drives without index= take the first
 * free disk slot (hda, hdb), or the CD-ROM slot for media=cdrom, as QEMU does.
 */
export function parseDrives(specs: string[], taken: Set<DriveSlot>): DriveSpec[] {
  const used = new Set(taken);
  const out: DriveSpec[] = [];
  for (const spec of specs) {
    const kv = new Map<string, string>();
    for (const part of splitQemuList(spec)) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      // QEMU takes a bare first item as the file name
      const [k, v] = eq < 0 ? (kv.size === 0 ? ['file', part] : [part, '']) : [part.slice(0, eq), part.slice(eq + 1)];
      if (kv.has(k)) throw new UsageError(`run: -drive ${spec}: ${k}= is given twice`);
      kv.set(k, v);
    }
    for (const k of kv.keys()) {
      if (!['file', 'format', 'if', 'index', 'media', 'snapshot', 'readonly'].includes(k)) {
        throw new UsageError(`run: -drive ${spec}: tsvm does not know the '${k}' property; it takes file, format, if, index, media, snapshot and readonly`);
      }
    }
    const file = kv.get('file');
    if (!file) throw new UsageError(`run: -drive ${spec}: file=PATH is needed`);
    const format = kv.get('format');
    if (format !== undefined && format !== 'raw' && format !== 'qcow2') {
      throw new UsageError(`run: -drive format=${format} is not supported; tsvm reads raw and qcow2 (convert with qemu-img convert -O qcow2)`);
    }
    const iface = kv.get('if') ?? 'ide';
    // virtio-blk drives (if=virtio, or if=none for -device virtio-blk-pci) are cli/virtio.ts's
    if (iface === 'virtio' || iface === 'none') continue;
    if (iface !== 'ide') throw new UsageError(`run: -drive if=${iface} is not supported; tsvm has if=ide and if=virtio`);
    const media = kv.get('media') ?? 'disk';
    if (media !== 'disk' && media !== 'cdrom') throw new UsageError(`run: -drive media=${media}: use disk or cdrom`);
    let slot: DriveSlot | undefined;
    const idx = kv.get('index');
    if (idx !== undefined) {
      const n = Number(idx);
      if (!/^\d+$/.test(idx) || n > 3) throw new UsageError(`run: -drive index=${idx}: IDE has indexes 0 to 3`);
      if (n === 3) throw new UsageError(`run: -drive index=3: tsvm's PC has no drive on the secondary slave; use index 0 or 1 for disks and 2 for the CD-ROM`);
      slot = SLOTS[n];
    } else {
      slot = media === 'cdrom' ? 'cdrom' : SLOTS.slice(0, 2).find((s) => !used.has(s));
      if (!slot) throw new UsageError(`run: -drive ${spec}: both disk slots (index 0 and 1) are already in use`);
    }
    if (slot === 'cdrom' && media !== 'cdrom') throw new UsageError(`run: -drive index=2 is the CD-ROM drive in tsvm's PC; add media=cdrom, or use index 0 or 1 for a disk`);
    if (slot !== 'cdrom' && media === 'cdrom') throw new UsageError(`run: -drive media=cdrom: tsvm's CD-ROM drive is index 2 (the secondary master)`);
    if (used.has(slot)) throw new UsageError(`run: -drive ${spec}: index ${SLOTS.indexOf(slot)} (-${slot}) is already in use`);
    used.add(slot);
    out.push({
      file,
      format,
      slot,
      media,
      snapshot: onOff(kv.get('snapshot'), `-drive ${spec} snapshot`),
      readonly: onOff(kv.get('readonly'), `-drive ${spec} readonly`),
    });
  }
  return out;
}
