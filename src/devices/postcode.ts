/**
 * The POST diagnostic port (0x80): firmware writes progress codes there.
 * Each byte is reported to the host as a two-digit hex line. Reads return the
 * last code written (as on boards with a POST card latch).
 */
import type { IoPorts } from '../bus/ports.js';
import type { CharSink } from './backends.js';

export class PostCodePort {
  readonly id: string;
  last = 0;
  private readonly _sink: CharSink | null;

  constructor(id: string, ports: IoPorts, sink: CharSink | null) {
    this.id = id;
    this._sink = sink;
    ports.register(id, 0x80, 1, {
      read8: () => this.last,
      write8: (_p, v) => {
        this.last = v & 0xff;
        if (this._sink) {
          const text = this.last.toString(16).toUpperCase().padStart(2, '0') + '\n';
          for (let i = 0; i < text.length; i++) this._sink.write(text.charCodeAt(i));
        }
      },
    });
  }

  reset(): void {
    this.last = 0;
  }

  saveState(): { last: number } {
    return { last: this.last };
  }
  loadState(s: { last: number }): void {
    this.last = s.last & 0xff;
  }
}
