/**
 * What the VM folder commands share: --dir, positional words split from
 * options, and opening NAME (or a folder's path) as a VM folder. Light on
 * purpose: `tsvm clone` imports it without the emulator.
 */
import { resolve } from 'node:path';
import { vmPath, VmFolder } from '../vmm/folder.js';
import { parseOptions, UsageError, type OptionSpec, type Parsed } from './options.js';

export const DIR: OptionSpec = { name: 'dir', value: 'DIR', help: 'where VM folders are (default: the current directory)' };

/** Split positional words from options (an option's value is not positional). */
export function split(args: string[], specs: OptionSpec[], command: string): { words: string[]; opts: Parsed } {
  const words: string[] = [];
  const rest: string[] = [];
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('-') && a.length > 1) {
      rest.push(a);
      const spec = byName.get(a.replace(/^--?/, ''));
      if (spec?.value !== null && spec !== undefined && i + 1 < args.length) rest.push(args[++i]);
    } else {
      words.push(a);
    }
  }
  return { words, opts: parseOptions(rest, specs, command) };
}

export function dirOf(opts: Parsed): string {
  return resolve(opts.get('dir')?.[0] ?? '.');
}

export function openVm(nameOrPath: string | undefined, opts: Parsed, command: string): VmFolder {
  if (!nameOrPath) throw new UsageError(`${command}: which VM? (tsvm ${command} NAME; tsvm list shows them)`);
  return VmFolder.open(vmPath(nameOrPath, dirOf(opts)));
}

