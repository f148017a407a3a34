/**
 * virtio-rng, the entropy device (virtio 1.0, 5.4): one request queue whose
 * writable buffers the device fills with bytes from the host's entropy
 * source. Linux exposes it as /dev/hwrng.
 */
import type { EntropySource } from '../backends.js';
import { VirtioId, type VirtioDevice, type VirtioHost } from './device.js';
import { Chain } from './queue.js';

/** The most bytes given per request: a bound on host work per guest request. */
const MAX_PER_REQUEST = 64 * 1024;

export class VirtioRng implements VirtioDevice {
  readonly type = VirtioId.ENTROPY;
  readonly queueCount = 1;
  readonly features: readonly [number, number] = [0, 0];
  readonly config = new Uint8Array(0);
  private _host!: VirtioHost;
  private readonly _chain = new Chain();
  private readonly _buf = new Uint8Array(MAX_PER_REQUEST);

  constructor(
    readonly id: string,
    private readonly _source: EntropySource,
  ) {}

  attach(host: VirtioHost): void {
    this._host = host;
  }

  notify(q: number): void {
    const h = this._host;
    const queue = h.queues[q];
    const c = this._chain;
    while (queue.pop(h.ram, c)) {
      const n = Math.min(c.writeBytes, MAX_PER_REQUEST);
      const bytes = this._buf.subarray(0, n);
      this._source.fill(bytes);
      queue.push(h.ram, c.head, c.write(h.ram, 0, bytes));
    }
    h.used(queue);
  }

  reset(): void {}

  /** No state of its own: a request is filled within its notification. */
  readonly stateFields = {};
  readonly stateTransient = ['_source', '_chain', '_buf'];
}
