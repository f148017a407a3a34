/**
 * The screen WebSocket, as a client program meets it. In a graphics mode the
 * first message carries the whole frame as tiles, later ones only the tiles
 * that changed; mouse, key, text and ctrl-alt-del messages reach the guest's
 * PS/2 devices as the bytes a PS/2 mouse and keyboard send. The guest is the
 * paint ROM (paint-rom.ts): a VBE frame, and a square painted for every byte
 * the i8042 gives it, each byte also printed on COM1. In text mode (SeaBIOS
 * and a boot sector) the first message has every row, later ones only the
 * rows that changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { paintRom } from './paint-rom.js';
import { COM1_INIT_8N1 } from '../helpers/roms.js';

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

  // keys, as set-2 bytes: the paint ROM leaves the i8042's command byte as reset put it (no
  // XLATE), so it reads what the keyboard sends, not the set-1 translation a BIOS would turn on.
  // Make codes, break codes F0-prefixed, extended keys E0-prefixed (IBM PS/2 reference, set 2).
  // A key held past the typematic delay (500 ms of guest time) repeats its make code, which a
  // slow host may let happen between a down and its up: the patterns allow it.
  const keys = async (send: () => void, expect: RegExp, end: string, what: string) => {
    const from = serial.length;
    send();
    const got = () => serial.slice(from);
    for (let i = 0; i < 100 && !got().endsWith(end); i++) {
      if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}) before ${what}: ${d.child.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(got(), expect, `${what}: the guest read ${JSON.stringify(got())}`);
  };
  const key = (code: string, down: boolean) => screen.ws.send(JSON.stringify({ type: 'key', code, down }));
  await keys(() => (key('KeyA', true), key('KeyA', false)), /^1C (1C )*F0 1C $/, 'F0 1C ', 'KeyA down and up: make 1C, break F0 1C');
  await keys(() => (key('Delete', true), key('Delete', false)), /^E0 71 (E0 71 )*E0 F0 71 $/, 'E0 F0 71 ', 'Delete, an extended key: E0 71, then E0 F0 71');
  // text: a capital with the left Shift around it, then b and Enter, each key down and up
  await keys(() => screen.ws.send(JSON.stringify({ type: 'text', text: 'Ab\n' })), /^12 1C F0 1C F0 12 32 F0 32 5A F0 5A $/, 'F0 5A ', "text 'Ab\\n': Shift, A, b, Enter");
  // Ctrl-Alt-Del: left Ctrl (14), left Alt (11), Delete (E0 71) down, then up in reverse order
  await keys(() => screen.ws.send(JSON.stringify({ type: 'ctrl-alt-del' })), /^14 11 E0 71 (E0 71 )*E0 F0 71 F0 11 F0 14 $/, 'F0 14 ', 'ctrl-alt-del');

  screen.ws.send('not json');
  const err = await screen.waitFor((m) => m.type === 'error', 10_000, 'an error message');
  assert.match(String(err.message), /"type":"mouse"/);
  assert.equal((await d.api('POST', '/api/vms/paint/stop')).status, 200);
  assert.equal(await d.stop(), 0);
});

/**
 * A boot sector for SeaBIOS (whose VGA BIOS sets text mode 3): it writes a
 * line at row 10 of the text screen (B800:0), says "ready" on COM1, then
 * writes each key int 16h gives it on row 12, one cell after the other.
 */
const TEXT_BOOT = `bits 16
org 0x7c00
xor ax, ax
mov ds, ax
mov ss, ax
mov sp, 0x7c00
sti
${COM1_INIT_8N1}
mov ax, 0xb800
mov es, ax
mov si, line
mov di, 10*160
.line:
lodsb
test al, al
jz .said
mov ah, 0x1e
stosw
jmp .line
.said:
mov si, ready
.ready:
lodsb
test al, al
jz .keys
mov bl, al
mov dx, 0x3fd
.wait:
in al, dx
test al, 0x20
jz .wait
mov al, bl
mov dx, 0x3f8
out dx, al
jmp .ready
.keys:
mov di, 12*160
.key:
xor ah, ah
int 0x16
mov ah, 0x1e
stosw
jmp .key
line db 'tsvm text screen', 0
ready db 'ready', 10, 0
times 510 - ($ - $$) db 0
dw 0xaa55
`;

type Row = { row: number; text: string; attrs: number[] };

