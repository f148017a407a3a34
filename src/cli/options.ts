/**
 * A small parser for QEMU-style options (`-m 256M`, `-bios FILE`, `-d cpu`).
 * Each option is declared once with its help text, so --help lists them all.
 */
export interface OptionSpec {
  name: string;
  /** Placeholder for the value, or null for a flag. */
  value: string | null;
  help: string;
  /** May be given more than once (values collect in order). */
  repeat?: boolean;
}

export class UsageError extends Error {}

export type Parsed = Map<string, string[]>;

export function parseOptions(args: string[], specs: OptionSpec[], command: string): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: Parsed = new Map();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.replace(/^--?/, '');
    const spec = a.startsWith('-') ? byName.get(name) : undefined;
    if (!spec) {
      throw new UsageError(`${command}: unknown option '${a}' (see 'tsvm ${command} --help')`);
    }
    let value = '';
    if (spec.value !== null) {
      if (i + 1 >= args.length) throw new UsageError(`${command}: option -${spec.name} needs a value: -${spec.name} ${spec.value}`);
      value = args[++i];
    }
    const prev = out.get(spec.name);
    if (prev && !spec.repeat) throw new UsageError(`${command}: option -${spec.name} was given twice`);
    out.set(spec.name, [...(prev ?? []), value]);
  }
  return out;
}

export function formatHelp(usage: string, specs: OptionSpec[]): string {
  const left = specs.map((s) => `  -${s.name}${s.value ? ' ' + s.value : ''}`);
  const w = Math.max(...left.map((l) => l.length)) + 2;
  return [usage, '', 'Options:', ...specs.map((s, i) => left[i].padEnd(w) + s.help)].join('\n') + '\n';
}
