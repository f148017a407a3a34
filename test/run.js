#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's built-in test runner.
// Usage: node test/run.js [substring ...]   (only files whose path contains one of them)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = walk('dist', []).sort();
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('test/run.js: no test files found under dist/ (did the build run?)');
  process.exit(1);
}
// The default guest image is set-up, like the TypeScript build: tests that boot it
// find it in the cache (test/boot/linux.test.ts builds its own from an empty cache).
const info = spawnSync(process.execPath, ['bin/tsvm.js', 'image', 'info'], { encoding: 'utf8' });
if (info.status !== 0) {
  console.error('test/run.js: building the default guest image (tsvm image build)');
  const b = spawnSync(process.execPath, ['bin/tsvm.js', 'image', 'build'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
