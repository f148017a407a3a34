/**
 * PIIX3 IDE controller: two ATA channels at their compatibility addresses
 * (primary 1F0h-1F7h + 3F6h on IRQ 14, secondary 170h-177h + 376h on IRQ 15)
 * with up to two devices each (hard disks or ATAPI CD/DVD drives), and the
 * 16-byte bus-master block that the PCI function's BAR 4 places in I/O space.
 *
 * References: Intel 82371FB/82371SB (PIIX/PIIX3) datasheet, section 2.7 (IDE
 * interface, BMIBA, BMICx, BMISx, BMIDTPx); ATA/ATAPI-6; SFF-8038i. The PCI
 * configuration space lives in src/devices/pci/piix3.ts (Piix3Ide); the board
 * calls setBusMasterBase() when the guest moves BAR 4.
 *
 * Not modelled: IDETIM/SIDETIM timings and the decode-enable bit (channels
 * always decode, as in QEMU), native-PCI mode, overlapped/queued commands,
 * SMART, security, HPA, 8-bit data transfers.
 */
import type { DmaView } from '../../bus/dma.js';
import type { IrqLine } from '../../bus/irq.js';
import type { IoPorts } from '../../bus/ports.js';
import type { Clock } from '../../time/clock.js';
import { StateError, type StateObject } from '../../state/state.js';
import { defineState, loadChecked, saveFields, struct } from '../../state/schema.js';
import type { BlockBackend } from '../backends.js';
import { IdeChannel, type IdeChannelState } from './channel.js';
import type { IdeDriveSpec } from './drive.js';

export type { IdeDriveSpec } from './drive.js';

/** Compatibility-mode addresses of the two channels. */
export const IDE_PRIMARY_CMD = 0x1f0;
export const IDE_PRIMARY_CTL = 0x3f6;
export const IDE_SECONDARY_CMD = 0x170;
export const IDE_SECONDARY_CTL = 0x376;
/** Size of the bus-master register block (8 bytes per channel). */
export const BM_BLOCK_BYTES = 16;
const BM_CHANNEL_BYTES = 8;

/** What the board gives the controller. */
export interface IdeControllerDeps {
  ports: IoPorts;
  clock: Clock;
  /** INTRQ of the primary and secondary channel (IRQ 14 and 15 in compatibility mode). */
  irqs: readonly [IrqLine, IrqLine];
  /** Guest memory as the bus master sees it. */
  dma: DmaView;
  /** Drives by position: primary master, primary slave, secondary master, secondary slave. */
  drives: readonly (IdeDriveSpec | null | undefined)[];
}

/** The controller's saved state. */
export interface IdeControllerState {
  primary: IdeChannelState;
  secondary: IdeChannelState;
}

export class IdeController {
  /**
   * Both channels (IdeChannel.stateFields). A state is refused if a drive
   * position holds another kind of drive than the board configured; the
   * bus-master block's place comes from the PIIX3 IDE function's BAR 4.
   */
  static readonly stateSchema = defineState<IdeController>(
    'ide',
    1,
    { primary: struct(IdeChannel.stateFields).at('channels.0'), secondary: struct(IdeChannel.stateFields).at('channels.1') },
    {
      transient: ['_ports', '_bmOwner', '_bmBase', ...['channels.0.', 'channels.1.'].flatMap((c) => IdeChannel.stateTransient.map((k) => c + k))],
      check: (ide, s, where) => {
        (['primary', 'secondary'] as const).forEach((name, c) =>
          (['drive0', 'drive1'] as const).forEach((dn, i) => {
            const kind = ((s[name] as StateObject)[dn] as StateObject).kind;
            const want = ide.channels[c].drives[i].kind;
            if (kind !== want) throw new StateError(`${where}.${name}.${dn}: the state is of a drive of kind ${String(kind)}; this position holds kind ${want}`);
          }),
        );
      },
      postLoad: (ide) => ide.channels.forEach((ch) => IdeChannel.loaded(ch)),
    },
  );
  readonly channels: readonly [IdeChannel, IdeChannel];
  private readonly _ports: IoPorts;
  private readonly _bmOwner: string;
  private _bmBase = -1;

  constructor(
    readonly id: string,
    deps: IdeControllerDeps,
  ) {
    this._ports = deps.ports;
    this._bmOwner = `${id}.bm`;
    const spec = (i: number) => deps.drives[i] ?? null;
    this.channels = [
      new IdeChannel(`${id}.primary`, id, IDE_PRIMARY_CMD, IDE_PRIMARY_CTL,
        { ports: deps.ports, clock: deps.clock, irq: deps.irqs[0], dma: deps.dma }, [spec(0), spec(1)], 1),
      new IdeChannel(`${id}.secondary`, id, IDE_SECONDARY_CMD, IDE_SECONDARY_CTL,
        { ports: deps.ports, clock: deps.clock, irq: deps.irqs[1], dma: deps.dma }, [spec(2), spec(3)], 3),
    ];
  }

  /** Where the bus-master block currently is, or -1 when it is not mapped. */
  get busMasterBase(): number {
    return this._bmBase;
  }

  /**
   * Move the bus-master block to I/O port `port` (BAR 4 programmed and I/O
   * decoding on), or unmap it with a negative value. A block that would overlap
   * another device's ports stays unmapped (a guest programming error).
   */
  setBusMasterBase(port: number): void {
    if (port === this._bmBase) return;
    if (this._bmBase >= 0) this._ports.unregister(this._bmOwner, this._bmBase, BM_BLOCK_BYTES);
    this._bmBase = -1;
    if (port < 0 || !Number.isInteger(port) || !this._ports.isFree(this._bmOwner, port, BM_BLOCK_BYTES)) return;
    this._bmBase = port;
    this._ports.register(this._bmOwner, port, BM_BLOCK_BYTES, {
      read8: (p) => {
        const off = p - this._bmBase;
        return this.channels[off >= BM_CHANNEL_BYTES ? 1 : 0].bm.read8(off & (BM_CHANNEL_BYTES - 1));
      },
      write8: (p, v) => {
        const off = p - this._bmBase;
        this.channels[off >= BM_CHANNEL_BYTES ? 1 : 0].bm.write8(off & (BM_CHANNEL_BYTES - 1), v & 0xff);
      },
    });
  }

  /**
   * Insert (`backend`) or remove (null) the medium of the CD drive at `drive`
   * (0-3, as in `drives`). The guest sees UNIT ATTENTION and a media event.
   * False when that position is not a CD drive.
   */
  changeMedium(drive: number, backend: BlockBackend | null): boolean {
    if (!Number.isInteger(drive) || drive < 0 || drive > 3) return false;
    return this.channels[drive >> 1].changeMedium(drive & 1, backend);
  }

  /** Hardware reset (PCI RST#): drives to power-on state, bus masters stopped. */
  reset(): void {
    for (const c of this.channels) c.reset();
  }

  saveState(): IdeControllerState {
    return saveFields(IdeController.stateSchema.fields, this) as unknown as IdeControllerState;
  }

  /** Both channels are validated before either changes. */
  loadState(s: IdeControllerState): void {
    loadChecked(this.id, IdeController.stateSchema, this, s);
  }
}
