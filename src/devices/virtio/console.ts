/**
 * virtio-console (virtio 1.0, 5.3), one port without MULTIPORT: queue 0
 * (receiveq) carries host input into buffers the driver posts, queue 1
 * (transmitq) carries guest output to the host. Linux names it /dev/hvc0,
 * a console beside the UART's ttyS0.
 *
 * Host input waits in a bounded buffer (part of the device state) until the
 * driver has posted receive buffers; past the bound it is dropped, as a
 * full UART FIFO drops characters.
 */
import type { CharBackend } from '../backends.js';
import { put16, VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain } from './queue.js';
import { u8s } from '../../state/schema.js';

const RX = 0;
const TX = 1;
/** Host input held while the guest has no receive buffers. */
export const CONSOLE_INPUT_MAX = 64 * 1024;
/** The most bytes taken from one transmit chain (a bound on host work per request). */
const TX_MAX = 1024 * 1024;

export class VirtioConsole implements VirtioDevice {
  readonly type = VirtioId.CONSOLE;
  readonly queueCount = 2;
  readonly features: readonly [number, number] = [0, 0];
  /** cols, rows, max_nr_ports, emerg_wr */
  readonly config = new Uint8Array(12);
  /** Host input bytes dropped because the buffer was full. */
  dropped = 0;
  private _host!: VirtioHost;
  private readonly _chain = new Chain();
  private _pending = new Uint8Array(0);

  constructor(
    readonly id: string,
    private readonly _out: CharBackend,
  ) {
    put16(this.config, 0, 80);
    put16(this.config, 2, 25);
  }

  attach(host: VirtioHost): void {
    this._host = host;
  }

  /** Host input for the guest (call between slices). */
  receive(data: Uint8Array): void {
    const room = CONSOLE_INPUT_MAX - this._pending.length;
    const take = Math.min(room, data.length);
    this.dropped += data.length - take;
    if (take > 0) {
      const p = new Uint8Array(this._pending.length + take);
      p.set(this._pending);
      p.set(data.subarray(0, take), this._pending.length);
      this._pending = p;
    }
    if (this._host.live) this._host.guarded(() => this._fillRx());
  }

  private _fillRx(): void {
    const h = this._host;
    const q = h.queues[RX];
    const c = this._chain;
    let any = false;
    while (this._pending.length > 0 && q.pop(h.ram, c)) {
      const n = c.write(h.ram, 0, this._pending);
      this._pending = this._pending.slice(n);
      q.push(h.ram, c.head, n);
      any = true;
    }
    if (any) h.used(q);
  }

  notify(q: number): void {
    if (q === RX) {
      this._fillRx();
      return;
    }
    const h = this._host;
    const queue = h.queues[TX];
    const c = this._chain;
    let any = false;
    while (queue.pop(h.ram, c)) {
      this._out.write(c.readAll(h.ram, TX_MAX));
      queue.push(h.ram, c.head, 0);
      any = true;
    }
    if (any) h.used(queue);
  }

  reset(): void {
    this._pending = new Uint8Array(0);
  }

  /** Host input the guest has not taken yet. */
  readonly stateFields = { pending: u8s(CONSOLE_INPUT_MAX).upTo().at('_pending') };
  /** The count of dropped input is a diagnostic of this run. */
  readonly stateTransient = ['dropped', '_out', '_chain'];
}
