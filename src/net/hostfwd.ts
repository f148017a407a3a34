/**
 * QEMU's `hostfwd=` for the user-mode network: the spec and its parser,
 * apart from the NAT (slirp.ts) so that validating a machine spec does not
 * load the network stack.
 */
import { ip4 } from './wire.js';

export interface HostForward {
  proto: 'tcp';
  /** Host address to listen on ('' = all, as QEMU). */
  hostAddr: string;
  hostPort: number;
  /** Guest address ('' = the DHCP address). */
  guestAddr: string;
  guestPort: number;
}

/** Parse one `hostfwd=` value: `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`. */
export function parseHostForward(s: string): HostForward {
  const m = /^(tcp|udp)?:([^:]*):(\d+)-([^:]*):(\d+)$/.exec(s);
  if (!m) throw new RangeError(`hostfwd '${s}' is not of the form tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (e.g. tcp::8080-:80)`);
  if (m[1] === 'udp') throw new RangeError(`hostfwd '${s}': UDP forwards are not supported yet; forward TCP`);
  const hp = Number(m[3]);
  const gp = Number(m[5]);
  if (hp < 1 || hp > 65535 || gp < 1 || gp > 65535) throw new RangeError(`hostfwd '${s}': ports are 1..65535`);
  if (m[4]) ip4(m[4]);
  return { proto: 'tcp', hostAddr: m[2], hostPort: hp, guestAddr: m[4], guestPort: gp };
}
