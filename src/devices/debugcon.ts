/**
 * The Bochs/QEMU debug console: a byte written to its port (0xE9 by default,
 * 0x402 for SeaBIOS) goes to a host sink. Reading the port returns 0xE9, which
 * is how firmware detects it.
 */
import type { IoPorts } from '../bus/ports.js';
import type { CharSink } from './backends.js';

export const DEBUGCON_READBACK = 0xe9;

export class DebugCon {
  readonly id: string;
  private readonly _sink: CharSink;

  constructor(id: string, ports: IoPorts, port: number, sink: CharSink) {
    this.id = id;
    this._sink = sink;
    ports.register(id, port, 1, {
      read8: () => DEBUGCON_READBACK,
      write8: (_p, v) => this._sink.write(v & 0xff),
    });
  }

  reset(): void {}

  /** No guest-visible state: the port only forwards bytes. */
  saveState(): Record<string, never> {
    return {};
  }
  loadState(_s: Record<string, never>): void {}
}
