/**
 * The POST diagnostic port (0x80): firmware writes progress codes there.
 * Each byte is reported to the host as a two-digit hex line. Reads return the
 * last code written (as on boards with a POST card latch).
 */
import type { IoPorts } from '../bus/ports.js';
import type { CharSink } from './backends.js';
import { defineState, loadChecked, saveFields, u8 } from '../state/schema.js';

export class PostCodePort {
  /** The latched code. */
  static readonly stateSchema = defineState<PostCodePort>('post', 1, { last: u8 }, { transient: ['_sink'] });
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
    return saveFields(PostCodePort.stateSchema.fields, this) as { last: number };
  }
  loadState(s: { last: number }): void {
    loadChecked(this.id, PostCodePort.stateSchema, this, s);
  }
}
