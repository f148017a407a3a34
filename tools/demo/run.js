#!/usr/bin/env node
// Builds the bare-metal demo ROM with nasm and boots it in tsvm, showing its debug console.
import { mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
mkdirSync(`${root}/build`, { recursive: true });
const asm = spawnSync('nasm', ['-f', 'bin', `${root}/tools/demo/hello.asm`, '-o', `${root}/build/demo.bin`], { stdio: 'inherit' });
if (asm.status !== 0) process.exit(asm.status ?? 1);
const r = spawnSync(process.execPath, [`${root}/bin/tsvm.js`, 'run', '-bios', `${root}/build/demo.bin`, '-debugcon', 'stdio', '-m', '16M', '-timeout', '30'], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
