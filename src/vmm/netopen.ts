/** The host side of a spec's NICs (netspec.ts): the user-mode network, switch and socket backends, pcap dumps. */
import { isAbsolute, resolve } from 'node:path';
import type { NicConfig } from '../board/machine.js';
import type { NetBackend } from '../devices/backends.js';
import { UserNet } from '../net/slirp.js';
import { parseHostForward } from '../net/hostfwd.js';
import { DumpBackend } from '../net/dump.js';
import { SocketNet, parseHostPort } from '../net/socket.js';
import { nodeNetHost, openDumpFile } from '../host/node/net.js';
import { VmConfigError } from './spec.js';
import { parseMac, switchAddr, type NicSpec } from './netspec.js';
import { randomMac } from './mac.js';

/**
 * Open the NICs' backends: a user-mode network each, with its forwards
 * listening (a listen failure, such as a port in use, is reported through
 * onWarning as it happens) and its pcap file open.
 */
export function openNics(specs: readonly NicSpec[], baseDir: string, onWarning?: (m: string) => void): { nics: NicConfig[]; close: () => void } {
  const opened: NetBackend[] = [];
  const nics: NicConfig[] = [];
  try {
    specs.forEach((s, i) => {
      const user =
        s.net === 'switch'
          ? new SocketNet(nodeNetHost, { connect: switchAddr(s, baseDir) })
          : s.net === 'socket'
            ? new SocketNet(nodeNetHost, s.listen !== undefined ? { listen: parseHostPort(s.listen) } : { connect: parseHostPort(s.connect as string) })
            : new UserNet(nodeNetHost, { hostfwd: s.hostfwd.map(parseHostForward), restrict: s.restrict });
      user.onLog = (l) => onWarning?.(l);
      user.start().catch((e: Error) => onWarning?.(`nic ${i}: ${e.message}`));
      let backend: NetBackend = user;
      opened.push(user);
      if (s.dump) {
        const path = isAbsolute(s.dump) ? s.dump : resolve(baseDir, s.dump);
        try {
          backend = new DumpBackend(user, openDumpFile(path), () => Date.now());
        } catch (e) {
          throw new VmConfigError(`nic ${i}`, `cannot write the packet dump ${path}: ${(e as Error).message}`);
        }
        opened[opened.length - 1] = backend;
      }
      // two VMs on one switch must not share QEMU's default MAC: a switch NIC given none gets a random one
      const mac = s.mac ?? (s.net === 'switch' ? randomMac() : null);
      if (!s.mac && mac) onWarning?.(`nic ${i}: on the switch with MAC ${mac} (give mac= to keep one)`);
      nics.push({ model: s.model, mac: mac ? parseMac(`nic ${i}`, mac) : undefined, backend });
    });
  } catch (e) {
    for (const b of opened) b.close();
    throw e;
  }
  return { nics, close: () => opened.forEach((b) => b.close()) };
}
