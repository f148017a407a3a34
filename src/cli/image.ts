/** `tsvm image`: build or show the default guest image. */
import { buildDefaultImage, defaultImageDir, findDefaultImage, ImageError } from '../vmm/image.js';
import { StatusLine } from './status.js';
import { UsageError } from './options.js';

const HELP = `Usage: tsvm image <build|info>

  build   (re)build the default guest from Debian packages with apt-get:
          linux-image-686 (i386) and busybox-static:i386, into ${defaultImageDir()}
  info    show the cached default guest image
`;

export function imageCommand(args: string[]): number {
  const [sub] = args;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? 1 : 0;
  }
  if (sub === 'build') {
    const status = new StatusLine(process.stderr);
    try {
      const img = buildDefaultImage((m) => status.show(m));
      status.done(`default guest image built: Linux ${img.kernelVersion} in ${img.dir}`);
      return 0;
    } catch (e) {
      status.clear();
      if (e instanceof ImageError) throw new UsageError(`image build: ${e.message}`);
      throw e;
    }
  }
  if (sub === 'info') {
    const img = findDefaultImage();
    if (!img) {
      process.stdout.write(`no default guest image yet (it is built on the first 'tsvm run', or with 'tsvm image build')\n`);
      return 1;
    }
    process.stdout.write(`directory: ${img.dir}\nkernel:    ${img.kernel} (Linux ${img.kernelVersion})\ninitrd:    ${img.initrd}\ncmdline:   ${img.cmdline}\n`);
    return 0;
  }
  throw new UsageError(`image: unknown subcommand '${sub}' (see 'tsvm image --help')`);
}
