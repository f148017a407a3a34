// End-to-end tests of `tsvm run` as a user meets it: the CLI in a child
// process, ROMs assembled with nasm, output read from files and stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-cli-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Assemble a 64 KiB ROM whose reset vector jumps to `body` (16-bit real-mode code). */
function rom(name: string, body: string): string {
  const src = join(dir, `${name}.asm`);
  const bin = join(dir, `${name}.bin`);
  writeFileSync(
    src,
    `bits 16\norg 0\nstart:\n${body}\ntimes 0xfff0 - ($ - $$) db 0\njmp 0xf000:start\ntimes 0x10000 - ($ - $$) db 0\n`,
  );
  const r = spawnSync('nasm', ['-f', 'bin', src, '-o', bin], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nasm failed: ${r.stderr}`);
  return bin;
}

test('tsvm --help and run --help list the options', () => {
  const top = tsvm('--help');
  assert.equal(top.code, 0);
  assert.match(top.out, /run\s+run a virtual PC/);
  const run = tsvm('run', '--help');
  assert.equal(run.code, 0);
  for (const o of ['-bios FILE', '-m SIZE', '-debugcon DEV', '-postcodes DEV', '-timeout SECONDS', '-d ITEMS']) {
    assert.ok(run.out.includes(o), `run --help lacks ${o}`);
  }
});

test('debug console and POST codes reach their files; HLT with IF=0 exits 0', () => {
  const bin = rom(
    'hello',
    `mov si, msg\nmov dx, 0xe9\n.l: cs lodsb\ntest al, al\njz .d\nout dx, al\njmp .l\n.d: mov al, 0x12\nout 0x80, al\nmov al, 0xab\nout 0x80, al\ncli\nhlt\nmsg: db "hi from the guest", 10, 0`,
  );
  const con = join(dir, 'con.txt');
  const post = join(dir, 'post.txt');
  const r = tsvm('run', '-bios', bin, '-debugcon', `file:${con}`, '-postcodes', `file:${post}`, '-m', '1M');
  assert.equal(r.code, 0, r.err);
  assert.equal(readFileSync(con, 'utf8'), 'hi from the guest\n');
  assert.equal(readFileSync(post, 'utf8'), '12\nAB\n');
});

test('-debugcon stdio writes to standard output and -d cpu prints registers', () => {
  const bin = rom('regs', `mov eax, 0x12345678\nmov al, 'Z'\nout 0xe9, al\ncli\nhlt`);
  const r = tsvm('run', '-bios', bin, '-debugcon', 'stdio', '-d', 'cpu');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'Z');
  assert.match(r.err, /EAX=1234565A/);
  assert.match(r.err, /CS =F000/);
});

test('a triple fault exits non-zero and names the exception chain', () => {
  // an IDT limit of 0 makes every delivery fault: #UD, then #GP delivering it, #GP again
  // while delivering that (-> #DF), and #GP delivering the #DF: shutdown
  const bin = rom('triple', `lidt [cs:idt]\nud2\nidt: dw 0\ndd 0`);
  const r = tsvm('run', '-bios', bin);
  assert.equal(r.code, 2);
  assert.match(r.err, /triple fault \(#UD -> #GP -> #GP -> #DF -> #GP\)/);
});

test('-timeout stops a guest that never halts', () => {
  const bin = rom('spin', `jmp $`);
  const r = tsvm('run', '-bios', bin, '-timeout', '0.5');
  assert.equal(r.code, 3);
  assert.match(r.err, /timeout after 0.5 s/);
});

test('bad firmware files and options get clear errors', () => {
  const missing = tsvm('run', '-bios', join(dir, 'nope.bin'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /cannot read BIOS image .*nope\.bin: no such file/);

  const empty = join(dir, 'empty.bin');
  writeFileSync(empty, '');
  assert.match(tsvm('run', '-bios', empty).err, /BIOS image .* is empty/);

  const huge = join(dir, 'huge.bin');
  writeFileSync(huge, Buffer.alloc(17 * 1024 * 1024));
  const h = tsvm('run', '-bios', huge);
  assert.equal(h.code, 1);
  assert.match(h.err, /larger than the 16 MiB/);

  assert.match(tsvm('run', '-bios', empty, '-m', 'lots').err, /-m 'lots' is not a size/);
  assert.match(tsvm('run', '-frobnicate').err, /unknown option '-frobnicate'/);
  assert.match(tsvm('run', '-bios', empty, '-accel', 'kvm').err, /-accel 'kvm': the accelerator is 'tsvm'/);
  assert.match(tsvm('run', '-bios', empty, '-accel', 'tsvm,tier=turbo').err, /tier 'turbo' is not known; use one of interp, blocks, wasm/);
  assert.match(tsvm('run', '-bios', empty, '-accel', 'tsvm,threshold=0').err, /threshold '0' is not a whole number/);
  assert.match(tsvm('run', '-bios', rom('ok', 'cli\nhlt'), '-debugcon', 'tcp:1').err, /not a character device/);
  assert.match(tsvm('frob').err, /unknown command 'frob'/);
});

test('bad disk images and display options get clear errors before the VM starts', () => {
  const missing = tsvm('run', '-cdrom', join(dir, 'nope.iso'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /-cdrom.*nope\.iso/);
  assert.match(missing.err, /no such file|does not exist|not found/i);
  const isDir = tsvm('run', '-hda', dir);
  assert.equal(isDir.code, 1);
  assert.match(isDir.err, /-hda.*directory/i);
  const emptyDisk = join(dir, 'empty.img');
  writeFileSync(emptyDisk, '');
  assert.match(tsvm('run', '-hda', emptyDisk).err, /-hda.*empty/i);
  assert.match(tsvm('run', '-hda', emptyDisk, '-boot', 'x').err, /-boot 'x' is not a boot order/);
  assert.match(tsvm('run', '-display', 'sdl').err, /-display 'sdl' is not known; use none or curses/);
  assert.match(tsvm('run', '-display', 'curses', '-serial', 'stdio', '-bios', rom('ok2', 'cli\nhlt')).err, /-display curses uses the terminal/);
});

test('-display curses draws the VGA text screen in the terminal', () => {
  // SeaBIOS and its VGA BIOS set text mode 3 and print their banner
  const r = tsvm('run', '-bios', '/usr/share/seabios/bios-256k.bin', '-display', 'curses', '-run-for', '2');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\x1b\[\?1049h/); // the alternate screen was entered
  assert.match(r.out, /SeaBIOS \(version /);
  assert.match(r.out, /\x1b\[\?1049l/); // and left at exit
});

/** A ROM that reads the RTC's date and time registers (BCD, as the MC146818 powers on) and writes them to the debug console. */
function rtcRom(): string {
  // century (0x32), year, month, day of month, hours, minutes: one byte each
  return rom('rtc', `mov si, regs\n.l: cs lodsb\ncmp al, 0xff\nje .d\nout 0x70, al\nin al, 0x71\nout 0xe9, al\njmp .l\n.d: cli\nhlt\nregs: db 0x32, 9, 8, 7, 4, 2, 0xff`);
}
const bcd = (n: number) => ((Math.floor(n / 10) % 10) << 4) | n % 10;
function rtcBytes(d: Date): number[] {
  return [bcd(Math.floor(d.getUTCFullYear() / 100)), bcd(d.getUTCFullYear() % 100), bcd(d.getUTCMonth() + 1), bcd(d.getUTCDate()), bcd(d.getUTCHours()), bcd(d.getUTCMinutes())];
}

test('the RTC starts at the host time by default and at the date -rtc base= gives', () => {
  const bin = rtcRom();
  const con = join(dir, 'rtc.txt');
  const before = new Date();
  const r = tsvm('run', '-bios', bin, '-m', '1M', '-debugcon', `file:${con}`);
  const after = new Date();
  assert.equal(r.code, 0, r.err);
  const got = [...readFileSync(con)];
  // the guest reads within seconds of starting: the host's minute before or after the run
  assert.ok([rtcBytes(before), rtcBytes(after)].some((want) => want.join() === got.join()), `RTC read ${got.map((b) => b.toString(16))}, host time was ${before.toISOString()}..${after.toISOString()}`);

  const fixed = tsvm('run', '-bios', bin, '-m', '1M', '-debugcon', `file:${con}`, '-rtc', 'base=2024-05-01T12:30:00');
  assert.equal(fixed.code, 0, fixed.err);
  assert.deepEqual([...readFileSync(con)], [0x20, 0x24, 0x05, 0x01, 0x12, 0x30]);
  const dateOnly = tsvm('run', '-bios', bin, '-m', '1M', '-debugcon', `file:${con}`, '-rtc', 'base=1999-12-31');
  assert.equal(dateOnly.code, 0, dateOnly.err);
  assert.deepEqual([...readFileSync(con)], [0x19, 0x99, 0x12, 0x31, 0x00, 0x00]);
});

test('-rtc refuses what it cannot hold, saying what to write instead', () => {
  for (const [arg, msg] of [
    ['base=2024-02-30', /not a real date/],
    ['base=yesterday', /not utc, localtime or a date.*base=2024-05-01/],
    ['base=2150-01-01', /1970 to 2099/],
    ['clock=host', /clock=vm/],
    ['speed=2', /not an RTC setting/],
  ] as const) {
    const r = tsvm('run', '-bios', rtcRom(), '-m', '1M', '-rtc', arg);
    assert.equal(r.code, 1, `-rtc ${arg}: ${r.err}`);
    assert.match(r.err, msg);
  }
});
