/**
 * The workloads bench/linux times on the default guest, typed at its shell
 * (bench/side-by-side.ts runs the same commands). docs/benchmarks.md says
 * what each one exercises.
 */
export interface Workload {
  name: string;
  cmd: string;
  /** What the output must contain, so a fast wrong answer is not a result. */
  check: RegExp;
}

export const LINUX_WORKLOADS: readonly Workload[] = [
  { name: 'sh loop 100k', cmd: 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done', check: /^$/ },
  { name: 'dd+md5 32M', cmd: 'dd if=/dev/zero bs=1M count=32 2>/dev/null | md5sum', check: /58f06dd588d8ffb3beb46ada6309436b {2}-/ },
  { name: 'seq+gzip', cmd: 'seq 1 300000 | gzip -6 | wc -c', check: /^\d+$/m },
  { name: '300 execs', cmd: 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done', check: /^$/ },
];