test('screen socket: a text screen as rows, all of them first, then only the rows that changed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-textscreen-'));
  writeFileSync(join(dir, 'boot.asm'), TEXT_BOOT);
  const nasm = spawnSync('nasm', ['-f', 'bin', join(dir, 'boot.asm'), '-o', join(dir, 'boot.bin')], { encoding: 'utf8' });
  assert.equal(nasm.status, 0, `nasm: ${nasm.stderr}`);
  const disk = Buffer.alloc(1 << 20);
  readFileSync(join(dir, 'boot.bin')).copy(disk);
  writeFileSync(join(dir, 'disk.img'), disk);
  const d = await new Daemon().ready();
  t.after(() => d.killAll());
  const machine = { version: 1, memoryBytes: 16 * 1048576, bios: 'seabios', vgaBios: 'seabios', linux: null, boot: 'c', drives: { hda: { file: join(dir, 'disk.img'), format: 'raw', mode: 'rw' } }, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  assert.equal((await d.api('POST', '/api/vms', { name: 'text', machine })).status, 201);
  const started = await d.api('POST', '/api/vms/text/start');
  assert.equal(started.status, 200);
  d.vmPids.push((started.json as { pid: number }).pid);

  // the boot sector says it has drawn its line; no screen socket has watched so far
  let serial = '';
  const con = d.socket('/api/vms/text/console');
  con.on('message', (b: Buffer) => (serial += b.toString('latin1')));
  await opened(con);
  t.after(() => con.close());
  for (let i = 0; i < 600 && !/ready\n/.test(serial); i++) {
    if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}) before the boot sector ran: ${d.child.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(serial, /ready\n/, 'the boot sector runs');

  const screen = new EventLog(d.socket('/api/vms/text/screen'));
  await opened(screen.ws);
  t.after(() => screen.ws.close());
  // the first message: the whole text screen, every row, as the daemon keeps it (the VM sends
  // changed rows every 100 ms, so the boot sector's line may not be in it yet)
  const first = await screen.waitFor(() => true, 10_000, 'the first screen message');
  assert.deepEqual([first.type, first.full, first.mode, first.cols, first.rows], ['screen', true, 'text', 80, 25]);
  const all = (rows: Row[], what: string) => {
    assert.deepEqual(rows.map((r) => r.row), [...Array(25).keys()], `${what} has every row of the screen, once`);
    assert.ok(rows.every((r) => r.text.length === 80 && r.attrs.length === 80), 'each row 80 characters and 80 attributes');
  };
  all(first.changed as Row[], 'the first message');
  assert.match((first.changed as Row[]).map((r) => r.text).join('\n'), /SeaBIOS/, "SeaBIOS's banner");
  // the attach makes the VM send a whole frame, as it is now: every row again, and the tiles,
  // now that a socket watches
  const frame = await screen.waitFor((m) => m.type === 'screen' && (m.tiles as unknown[]).length > 0, 30_000, 'the whole frame for the new watcher', 1);
  const rows = frame.changed as Row[];
  all(rows, 'the whole frame');
  assert.match(rows[10].text, /^tsvm text screen +$/);
  assert.deepEqual(rows[10].attrs.slice(0, 16), Array(16).fill(0x1e));

  // keys typed: the boot sector writes them on row 12, and the updates carry that row alone
  const n = screen.events.length;
  screen.ws.send(JSON.stringify({ type: 'text', text: 'hi' }));
  const typed = await screen.waitFor(
    () => {
      const r12 = screen.events.slice(n).flatMap((m) => (m.changed as Row[] | undefined) ?? []).filter((r) => r.row === 12);
      return r12.length > 0 && r12[r12.length - 1].text.startsWith('hi');
    },
    30_000,
    "row 12 with the keys typed, 'hi'",
    n,
  );
  assert.ok(typed);
  const later = screen.events.slice(n).filter((m) => m.type === 'screen' && (m.changed as Row[]).length > 0);
  assert.ok(later.length > 0);
  for (const m of later) {
    assert.equal(m.full, false);
    assert.deepEqual((m.changed as Row[]).map((r) => r.row), [12], `an update carries only the row that changed: ${JSON.stringify((m.changed as Row[]).map((r) => r.row))}`);
  }
  const r12 = later.flatMap((m) => m.changed as Row[]).pop() as Row;
  assert.match(r12.text, /^hi +$/);
  assert.deepEqual(r12.attrs.slice(0, 2), [0x1e, 0x1e]);
  assert.equal((await d.api('POST', '/api/vms/text/stop')).status, 200);
  assert.equal(await d.stop(), 0);
});
