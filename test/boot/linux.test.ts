// The default guest as a person meets it on a new machine: `tsvm run` with no
// options and an empty cache builds the Debian-based image, boots Linux, and
// gives a shell on the terminal. The test types commands at the shell over the
// CLI's stdin and reads their output, then powers the guest off and checks the
// exit status. The whole run happens under test/helpers/no-guest-exec, which
// makes executing a guest (i386) binary on the host impossible and logs every
// program tsvm starts: the image must build and boot without one, on any host.
// Waits are bounded generously (the host may be slow); nothing is timed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { PROMPT, ROOT, TsvmChild } from '../helpers/child.js';

// Kernel messages at warning level or worse that the platform causes by design,
// each explained in docs/guest.md ("Known boot messages caused by the platform").
const KNOWN_WARNINGS: RegExp[] = [
  /L1TF: Kernel not compiled for PAE\. No mitigation for L1TF/,
  /mce: Unable to init MCE device \(rc: -5\)/,
];
/** The host programs the image build may start: apt's clients, dpkg, and xz for the kernel payload (docs/guest.md). */
const HOST_TOOLS = new Set(['apt-get', 'apt-cache', 'dpkg', 'dpkg-deb', 'xz']);

test('the default guest boots to a shell, runs programs, and powers off with exit status 0', { timeout: 1_800_000 }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'tsvm-cache-'));
  const execLog = join(cache, 'exec.log');
  const s = new TsvmChild(['run', '-timeout', '1500'], {
    nodeArgs: ['--import', join(ROOT, 'dist/test/helpers/no-guest-exec.js')],
    env: { ...process.env, XDG_CACHE_HOME: cache, TSVM_EXEC_LOG: execLog },
  });
  const run = (cmd: string) => s.shell(cmd);
  try {
    await s.waitFor(PROMPT, 0, 1_200_000, 'the shell prompt');
    // the image was built in the empty cache, starting only host programs, none of the packages' files
    assert.match(s.out, /default guest built \(Linux 6\./);
    assert.ok(existsSync(execLog), 'the image build started programs (apt-get at least)');
    const started = readFileSync(execLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { cmd: string; refused?: string });
    assert.deepEqual(started.filter((e) => e.refused), [], 'programs refused by no-guest-exec');
    assert.deepEqual([...new Set(started.map((e) => basename(e.cmd)))].filter((c) => !HOST_TOOLS.has(c)), [], 'programs other than apt, dpkg and xz');
    assert.ok(started.some((e) => basename(e.cmd) === 'dpkg-deb'), 'the packages were unpacked with dpkg-deb');

    assert.match(s.out, /Linux version 6\.\d+\.\d+-\d+-686 .*Debian/);
    assert.match(s.out, /tsvm default guest ready/);

    const uname = await run('uname -a');
    assert.match(uname, /Linux tsvm 6\.\d+\.\d+-\d+-686 #1 SMP .* i686 GNU\/Linux/);

    const cpuinfo = await run('cat /proc/cpuinfo');
    assert.match(cpuinfo, /vendor_id\s*: GenuineIntel/);
    assert.match(cpuinfo, /model name\s*: tsvm virtual IA-32 processor/);
    assert.match(cpuinfo, /flags\s*:.*\bfpu\b.*\btsc\b.*\bcx8\b.*\bcmov\b.*\bhypervisor\b/);
    assert.doesNotMatch(s.out, /vendor_id .* unknown|Your system may be unstable/);

    // busybox's applets were linked by the guest at boot, each where busybox installs it
    const links = await run('ls -l /bin/ls /sbin/poweroff /usr/bin/wget | cut -c1 | tr -d "\\n"; echo; busybox --list | wc -l');
    assert.match(links, /^lll$/m);
    assert.ok(Number(/^(\d+)$/m.exec(links)?.[1]) > 200, `busybox lists its applets: ${links}`);

    // the guest's clock starts at the host's time (UTC) and runs from there
    const guestNow = Number(/^(\d{9,})$/m.exec(await run('date -u +%s'))?.[1]);
    assert.ok(Math.abs(guestNow - Date.now() / 1000) < 3600, `guest clock ${new Date(guestNow * 1000).toISOString()} vs host ${new Date().toISOString()}`);

    // a generated file's checksum, computed in the guest and here
    const expected = createHash('md5')
      .update(Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join(''))
      .digest('hex');
    const md5 = await run('seq 1 5000 > /tmp/f && md5sum /tmp/f');
    assert.match(md5, new RegExp(`^${expected}  /tmp/f$`, 'm'));

    const arith = await run('i=0; n=0; while [ $i -lt 200 ]; do n=$((n + i * i)); i=$((i + 1)); done; echo sum=$n');
    assert.match(arith, /sum=2646700/);

    // floating point (x87: busybox awk's doubles), hot enough to run in compiled regions
    let harmonic = 0;
    for (let i = 1; i <= 20000; i++) harmonic += 1 / i;
    const fp = await run(`awk 'BEGIN { s = 0; for (i = 1; i <= 20000; i++) s += 1 / i; printf "h=%.9f\\n", s }'`);
    assert.match(fp, new RegExp(`^h=${harmonic.toFixed(9)}$`, 'm'));

    // interrupts go through the I/O APIC (the PIT on pin 2), and the local APIC timer ticks
    const irqs = await run('cat /proc/interrupts');
    assert.match(irqs, /^\s*0:\s+\d+\s+IO-APIC\s+2-edge\s+timer$/m);
    assert.match(irqs, /^\s*4:\s+\d+\s+IO-APIC\s+4-edge\s+ttyS0$/m);
    const loc = (text: string): number => Number(/^LOC:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    const irqsLater = await run('sleep 1; cat /proc/interrupts');
    assert.ok(loc(irqs) > 0 && loc(irqsLater) > loc(irqs), `local timer interrupts counting: ${loc(irqs)} then ${loc(irqsLater)}`);
    assert.match(s.out, /Enabling APIC mode: {2}Flat\. {2}Using 1 I\/O APICs/);
    assert.doesNotMatch(s.out, /WARNING:|Call Trace:|MP-BIOS bug/);

    const mods = await run('cat /proc/modules | cut -d" " -f1 | sort | tr "\\n" " "; echo');
    assert.match(mods, /\bata_piix\b/);

    // the empty CD drive tsvm always attaches to the secondary master: libata finds it, sr0 is there
    const cd = await run('ls /dev/sr0; dmesg | grep -E "ata2\\.00: ATAPI|Attached scsi CD-ROM"');
    assert.match(cd, /^\/dev\/sr0$/m);
    assert.match(cd, /ata2\.00: ATAPI: tsvm DVD-ROM/);
    assert.match(cd, /Attached scsi CD-ROM sr0/);

    // kernel messages at warning level or worse (dmesg -r shows the level): only those docs/guest.md lists
    const warnings = (await run("dmesg -r | grep '^<[0-4]>'")).split('\n').filter((l) => /^<\d>/.test(l));
    const unexplained = warnings.filter((l) => !KNOWN_WARNINGS.some((re) => re.test(l)));
    assert.deepEqual(unexplained, [], 'kernel warnings not listed in docs/guest.md');
    assert.doesNotMatch(await run('dmesg'), /Call Trace|WARNING:|BUG:|Oops/);

    const hostname = await run('hostname');
    assert.match(hostname, /^tsvm$/m);

    // a reboot: the machine loads the kernel and the initrd again (from what it
    // kept of their files, linuxboot.ts keptForReset) and the guest comes back
    // to a shell, its files as the image built them
    await run('echo before-reboot > /tmp/mark');
    const before = s.out.length;
    s.child.stdin.write('reboot -f\n');
    await s.waitFor(/tsvm default guest ready/, before, 600_000, 'the guest booting again after reboot -f');
    await s.waitFor(PROMPT, before, 600_000, 'the shell prompt after the reboot');
    assert.match(s.out.slice(before), /Linux version 6\.\d+\.\d+-\d+-686 .*Debian/);
    assert.match(await run('cat /tmp/mark 2>&1; uname -r'), /No such file or directory\n6\.\d+\.\d+-\d+-686/);

    s.child.stdin.write('poweroff\n');
    const code = await s.exit();
    assert.equal(code, 0, `tsvm ended with ${s.exitDescription}; output:\n${s.tail(2000)}`);
    assert.match(s.out, /reboot: Power down/);
  } finally {
    s.kill();
  }
});
