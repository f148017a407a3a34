/**
 * The ACPI power button through the daemon, as a script and a user press it:
 * `POST /api/vms/NAME/powerdown` (its answer checked against the OpenAPI
 * document) and `tsvm stop --acpi NAME`. The guest is a ROM that enables
 * the PIIX4 PM block itself and watches PM1_STS: for each press it sees
 * PWRBTN_STS set, clears it and says so on COM1, so the test sees what the
 * guest sees. Then `tsvm stop NAME`, which returns once the VM has stopped.
 * No Linux boot (whether the default guest powers off on the button is
 * checked with it elsewhere).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { TsvmChild } from '../helpers/child.js';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';

/** PIIX4 PM I/O base the ROM sets (the board's PM_BASE), and PM1_STS's power button bit (ACPI: PWRBTN_STS, bit 8). */
const BUTTON_ROM = `bits 16
org 0
start:
cli
xor ax, ax
mov ss, ax
mov sp, 0x7000
${COM1_INIT_8N1}
; PIIX4 PM is PCI 00:01.3: PMBA (40h) = B000h | 1, then PMREGMISC (80h) bit 0, PMIOSE, maps the block
mov dx, 0xcf8
mov eax, 0x80000b40
out dx, eax
mov dx, 0xcfc
mov eax, 0xb001
out dx, eax
mov dx, 0xcf8
mov eax, 0x80000b80
out dx, eax
mov dx, 0xcfc
mov al, 1
out dx, al
mov si, ready
call puts
poll:
mov dx, 0xb000
in ax, dx
test ax, 0x100
jz poll
; write 1 to clear PWRBTN_STS, then say it
mov ax, 0x100
out dx, ax
mov si, pressed
call puts
jmp poll
puts:
cs lodsb
test al, al
jz .done
mov bl, al
mov dx, 0x3fd
.wait:
in al, dx
test al, 0x20
jz .wait
mov al, bl
mov dx, 0x3f8
out dx, al
jmp puts
.done:
ret
ready db 'ready', 10, 0
pressed db 'PWRBTN', 10, 0
${ROM_TAIL}
`;

test('the power button: POST powerdown and tsvm stop --acpi reach the guest\'s PM1 status; tsvm stop returns with the VM stopped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-button-'));
  writeFileSync(join(dir, 'button.asm'), BUTTON_ROM);
  const nasm = spawnSync('nasm', ['-f', 'bin', join(dir, 'button.asm'), '-o', join(dir, 'button.rom')], { encoding: 'utf8' });
  assert.equal(nasm.status, 0, `nasm: ${nasm.stderr}`);
  const d = await new Daemon().ready();
  t.after(() => d.killAll());
  const machine = { version: 1, memoryBytes: 16 * 1048576, bios: join(dir, 'button.rom'), vgaBios: null, linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  assert.equal((await d.api('POST', '/api/vms', { name: 'button', machine })).status, 201);
  const refused = await d.api('POST', '/api/vms/button/powerdown');
  assert.equal(refused.status, 409, `a stopped VM has no button to press: ${refused.text}`);

  const events = new EventLog(d.socket('/api/events'));
  await opened(events.ws);
  t.after(() => events.ws.close());
  const started = await d.api('POST', '/api/vms/button/start');
  assert.equal(started.status, 200);
  d.vmPids.push((started.json as { pid: number }).pid);
  await d.orGone(events.waitFor((e) => e.vm === 'button' && e.state === 'running', 60_000, 'button running'), 'button running');

  let serial = '';
  const con = d.socket('/api/vms/button/console');
  con.on('message', (b: Buffer) => (serial += b.toString('latin1')));
  await opened(con);
  t.after(() => con.close());
  const presses = () => serial.split('\n').filter((l) => l === 'PWRBTN').length;
  const waitSerial = async (ok: () => boolean, what: string) => {
    for (let i = 0; i < 300 && !ok(); i++) {
      if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}) before ${what}: ${d.child.tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok(), `${what}; the guest printed: ${JSON.stringify(serial)}`);
  };
  await waitSerial(() => /ready\n/.test(serial), "the guest's ready");
  assert.equal(presses(), 0, 'no press before the button is pressed');

  // the API: the answer is the VM's info (checked against the document), the guest sees PWRBTN_STS
  const from = events.events.length;
  const pd = await d.api('POST', '/api/vms/button/powerdown');
  assert.equal(pd.status, 200, pd.text);
  assert.deepEqual([(pd.json as { name: string }).name, (pd.json as { state: string }).state], ['button', 'running']);
  await waitSerial(() => presses() === 1, 'the guest seeing PWRBTN_STS in PM1_STS after POST powerdown');
  assert.match((await d.api('GET', '/api/vms/button/log')).text, /ACPI power button pressed/);

  // the CLI: tsvm stop --acpi presses it again, and returns at once (the guest decides)
  const acpi = new TsvmChild(['stop', '--acpi', 'button', '--dir', d.dir]);
  assert.equal(await acpi.exit(), 0, acpi.tail());
  assert.equal(acpi.out, 'button: pressed the ACPI power button\n');
  await waitSerial(() => presses() === 2, 'the guest seeing PWRBTN_STS again after tsvm stop --acpi');
  assert.equal((await d.api('GET', '/api/vms/button/log')).text.match(/ACPI power button pressed/g)?.length, 2, 'each press in the VM log');
  // this guest ignores the button: it runs on
  assert.equal(((await d.api('GET', '/api/vms/button')).json as { state: string }).state, 'running');
  assert.deepEqual(events.events.slice(from).filter((e) => e.vm === 'button' && e.type === 'state'), [], 'no state change from a press the guest ignores');

  // tsvm stop: returns once the VM has stopped
  const stop = new TsvmChild(['stop', 'button', '--dir', d.dir]);
  assert.equal(await stop.exit(), 0, stop.tail());
  assert.equal(stop.out, 'button: stopped\n');
  const info = (await d.api('GET', '/api/vms/button')).json as { state: string; reason: string | null; pid: number | null };
  assert.deepEqual([info.state, info.reason, info.pid], ['stopped', 'quit', null], `the VM after tsvm stop: ${JSON.stringify(info)}`);
  const again = new TsvmChild(['stop', '--acpi', 'button', '--dir', d.dir]);
  assert.equal(await again.exit(), 1, again.tail());
  assert.match(again.stderr, /is stopped, not running/);
  assert.equal(await d.stop(), 0);
});
