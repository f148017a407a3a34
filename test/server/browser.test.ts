/**
 * The web console in real headless Chromium (Debian's chromium, driven with
 * playwright-core): open the printed URL with the token, create a VM from
 * the default guest, start it, type `uname -m` in the serial console and
 * see i686, see the kernel's boot messages on the screen canvas, equal to
 * the daemon's screenshot, save a snapshot and revert to it, stop it, clone it (full, and
 * linked on the snapshot, through the clone dialog); then a bare SeaBIOS
 * VM's text screen on the canvas, equal to the daemon's screenshot. One
 * Linux boot. Takes screenshots of the page (web-ui.png, web-ui-phone.png).
 * The second test
 * (no Linux boot) adds the paint ROM's graphics screen, the mouse, a key
 * and Ctrl-Alt-Del (the scan codes the guest prints), the screenshot link,
 * Pause, Resume, Power off and Reset, a snapshot deleted, an ISO upload and
 * an upload's progress bar, and the private networks panel
 * (web-ui-networks.png). The screenshots go to a
 * temporary directory, or into docs/ with TSVM_DOC_SCREENSHOTS=1 (to refresh
 * the pictures there; a plain test run leaves the checkout unchanged).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { request } from 'node:http';
import { Daemon, EventLog, opened } from '../helpers/daemon.js';
import { ROOT } from '../helpers/child.js';
import { findDefaultImage } from '../../src/vmm/image.js';
import { paintRom } from './paint-rom.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOT_DIR = process.env['TSVM_DOC_SCREENSHOTS'] === '1' ? join(ROOT, 'docs') : mkdtempSync(join(tmpdir(), 'tsvm-web-ui-'));
/** Where a screenshot of the page goes (see the comment at the top). */
const docShot = (name: string): string => join(SHOT_DIR, name);
const BOOT_LIMIT_MS = 1_200_000; // a shared, loaded machine can take many minutes
// tools/setup.sh installs chromium and test/run.js builds the default guest before any test: missing either is a failure, not a skip

/** Wait until the page's terminal shows text that passes `ok`, failing early if the daemon dies. */
async function terminalText(page: Page, d: Daemon, ok: (t: string) => boolean, limitMs: number, what: string): Promise<string> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const t = await page.locator('#terminal .xterm-rows').innerText();
    if (ok(t)) return t;
    if (d.child.exitDescription) throw new Error(`the daemon ended (${d.child.exitDescription}) before ${what}: ${d.child.tail()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${limitMs / 1000} s; the terminal shows:\n${t}`);
    await page.waitForTimeout(1000);
  }
}

/** In the page: the canvas's pixels compared with the daemon's screenshot (same size, every pixel within 8 per channel). */
const CANVAS_VS_SCREENSHOT = `(async (name) => {
  const c = document.getElementById('screen');
  const r = await fetch('/api/vms/' + name + '/screenshot');
  const img = await createImageBitmap(await r.blob());
  if (img.width !== c.width || img.height !== c.height) return { same: false, why: 'size ' + c.width + 'x' + c.height + ' against ' + img.width + 'x' + img.height };
  const o = new OffscreenCanvas(img.width, img.height).getContext('2d');
  o.drawImage(img, 0, 0);
  const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const b = o.getImageData(0, 0, img.width, img.height).data;
  let diff = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 8) diff++;
  return { same: diff === 0, why: diff + ' channel values differ' };
})`;

/** In the page: how many white pixels the canvas shows. */
const WHITE_PIXELS = `(() => {
  const c = document.getElementById('screen');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] === 255 && px[i + 1] === 255 && px[i + 2] === 255) n++;
  return n;
})()`;

/** Wait until the canvas equals the daemon's screenshot of VM `name` (a blinking cursor may differ for a moment). */
async function sameAsScreenshot(page: Page, name: string, what: string): Promise<void> {
  let r = { same: false, why: 'not compared' };
  for (let i = 0; i < 30 && !r.same; i++) {
    await page.waitForTimeout(500);
    r = (await page.evaluate(`${CANVAS_VS_SCREENSHOT}(${JSON.stringify(name)})`)) as { same: boolean; why: string };
  }
  assert.ok(r.same, `${what}: the canvas shows the daemon's screenshot (${r.why})`);
}

