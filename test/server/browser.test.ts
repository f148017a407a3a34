/**
 * The web console in real headless Chromium (Debian's chromium, driven with
 * playwright-core): open the printed URL with the token, create a VM from
 * the default guest, start it, type `uname -m` in the serial console and
 * see i686, save a snapshot and revert to it, stop it, clone it; then a bare
 * SeaBIOS VM's screen on the canvas. One Linux boot. Leaves screenshots of
 * the page in docs/web-ui.png and docs/web-ui-phone.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { Daemon } from '../helpers/daemon.js';
import { ROOT } from '../helpers/child.js';
import { findDefaultImage } from '../../src/vmm/image.js';

const CHROMIUM = '/usr/bin/chromium';
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
    await page.screenshot({ path: join(ROOT, 'docs', 'web-ui.png') });
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

  await t.test('stop it, then clone it', async () => {
    const card = page.locator('.vm[data-name="webvm"]');
    await card.locator('button[data-act=stop]').click();
    await card.locator('.state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
    assert.equal(((await d.api('GET', '/api/vms/webvm')).json as { state: string }).state, 'stopped');
    page.once('dialog', (dlg) => void dlg.accept('webvm-copy'));
    await card.locator('button[data-act=clone]').click();
    await page.locator('.vm[data-name="webvm-copy"] .state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
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
    const shot = await d.api('GET', '/api/vms/bios/screenshot');
    assert.equal(shot.status, 200);
    await page.click('#screen');
    await page.keyboard.press('Escape');
    await page.click('#cad');
    await page.setViewportSize({ width: 390, height: 800 });
    assert.ok(await card.locator('button[data-act=stop]').isVisible());
    await page.screenshot({ path: join(ROOT, 'docs', 'web-ui-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 760 });
    await card.locator('button[data-act=stop]').click();
    await card.locator('.state', { hasText: 'stopped' }).waitFor({ timeout: 60_000 });
  });

  assert.deepEqual(errors, [], 'the page threw no errors');
});
