/** Host entropy for virtio-rng: the operating system's generator (getrandom(2) through Node's crypto). */
import { randomFillSync } from 'node:crypto';
import type { EntropySource } from '../../devices/backends.js';

export class HostEntropy implements EntropySource {
  fill(dst: Uint8Array): void {
    randomFillSync(dst);
  }
}
