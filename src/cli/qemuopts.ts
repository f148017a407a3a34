/**
 * QEMU's option-value syntax, shared by -drive, -device, -netdev, -nic,
 * -chardev, -virtfs and -object: a comma-separated list where ",," stands for
 * a literal comma (QEMU's escape for file names), and on/off switches.
 */
import { UsageError } from './options.js';

/** Split `a,b=c,,d,e` into ['a', 'b=c,d', 'e']. */
export function splitQemuList(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ',') cur += text[i];
    else if (text[i + 1] === ',') {
      cur += ',';
      i++;
    } else {
      out.push(cur);
      cur = '';
    }
  }
  out.push(cur);
  return out;
}

/** An on/off switch as QEMU accepts it (on|yes|true, off|no|false); absent is off. */
export function onOff(v: string | undefined, what: string): boolean {
  if (v === undefined || v === 'off' || v === 'no' || v === 'false') return false;
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  throw new UsageError(`run: ${what}: '${v}' is not on or off`);
}
