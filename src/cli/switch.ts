/**
 * `tsvm switch`: a virtual Ethernet switch in its own process, joining the
 * VMs of any number of `tsvm run` processes into one private network
 * (docs/net.md). It runs until interrupted; VMs reconnect when it comes back.
 */
import { formatHelp, parseOptions, UsageError, type OptionSpec } from './options.js';
import { NETWORK_NAME, networkSocketPath, parseStreamAddr } from '../vmm/netspec.js';
import { openSwitch, parseSwitchDhcp, type SwitchDhcpConfig } from '../vmm/switch.js';

const OPTIONS: OptionSpec[] = [
  { name: 'listen', value: 'unix:PATH|tcp:127.0.0.1:PORT', help: 'where VMs plug in: -nic switch,path=PATH or -nic switch,tcp=127.0.0.1:PORT' },
  { name: 'network', value: 'NAME', help: 'serve the named private network NAME (VMs join with -nic switch,network=NAME or "network": NAME in vm.json)' },
  { name: 'dhcp', value: 'SUBNET[,router=ADDR][,dns=ADDR]', help: "a DHCP server of the switch's own, e.g. 10.0.3.0/24 (server .1, leases from .2; no router unless asked)" },
  { name: 'quiet', value: null, help: 'do not log VMs joining and leaving' },
  { name: 'help', value: null, help: 'show this help' },
];

const USAGE = `Usage: tsvm switch -listen unix:PATH | -listen tcp:127.0.0.1:PORT | -network NAME [-dhcp SUBNET]

A private Ethernet network for VMs in other tsvm processes: a learning switch
that forwards frames between the VMs plugged into it and to nothing else.`;

export async function switchCommand(args: string[]): Promise<number> {
  const opts = parseOptions(args, OPTIONS, 'switch');
  if (opts.has('help')) {
    process.stdout.write(formatHelp(USAGE, OPTIONS));
    return 0;
  }
  const listen = opts.get('listen')?.[0];
  const network = opts.get('network')?.[0];
  if ((listen === undefined) === (network === undefined)) throw new UsageError("switch: give one of -listen unix:PATH|tcp:127.0.0.1:PORT and -network NAME (see 'tsvm switch --help')");
  if (network !== undefined && !NETWORK_NAME.test(network)) throw new UsageError(`switch: network '${network}' is not a name (letters, digits, '.', '_', '-')`);
  let at;
  try {
    at = listen !== undefined ? parseStreamAddr(listen, true) : { path: networkSocketPath(network as string) };
  } catch (e) {
    throw new UsageError(`switch: -listen ${(e as Error).message}`);
  }
  let dhcp: SwitchDhcpConfig | undefined;
  const d = opts.get('dhcp')?.[0];
  if (d !== undefined) {
    try {
      dhcp = parseSwitchDhcp(d);
    } catch (e) {
      throw new UsageError(`switch: -dhcp ${(e as Error).message}`);
    }
  }
  const log = opts.has('quiet') ? undefined : (l: string) => process.stderr.write(`tsvm switch: ${l}\n`);
  let sw;
  try {
    sw = await openSwitch(at, { dhcp, onLog: log });
  } catch (e) {
    throw new UsageError(`switch: ${(e as Error).message}`);
  }
  process.stdout.write(`tsvm switch: serving ${network !== undefined ? `network '${network}' on ` : ''}${sw.description}; Ctrl-C stops it\n`);
  // the listening socket does not hold the process open: this does, until a signal
  const keep = setInterval(() => {}, 1 << 30);
  await new Promise<void>((res) => {
    process.once('SIGINT', res);
    process.once('SIGTERM', res);
  });
  clearInterval(keep);
  sw.close();
  process.stdout.write('tsvm switch: stopped\n');
  return 0;
}
