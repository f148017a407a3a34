/**
 * The screen WebSocket in graphics modes, as a client program meets it: the
 * first message carries the whole frame as tiles, later ones only the tiles
 * that changed; mouse messages reach the guest's PS/2 mouse. The guest is
 * the paint ROM (paint-rom.ts): a VBE frame, and a square painted for every
 * byte the i8042 gives it, each byte also printed on COM1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { paintRom } from './paint-rom.js';

type Tile = { x: number; y: number; w: number; h: number; png: string };

test('screen socket: graphics frames as changed tiles; mouse input reaches the guest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-screen-'));
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  const machine = { version: 1, memoryBytes: 16 * 1048576, bios: paintRom(dir), vgaBios: null, linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  assert.equal((await d.api('POST', '/api/vms', { name: 'paint', machine })).status, 201);
  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  assert.equal((await d.api('POST', '/api/vms/paint/start')).status, 200);
  await events.waitFor((e) => e.vm === 'paint' && e.state === 'running', 60_000, 'paint running');

  let serial = '';
  const con = d.socket('/api/vms/paint/console');
  con.on('message', (b: Buffer) => (serial += b.toString('latin1')));
  await opened(con);
  const waitSerial = async (re: RegExp, what: string) => {
    for (let i = 0; i < 300 && !re.test(serial); i++) {
      if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}) before ${what}: ${d.child.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(serial, re, what);
  };
  await waitSerial(/ready\n/, "the guest's ready");

  const screen = new EventLog(d.socket('/api/vms/paint/screen'));
  await opened(screen.ws);
  const withTiles = (from: number) => screen.waitFor((m) => m.type === 'screen' && (m.tiles as Tile[]).length > 0, 30_000, 'a screen update with tiles', from);
  const first = await withTiles(0);
  assert.equal(first.mode, 'vbe');
  assert.deepEqual([first.width, first.height], [160, 100]);
  const area = (ts: Tile[]) => ts.reduce((a, t) => a + t.w * t.h, 0);
  assert.equal(area(first.tiles as Tile[]), 160 * 100, 'the first update covers the whole frame');
  for (const tile of first.tiles as Tile[]) assert.deepEqual([...Buffer.from(tile.png, 'base64').subarray(1, 4)], [0x50, 0x4e, 0x47], 'tiles are PNGs');

  const n = screen.events.length;
  const sent = serial.length;
  screen.ws.send(JSON.stringify({ type: 'mouse', dx: 5, dy: -3, buttons: 1, dz: 0 }));
  await waitSerial(/ready\nFA ([0-9A-F]{2} ){3}/, 'the ACK, then a 3-byte packet');
  const packet = serial.slice(sent).trim().split(' ').map((h) => parseInt(h, 16));
  assert.equal(packet[0] & 0x09, 0x09, `a packet with the left button down and bit 3 set: ${serial}`);
  assert.equal(packet[1], 5, 'dx 5');
  assert.equal(packet[2], 3, 'dy -3 on screen is +3 for PS/2 (up is positive)');
  const next = await withTiles(n);
  const changed = next.tiles as Tile[];
  assert.ok(area(changed) < 160 * 100, `only the changed tiles are sent (${changed.map((c) => `${c.x},${c.y}`).join(' ')})`);
  assert.ok(changed.every((c) => c.y === 0 || c.y === 64) && changed.some((c) => c.y === 0), 'the squares at y 60..75 are in the tile rows at 0 and 64');

  screen.ws.send('not json');
  const err = await screen.waitFor((m) => m.type === 'error', 10_000, 'an error message');
  assert.match(String(err.message), /"type":"mouse"/);
  assert.equal((await d.api('POST', '/api/vms/paint/stop')).status, 200);
  assert.equal(await d.stop(), 0);
});
