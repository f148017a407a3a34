/**
 * A seeded xorshift32 generator for the fuzz and kill tests: `rnd(n)` is a
 * whole number in [0, n), the same sequence for the same seed on every host,
 * so a failing case can be replayed.
 */
export function seeded(seed: number): (n: number) => number {
  let x = seed | 0;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}
