#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build compiles src/ into dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write("tsvm: not built yet; run 'npm ci && npm run build' in the tsvm checkout first\n");
  process.exit(1);
}
await import(main);
