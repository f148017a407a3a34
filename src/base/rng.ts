/**
 * A small seeded pseudo-random generator (Tommy Ettinger's mulberry32), for
 * tests and benches that need the same "random" data on every run: fast,
 * 32 bits of state, good enough to scatter offsets and fill buffers. Not for
 * anything that needs unpredictability.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