test('the web console: create, start, type in the serial console, stop', async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: tools/setup.sh installs Debian's chromium`);
  assert.ok(findDefaultImage(), 'the default guest is not built (test/run.js builds it with tsvm image build)');
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  // a fresh profile (playwright passes it as --user-data-dir)
  const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'tsvm-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await t.test('without the token the page is refused', async () => {
    const r = await page.goto(d.url + '/');
    assert.equal(r?.status(), 401);
  });

  await page.goto(`${d.url}/?token=${d.token}`);
  assert.equal(new URL(page.url()).search, '', 'the token leaves the address bar');

  await t.test('create a VM from the default guest and start it', async () => {
    await page.fill('#create input[name=name]', 'webvm');
    await page.selectOption('#create select[name=guest]', 'default');
    await page.click('#create button[type=submit]');
    const card = page.locator('.vm[data-name="webvm"]');
    await card.locator('.state', { hasText: 'stopped' }).waitFor({ timeout: 20_000 });
    await card.locator('button[data-act=start]').click();
    await card.locator('.state', { hasText: 'running' }).waitFor({ timeout: 60_000 });
  });

  await t.test('type uname -m in the serial console and see i686', async () => {
    await terminalText(page, d, (s) => /tsvm:[^\n]*#\s*$/m.test(s), BOOT_LIMIT_MS, 'the shell prompt');
    await page.click('#terminal');
    await page.keyboard.type('uname -m');
    await page.keyboard.press('Enter');
    const text = await terminalText(page, d, (s) => /uname -m\s*\n\s*i686/.test(s), 60_000, "uname's answer");
    assert.match(text, /^i686\s*$/m);
    await page.waitForTimeout(2500); // one round of live figures for the picture
    // the card's figures name the VM's own process, as the API does
    const pid = ((await d.api('GET', '/api/vms/webvm')).json as { pid: number }).pid;
    await page.locator('.vm[data-name="webvm"] .figures', { hasText: new RegExp(`MiB RSS of \\d+ MiB · pid ${pid}\\b`) }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: docShot('web-ui.png') });
  });

  await t.test("the default guest's boot on the screen canvas: kernel text, equal to the daemon's screenshot", async () => {
    // the kernel prints its boot on the VGA text console too (console=tty0, vgacon on the text mode the board set)
    const screen = new EventLog(d.socket('/api/vms/webvm/screen'));
    const first = await screen.waitFor((m) => m.type === 'screen' && m.mode === 'text', 30_000, "webvm's text screen").finally(() => screen.ws.close());
    const rows = (first.changed as { text: string }[]).map((r) => r.text);
    const kernelLines = rows.filter((r) => /^\[\s*\d+\.\d{6}\] \S/.test(r));
    assert.ok(kernelLines.length >= 10, `the VGA text screen shows the kernel's boot messages:\n${rows.join('\n')}`);
    await page.click('.tabs button[data-tab=screen]');
    await sameAsScreenshot(page, 'webvm', "the default guest's boot screen");
    await page.click('.tabs button[data-tab=console]');
  });

  await t.test('save a snapshot of the running VM in the snapshot tab, revert to it', async () => {
    await page.click('.tabs button[data-tab=snapshots]');
    await page.fill('#snap-form input[name=name]', 'booted');
    await page.fill('#snap-form input[name=description]', 'at the shell');
    await page.click('#snap-form button[type=submit]');
    const node = page.locator('#snap-tree li[data-snap="booted"]');
    await node.waitFor({ timeout: 120_000 });
    assert.match(await node.innerText(), /running machine · at the shell/);
    assert.ok(await node.evaluate((el) => el.classList.contains('current')), 'the new snapshot is the current position');
    await node.locator('button[data-act=revert]').click();
    await page.waitForTimeout(1000);
    assert.equal(await page.locator('#message').innerText(), '', 'the revert reported no error');
    const tree = (await d.api('GET', '/api/vms/webvm/snapshots')).json as { current: string; snapshots: { id: string; name: string }[] };
    assert.equal(tree.snapshots.find((n) => n.name === 'booted')?.id, tree.current);
  });

  await t.test('stop it, then clone it: a full copy, and a linked clone on the snapshot', async () => {
    const card = page.locator('.vm[data-name="webvm"]');
    await card.locator('button[data-act=stop]').click();
    await card
      .locator('.state', { hasText: 'stopped' })
      .waitFor({ timeout: 60_000 })
      .catch(async (e: Error) => {
        throw new Error(`${e.message}\nthe VM's log:\n${(await d.api('GET', '/api/vms/webvm/log')).text}\nthe daemon's output:\n${d.child.tail()}`);
      });
    assert.equal(((await d.api('GET', '/api/vms/webvm')).json as { state: string }).state, 'stopped');
    const dialog = page.locator('#clone-dialog');
    await card.locator('button[data-act=clone]').click();
    assert.equal(await dialog.locator('input[name=name]').inputValue(), 'webvm-copy');
    await dialog.locator('button[type=submit]').click();
    await page.locator('.vm[data-name="webvm-copy"] .state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
    await card.locator('button[data-act=clone]').click();
    await dialog.locator('input[name=name]').fill('webvm-linked');
    await dialog.locator('input[name=linked]').check();
    await dialog.locator('select[name=snapshot]').selectOption('booted');
    await dialog.locator('button[type=submit]').click();
    await page.locator('.vm[data-name="webvm-linked"] .state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
    assert.ok(!(await dialog.isVisible()), 'the dialog closes');
    const tree = (await d.api('GET', '/api/vms/webvm/snapshots')).json as { snapshots: { name: string; sharedWith?: { name: string }[] }[] };
    assert.deepEqual(tree.snapshots.find((n) => n.name === 'booted')?.sharedWith?.map((c) => c.name), ['webvm-linked'], 'the linked clone is based on booted');
  });

  await t.test('the screen tab draws the text screen and takes keys; a phone-sized window keeps the controls', async () => {
    await page.fill('#create input[name=name]', 'bios');
    await page.selectOption('#create select[name=guest]', 'firmware');
    await page.click('#create button[type=submit]');
    const card = page.locator('.vm[data-name="bios"]');
    await card.locator('button[data-act=start]').click();
    await card.locator('.state', { hasText: 'running' }).waitFor({ timeout: 60_000 });
    await page.click('.tabs button[data-tab=screen]');
    // (evaluated in the page: a string, since this test is compiled without the DOM types)
    const litPixels = `(() => {
      const c = document.getElementById('screen');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 300) n++;
      return n;
    })()`;
    let lit = 0;
    for (let i = 0; i < 60 && lit < 200; i++) {
      await page.waitForTimeout(1000);
      lit = (await page.evaluate(litPixels)) as number;
    }
    assert.ok(lit >= 200, `the canvas shows SeaBIOS's text (${lit} bright pixels)`);
    // SeaBIOS's boot screen: the canvas is the daemon's screenshot, pixel for pixel, font and all
    await sameAsScreenshot(page, 'bios', "SeaBIOS's text screen");
    const shot = await d.api('GET', '/api/vms/bios/screenshot');
    assert.equal(shot.status, 200);
    await page.setViewportSize({ width: 390, height: 800 });
    assert.ok(await card.locator('button[data-act=stop]').isVisible());
    await page.locator('.vm[data-name="webvm"] button[data-act=clone]').click();
    // the dialog opens once the source's snapshot list has come back
    await page.locator('#clone-dialog').waitFor({ state: 'visible', timeout: 10_000 });
    const box = await page.locator('#clone-dialog').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the clone dialog fits the phone's width: ${JSON.stringify(box)}`);
    await page.locator('#clone-dialog button[value=cancel]').click();
    assert.ok(!(await page.locator('#clone-dialog').isVisible()), 'Cancel closes the dialog');
    assert.equal(await page.locator('#progress .bar').count(), 0, `no progress bar is left: ${await page.locator('#progress').innerText()}`);
    // for the picture: SeaBIOS without a disk reboots over and over, blanking its screen; take it while text shows
    for (let i = 0; i < 30 && ((await page.evaluate(litPixels)) as number) < 200; i++) await page.waitForTimeout(500);
    await page.screenshot({ path: docShot('web-ui-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 760 });
    await card.locator('button[data-act=stop]').click();
    await card.locator('.state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
  });

  assert.deepEqual(errors, [], 'the page threw no errors');
});

test("the web console: a graphics screen arrives as tiles, matches the screenshot, and the mouse and keys reach the guest; the card's buttons, snapshot delete, screenshot link, progress bar, ISO upload, networks", async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: tools/setup.sh installs Debian's chromium`);
  const dir = mkdtempSync(join(tmpdir(), 'tsvm-paint-'));
  const d = await new Daemon().ready();
  t.after(() => d.child.kill());
  const machine = { version: 1, memoryBytes: 16 * 1048576, bios: paintRom(dir), vgaBios: null, linux: null, boot: 'c', drives: {}, rtcEpochSec: 1_700_000_000, serial: 'none', debugcon: null, postcodes: null };
  assert.equal((await d.api('POST', '/api/vms', { name: 'paint', machine })).status, 201);
  const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'tsvm-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (dlg) => void dlg.accept()); // the confirm() of a Delete
  // everything the guest prints on COM1, from the console socket (its backlog, then as it comes)
  const serial = { text: '' };
  const con = d.socket('/api/vms/paint/console');
  con.on('message', (b: Buffer) => (serial.text += b.toString('latin1')));
  t.after(() => con.close());
  await opened(con);
  /** What the guest printed after `from`, once it passes `ok`. */
  const printed = async (from: number, ok: (s: string) => boolean, what: string): Promise<string> => {
    for (let i = 0; i < 60; i++) {
      const s = serial.text.slice(from);
      if (ok(s)) return s;
      await page.waitForTimeout(500);
    }
    throw new Error(`the guest printed no ${what}; after the mark it printed ${JSON.stringify(serial.text.slice(from))}`);
  };
  /** Wait until the guest has printed nothing for a second; returns where its output ends. */
  const quiet = async (): Promise<number> => {
    for (let n = -1; n !== serial.text.length; ) {
      n = serial.text.length;
      await page.waitForTimeout(1000);
    }
    return serial.text.length;
  };
  await page.goto(`${d.url}/?token=${d.token}`);
  const card = page.locator('.vm[data-name="paint"]');
  await card.locator('button[data-act=start]').click();
  await card.locator('.state', { hasText: 'running' }).waitFor({ timeout: 60_000 });
  await terminalText(page, d, (s) => /ready/.test(s), 60_000, "the guest's ready");
  await page.click('.tabs button[data-tab=screen]');

  await t.test('the painted VBE frame on the canvas is the screenshot, pixel for pixel', async () => {
    await sameAsScreenshot(page, 'paint', 'the first frame');
    assert.deepEqual(await page.evaluate('[document.getElementById("screen").width, document.getElementById("screen").height]'), [160, 100]);
  });

  await t.test('moving the mouse over the canvas: the guest gets PS/2 packets, and the changed tiles reach the canvas', async () => {
    const white0 = (await page.evaluate(WHITE_PIXELS)) as number;
    const box = await page.locator('#screen').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + 20, box.y + 20);
    await page.mouse.move(box.x + 60, box.y + 40, { steps: 4 });
    await page.mouse.down();
    await page.mouse.up();
    // the ACK (FA) of the enable, then packets: a first byte with bit 3 set, and the moves
    await page.click('.tabs button[data-tab=console]');
    const text = await terminalText(page, d, (s) => /ready\s+FA( [0-9A-F]{2}){3,}/.test(s), 30_000, 'mouse packets printed by the guest');
    assert.match(text, /ready\s+FA [0-9A-F]{2} /);
    await page.click('.tabs button[data-tab=screen]');
    let white = white0;
    for (let i = 0; i < 30 && white <= white0; i++) {
      await page.waitForTimeout(500);
      white = (await page.evaluate(WHITE_PIXELS)) as number;
    }
    assert.ok(white > white0, `the guest painted squares and the canvas shows them (${white0} -> ${white} white pixels)`);
    await sameAsScreenshot(page, 'paint', 'after the mouse moved');
  });

  await t.test("a key typed on the canvas and the Ctrl-Alt-Del button reach the guest's keyboard controller as scan codes", async () => {
    await page.click('#screen'); // focus: the click is a mouse packet too, so let it pass first
    let from = await quiet();
    await page.keyboard.press('KeyA');
    // the paint ROM leaves the i8042's command byte as reset left it, without XLATE: the keyboard's
    // own set 2 reaches the guest, A as 1C and F0 1C (a typematic repeat of the make code allowed)
    const a = await printed(from, (s) => /F0 1C $/.test(s), "A's break code");
    assert.match(a, /^1C (1C )*F0 1C $/, "A's make and break codes, nothing else");
    from = await quiet();
    await page.click('#cad');
    // Ctrl, Alt, Delete (E0 71) down, then up in the other order
    const cad = await printed(from, (s) => /F0 14 $/.test(s), "Ctrl's break code");
    assert.match(cad, /^14 11 E0 71 (E0 71 )*E0 F0 71 F0 11 F0 14 $/, 'the make and break codes of Ctrl-Alt-Del');
    // and the serial console tab shows what the guest printed (as xterm.js draws it on a frame
    // after the tab shows, wrapping the guest's hex at 80 columns: compared without white space)
    await page.click('.tabs button[data-tab=console]');
    const codes = (a + cad).replace(/\s/g, '');
    await terminalText(page, d, (s) => s.replace(/\s/g, '').endsWith(codes), 10_000, `the codes ${codes} at the end of the serial console`);
    await page.click('.tabs button[data-tab=screen]');
  });

  await t.test("the screenshot link downloads the daemon's screenshot of the screen", async () => {
    await quiet(); // the guest has painted its last square
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('#shot')]);
    assert.equal(download.suggestedFilename(), 'paint.png');
    const png = readFileSync(await download.path());
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [160, 100], "the screen's size");
    const shot = await d.api('GET', '/api/vms/paint/screenshot');
    assert.ok(Buffer.from(shot.bytes).equals(png), "the download is the daemon's screenshot, byte for byte");
  });

  await t.test("Pause, Resume, Power off and Reset on the VM's card", async () => {
    await card.locator('button[data-act=pause]').click();
    await card.locator('.state', { hasText: 'paused' }).waitFor({ timeout: 10_000 });
    assert.ok(await card.locator('button[data-act=pause]').isDisabled(), 'a paused VM offers no Pause');
    // a paused guest does not run: a key typed now is printed only once it resumes
    // (the canvas gets the focus without a click, whose mouse packet would be printed too)
    await page.focus('#screen');
    let from = await quiet();
    await page.keyboard.press('KeyB');
    await page.waitForTimeout(1500);
    assert.equal(serial.text.slice(from), '', 'the paused guest printed nothing');
    await card.locator('button[data-act=resume]').click();
    await card.locator('.state', { hasText: 'running' }).waitFor({ timeout: 10_000 });
    assert.ok(await card.locator('button[data-act=resume]').isDisabled(), 'a running VM offers no Resume');
    assert.match(await printed(from, (s) => /F0 32 $/.test(s), "B's break code once resumed"), /^32 (32 )*F0 32 $/);
    assert.equal(((await d.api('GET', '/api/vms/paint')).json as { state: string }).state, 'running');

    // the power button: the ROM has no ACPI and goes on; the page reports no error and the log says the button was pressed
    await card.locator('button[data-act=powerdown]').click();
    await page.click('.tabs button[data-tab=log]');
    await page.locator('#log', { hasText: 'ACPI power button pressed' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#message').innerText(), '', 'Power off reported no error');
    assert.equal(await card.locator('.state').innerText(), 'running', 'the ROM ignores the power button');

    // reset: the ROM starts over: it says ready again, enables the mouse (whose ACK, FA, it prints)
    // and paints its gradient afresh with one square, the ACK's, where there were ten
    await page.click('.tabs button[data-tab=screen]');
    from = await quiet();
    const SQUARE = 16 * 16;
    assert.equal((await page.evaluate(WHITE_PIXELS)) as number, 10 * SQUARE, 'all ten squares before the reset');
    await card.locator('button[data-act=reset]').click();
    assert.equal(await printed(from, (s) => /ready\n.. $/.test(s), "'ready' and the ACK after the reset"), 'ready\nFA ');
    let white = -1;
    for (let i = 0; i < 30 && white !== SQUARE; i++) {
      await page.waitForTimeout(500);
      white = (await page.evaluate(WHITE_PIXELS)) as number;
    }
    assert.equal(white, SQUARE, 'the canvas shows the fresh gradient and one square');
    await sameAsScreenshot(page, 'paint', 'after the reset');
    assert.equal(await card.locator('.state').innerText(), 'running');
    assert.equal(await page.locator('#message').innerText(), '', 'Reset reported no error');
    await page.click('.tabs button[data-tab=console]');
    await terminalText(page, d, (s) => /ready[^]*ready/.test(s), 10_000, "the second 'ready' in the serial console");
  });

  await t.test('the snapshot tab: save two snapshots of the running ROM VM, delete one', async () => {
    await page.click('.tabs button[data-tab=snapshots]');
    for (const name of ['one', 'two']) {
      await page.fill('#snap-form input[name=name]', name);
      await page.click('#snap-form button[type=submit]');
      await page.locator(`#snap-tree li[data-snap="${name}"].current`).waitFor({ timeout: 60_000 });
    }
    const two = page.locator('#snap-tree li[data-snap="two"]');
    await two.locator('button[data-act=delete]').click();
    await two.waitFor({ state: 'detached', timeout: 30_000 });
    await page.locator('#snap-tree li[data-snap="one"].current').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#message').innerText(), '', 'the delete reported no error');
    const tree = (await d.api('GET', '/api/vms/paint/snapshots')).json as { current: string; snapshots: { id: string; name: string }[] };
    assert.deepEqual(tree.snapshots.map((n) => n.name), ['one'], "two left the API's tree");
    assert.equal(tree.current, tree.snapshots[0].id, 'the current position moved up to one');
  });

  await t.test('create a VM from an ISO uploaded in the create form', async () => {
    const iso = new Uint8Array(1 << 20);
    iso.set([1, 0x43, 0x44, 0x30, 0x30, 0x31, 1], 0x8000);
    writeFileSync(join(dir, 'installer.iso'), iso);
    await page.fill('#create input[name=name]', 'fromiso');
    await page.selectOption('#create select[name=guest]', 'iso');
    await page.setInputFiles('#create input[name=iso]', join(dir, 'installer.iso'));
    await page.click('#create button[type=submit]');
    await page.locator('.vm[data-name="fromiso"] .state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#message').innerText(), '', 'no error reported');
    const cfg = JSON.parse(readFileSync(join(d.dir, 'fromiso.tsvm', 'vm.json'), 'utf8')) as { spec: { drives: Record<string, { file: string }> } };
    assert.equal(readFileSync(join(d.dir, 'fromiso.tsvm', cfg.spec.drives.cdrom.file)).length, 1 << 20, 'the uploaded image is in the folder');
  });
  await t.test("an upload's progress bar: up while the image comes, gone when the VM is made", async () => {
    // another client's upload, sent in two halves: the page shows the bar between them
    const iso = new Uint8Array(1 << 20);
    iso.set([1, 0x43, 0x44, 0x30, 0x30, 0x31, 1], 0x8000);
    const u = new URL(d.url);
    const req = request({ host: u.hostname, port: u.port, path: '/api/vms/slowiso/iso?memoryMiB=64', method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/octet-stream', 'content-length': String(iso.length) } });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    req.write(iso.subarray(0, iso.length / 2));
    const bar = page.locator('#progress .bar', { hasText: 'slowiso: upload 50% (512 KiB of 1.0 MiB)' });
    await bar.waitFor({ timeout: 30_000 });
    assert.equal(await bar.locator('progress').evaluate((p) => (p as unknown as { value: number }).value), 50);
    req.end(iso.subarray(iso.length / 2));
    assert.equal(await status, 201);
    await page.locator('.vm[data-name="slowiso"] .state', { hasText: 'stopped' }).waitFor({ timeout: 30_000 });
    await page.locator('#progress .bar').first().waitFor({ state: 'detached', timeout: 30_000 });
    assert.equal(await page.locator('#progress .bar').count(), 0, `no progress bar is left: ${await page.locator('#progress').innerText()}`);
  });

  await t.test('private networks: add one in the panel, create a default-guest VM on it, delete it once no VM uses it; a phone-sized window fits the panel', async () => {
    assert.ok(findDefaultImage(), 'the default guest is not built (test/run.js builds it with tsvm image build)');
    const form = page.locator('#net-form');
    await form.locator('input[name=name]').fill('lab');
    await form.locator('input[name=dhcp]').fill('10.0.9.0');
    await form.locator('button[type=submit]').click();
    await page.locator('#message', { hasText: "'10.0.9.0' is not a subnet like 10.0.3.0/24" }).waitFor({ timeout: 10_000 });
    await form.locator('input[name=dhcp]').fill('10.0.9.0/24');
    await form.locator('button[type=submit]').click();
    const lab = page.locator('#net-list li[data-net="lab"]');
    await lab.locator('.net-meta', { hasText: 'DHCP 10.0.9.0/24 · no VMs' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#message').innerText(), '', 'the good request cleared the error');

    await page.fill('#create input[name=name]', 'netvm');
    await page.selectOption('#create select[name=guest]', 'default');
    await page.selectOption('#create select[name=network]', 'lab');
    await page.click('#create button[type=submit]');
    const card = page.locator('.vm[data-name="netvm"]');
    await card.locator('.net', { hasText: 'on network lab' }).waitFor({ timeout: 60_000 });
    await lab.locator('.net-meta', { hasText: 'VMs: netvm' }).waitFor({ timeout: 10_000 });
    assert.ok(await lab.locator('button[data-act=delete]').isDisabled(), "a network a VM uses offers no Delete");
    const cfg = JSON.parse(readFileSync(join(d.dir, 'netvm.tsvm', 'vm.json'), 'utf8')) as { spec: { nics: { model: string; net: string; network: string }[] } };
    assert.deepEqual(cfg.spec.nics.map((n) => [n.model, n.net, n.network]), [['virtio-net-pci', 'switch', 'lab']], "the VM's NIC is on lab");

    await page.setViewportSize({ width: 390, height: 800 });
    const box = await page.locator('#networks').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the networks panel fits the phone's width: ${JSON.stringify(box)}`);
    assert.ok(await page.locator('#create select[name=network]').isVisible(), 'the network choice is there');
    await page.locator('#networks').scrollIntoViewIfNeeded();
    await page.screenshot({ path: docShot('web-ui-networks.png') });
    await page.setViewportSize({ width: 1100, height: 760 });

    await card.locator('button[data-act=delete]').click();
    await card.waitFor({ state: 'detached', timeout: 10_000 });
    await lab.locator('.net-meta', { hasText: 'no VMs' }).waitFor({ timeout: 10_000 });
    await lab.locator('button[data-act=delete]').click();
    await lab.waitFor({ state: 'detached', timeout: 10_000 });
    assert.deepEqual(JSON.parse(readFileSync(join(d.dir, 'networks.json'), 'utf8')), {}, 'lab left networks.json');
  });
  assert.deepEqual(errors, [], 'the page threw no errors');
});
