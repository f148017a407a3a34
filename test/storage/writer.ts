// A child process for the SIGKILL test: opens a qcow2 image through the storage
// layer and writes random data at random places until it is killed.
// Usage: node writer.js IMAGE SEED
import { openImage } from '../../src/storage/open.js';
import { nodeStorageHost } from '../../src/host/node/file.js';

const [path, seedText] = process.argv.slice(2);
let s = Number(seedText) >>> 0;
const rnd = () => {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  return s / 4294967296;
};
const img = openImage(nodeStorageHost, path, { readOnly: false });
process.stdout.write('writing\n');
for (let i = 0; ; i++) {
  const sectors = 1 + Math.floor(rnd() * (rnd() < 0.2 ? 512 : 16));
  const off = Math.floor(rnd() * (img.sizeBytes / 512 - sectors)) * 512;
  const b = new Uint8Array(sectors * 512);
  if (rnd() < 0.7) b.fill(1 + (i % 255));
  img.write(off, b);
  if (i % 50 === 49) img.flush();
}
