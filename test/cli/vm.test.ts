// VM folders end to end, as a user drives them: tsvm create, start (typing
// at the guest and at the monitor over stdin), savevm/loadvm branches,
// quit --save and resume, snapshot revert of a stopped VM, list, the lock,
// moving the folder, a full clone, start --force-boot of a suspended VM.
// The guest is a small ROM that counts the characters typed at COM1 and
// reports the count on '?', so what a snapshot holds is what the user sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COM1_INIT_8N1, ROM_TAIL } from '../helpers/roms.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const TSVM = join(ROOT, 'bin/tsvm.js');
const dir = mkdtempSync(join(tmpdir(), 'tsvm-vm-'));

function tsvm(...args: string[]) {
  const r = spawnSync(process.execPath, [TSVM, ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const COUNTER = `
bits 16
org 0
start:
xor ax, ax
mov ds, ax
mov ss, ax
mov sp, 0x7000
mov byte [0x500], 0
; 8 data bits, 115200 baud: LCR.DLAB, divisor 1, then LCR = 8N1
${COM1_INIT_8N1}
.wait: mov dx, 0x3fd
in al, dx
test al, 1
jz .wait
mov dx, 0x3f8
in al, dx
cmp al, '?'
je .report
cmp al, 32
jb .wait
inc byte [0x500]
call putc
jmp .wait
.report: mov si, msg
.m: cs lodsb
test al, al
jz .n
call putc
jmp .m
.n: mov al, [0x500]
add al, '0'
call putc
mov al, '>'
call putc
jmp .wait
putc: mov ah, al
mov dx, 0x3fd
.t: in al, dx
test al, 0x20
jz .t
mov al, ah
mov dx, 0x3f8
out dx, al
ret
msg: db '<count=', 0
${ROM_TAIL}
`;

/** A `tsvm start` child whose stdout we read and whose stdin we type at. Waits fail as soon as the child exits. */
class Session {
  out = '';
  code: number | null | undefined = undefined;
  private _waiters: (() => void)[] = [];
  readonly child;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [TSVM, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    const take = (b: Buffer) => {
      this.out += b.toString('latin1');
      for (const w of this._waiters.splice(0)) w();
    };
    this.child.stdout.on('data', take);
    this.child.stderr.on('data', take);
    this.exited = new Promise((res) =>
      this.child.on('exit', (code) => {
        this.code = code;
        for (const w of this._waiters.splice(0)) w();
        res(code);
      }),
    );
  }

  async waitFor(re: RegExp, from: number, limitMs = 60_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      if (re.test(this.out.slice(from))) return;
      if (this.code !== undefined) throw new Error(`tsvm exited with status ${this.code} before ${re} appeared; output:\n${this.out.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${re}; output:\n${this.out.slice(-2000)}`);
      await new Promise<void>((r) => {
        this._waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  /** Type at the guest and wait for `re` in what follows. */
  async type(text: string, re: RegExp): Promise<void> {
    const from = this.out.length;
    this.child.stdin.write(text);
    await this.waitFor(re, from);
  }

  /** A monitor command (Ctrl-A C, the line, Ctrl-A C back), waiting for `re` in its output. */
  async monitor(line: string, re: RegExp): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(`\x01c${line}\r`);
    await this.waitFor(re, from);
    const out = this.out.slice(from);
    if (this.code === undefined) this.child.stdin.write('\x01c');
    return out;
  }

  kill(): void {
    if (this.code === undefined) this.child.kill();
  }
}

test('create, start, savevm/loadvm branches, quit --save and resume, revert, list, lock, move, clone, force-boot', { timeout: 600_000 }, async () => {
  const src = join(dir, 'counter.asm');
  writeFileSync(src, COUNTER);
  const rom = join(dir, 'counter.bin');
  assert.equal(spawnSync('nasm', ['-f', 'bin', src, '-o', rom]).status, 0);

  const c = tsvm('create', 'box', '-bios', rom, '-m', '2M');
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /created .*box\.tsvm/);
  const cfg = JSON.parse(readFileSync(join(dir, 'box.tsvm', 'vm.json'), 'utf8'));
  assert.equal(cfg.spec.bios, 'boot/counter.bin');
  assert.doesNotMatch(JSON.stringify(cfg), new RegExp(dir), 'vm.json holds an absolute path');
  assert.ok(existsSync(join(dir, 'box.tsvm', 'boot', 'counter.bin')));
  assert.match(tsvm('create', 'box', '-bios', rom).err, /already exists/);

  // a running VM: type, save, type more, save on another branch, go back
  const s = new Session(['start', 'box', '-timeout', '300']);
  try {
    await s.type('aa?', /<count=2>/);
    assert.match(await s.monitor('savevm first', /snapshot first saved|savevm:.*/), /snapshot first saved/);
    await s.type('bbb?', /<count=5>/);
    assert.match(await s.monitor('savevm five', /saved|savevm:.*/), /snapshot five saved/);
    assert.match(await s.monitor('loadvm first', /back at|loadvm:.*/), /back at snapshot first/);
    await s.type('?', /<count=2>/);
    await s.type('c?', /<count=3>/);
    assert.match(await s.monitor('savevm three', /saved|savevm:.*/), /snapshot three saved/);
    const tree = await s.monitor('info snapshots', /you are here/);
    // first has two children (five, three); the position is at three
    assert.match(tree, /first .*\r?\n\s*\|- five .*\r?\n\s*`- three .*<- you are here/);
    assert.match(await s.monitor('loadvm nosuch', /loadvm:.*/), /has no snapshot 'nosuch'/);

    // a second process cannot open the VM while this one runs
    const second = tsvm('start', 'box');
    assert.equal(second.code, 1);
    assert.match(second.err, /in use by another tsvm process \(pid \d+\)/);
    assert.match(tsvm('list').out, /box\s+running \(pid \d+\)/);

    await s.type('dd', /dd/);
    s.child.stdin.write('\x01cquit --save\r');
    assert.equal(await s.exited, 0, s.out);
  } finally {
    s.kill();
  }
  const list = tsvm('list');
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /NAME\s+STATE\s+RAM\s+SIZE\s+SNAPSHOTS\nbox\s+suspended\s+2M\s+\S+\s+3/);

  // resume where quit --save left it (count 5: three + dd)
  const r = new Session(['start', 'box', '-timeout', '300']);
  try {
    await r.type('?', /<count=5>/);
    r.child.stdin.write('\x01x');
    assert.equal(await r.exited, 0);
  } finally {
    r.kill();
  }
  assert.match(tsvm('list').out, /box\s+stopped/);

  // revert a stopped VM to a snapshot taken while it ran: the next start resumes there
  const rev = tsvm('snapshot', 'box', 'revert', 'five');
  assert.equal(rev.code, 0, rev.err);
  assert.match(rev.out, /back at snapshot five; tsvm start box resumes there/);
  assert.match(tsvm('snapshot', 'box', 'list').out, /five .*<- you are here/);
  assert.match(tsvm('snapshot', 'box', 'revert', 'nope').err, /has no snapshot 'nope'/);

  // move the folder elsewhere and start it there; then a full clone starts too
  mkdirSync(join(dir, 'moved'));
  renameSync(join(dir, 'box.tsvm'), join(dir, 'moved', 'box.tsvm'));
  const m = new Session(['start', 'moved/box.tsvm', '-timeout', '300']);
  try {
    await m.type('?', /<count=5>/);
    m.child.stdin.write('\x01cquit --save\r');
    assert.equal(await m.exited, 0, m.out);
  } finally {
    m.kill();
  }
  const cl = tsvm('clone', 'box', 'copy', '--dir', 'moved');
  assert.equal(cl.code, 0, cl.err);
  const k = new Session(['start', 'copy', '--dir', 'moved', '-timeout', '300']);
  try {
    await k.type('?', /<count=5>/);
    k.child.stdin.write('\x01x');
    assert.equal(await k.exited, 0);
  } finally {
    k.kill();
  }
  assert.match(tsvm('list', '--dir', 'moved').out, /box\s+suspended[\s\S]*copy\s+stopped\s+2M\s+\S+\s+3/);

  // delete a snapshot: its children move up to its parent
  assert.equal(tsvm('snapshot', 'copy', 'delete', 'first', '--dir', 'moved').code, 0);
  const after = tsvm('snapshot', 'copy', 'list', '--dir', 'moved').out;
  assert.doesNotMatch(after, /first/);
  assert.match(after, /five/);
  assert.match(after, /three/);

  // the suspended box booted afresh: start --force-boot discards the saved state (the count starts at 0 again);
  // a start refused before the machine is built keeps it
  const refused = tsvm('start', 'box', '--dir', 'moved', '--force-boot', '-timeout', 'soon');
  assert.equal(refused.code, 1, refused.err);
  assert.match(refused.err, /-timeout 'soon' is not a positive number of seconds/);
  assert.match(tsvm('list', '--dir', 'moved').out, /box\s+suspended/);
  const f = new Session(['start', 'box', '--dir', 'moved', '--force-boot', '-timeout', '300']);
  try {
    await f.waitFor(/discarded box's suspended state; booting it afresh/, 0);
    await f.type('?', /<count=0>/);
    f.child.stdin.write('\x01x');
    assert.equal(await f.exited, 0, f.out);
  } finally {
    f.kill();
  }
  assert.match(tsvm('list', '--dir', 'moved').out, /box\s+stopped/);
  assert.match(readFileSync(join(dir, 'moved', 'box.tsvm', 'vm.log'), 'utf8'), /suspended state discarded \(--force-boot\)/);
});

test('a broken or hostile vm.json is refused with a clear error', () => {
  const bad = join(dir, 'bad.tsvm');
  mkdirSync(bad);
  const write = (o: unknown) => writeFileSync(join(bad, 'vm.json'), JSON.stringify(o));
  const base = { format: 'tsvm-vm', version: 1, name: 'bad', createdAt: 'x', spec: { version: 1, memoryBytes: 1 << 20, bios: 'boot/x.bin' } };
  write({ ...base, spec: { ...base.spec, bios: '/etc/passwd' } });
  assert.match(tsvm('start', 'bad').err, /bios is an absolute path/);
  write({ ...base, spec: { ...base.spec, drives: { hda: { file: '../../outside.img' } } } });
  assert.match(tsvm('start', 'bad').err, /points outside the VM folder/);
  write({ ...base, version: 7 });
  assert.match(tsvm('start', 'bad').err, /vm\.json is of version 7; this tsvm reads version 1/);
  writeFileSync(join(bad, 'vm.json'), '{ not json');
  assert.match(tsvm('start', 'bad').err, /is not valid JSON/);
  assert.match(tsvm('start', 'nothere').err, /there is no VM at .*nothere\.tsvm \(create one with: tsvm create nothere\)/);
  assert.match(tsvm('list').out, /bad\s+broken: /);
});
