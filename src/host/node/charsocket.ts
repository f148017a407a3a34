/**
 * A character device on a UNIX socket (QEMU's -chardev socket,path=P,server=on,wait=off):
 * tsvm listens on P; one client at a time gets the guest's output and its
 * input goes to the guest. Node delivers socket data only while the run loop
 * yields, so input reaches the device between slices, as host input must.
 * Output while no client is connected is dropped (a console nobody watches).
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { CharBackend } from '../../devices/backends.js';

export class SocketCharError extends Error {}

export class SocketChar implements CharBackend {
  /** Where input from the client goes (the console device's receive). */
  onInput: (data: Uint8Array) => void = () => {};
  private readonly _server: Server;
  private _client: Socket | null = null;

  constructor(readonly path: string) {
    try {
      // a socket left behind by an earlier run is replaced; any other file is not
      if (!lstatSync(path).isSocket()) throw new SocketCharError(`${path} exists and is not a socket; choose another path`);
      unlinkSync(path);
    } catch (e) {
      if (e instanceof SocketCharError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SocketCharError(`cannot use ${path}: ${(e as Error).message}`);
    }
    this._server = createServer((s) => {
      if (this._client) {
        s.end('tsvm: this console already has a client\n');
        return;
      }
      this._client = s;
      s.on('data', (b: Buffer) => this.onInput(new Uint8Array(b.buffer, b.byteOffset, b.length)));
      s.on('close', () => {
        if (this._client === s) this._client = null;
      });
      s.on('error', () => {});
    });
    this._server.on('error', (e) => process.stderr.write(`tsvm: chardev socket ${path}: ${e.message}\n`));
    this._server.listen(path);
  }

  write(data: Uint8Array): void {
    this._client?.write(Buffer.from(data));
  }

  close(): void {
    this._client?.destroy();
    this._server.close();
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
