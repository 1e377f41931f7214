// `bosun image build`: the images a real node runs, written without Docker or a registry.
import { Command, InvalidArgumentError } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const IMAGES = ['operator', 'busybox', 'pause', 'httpd'] as const;
type ImageName = (typeof IMAGES)[number];

function imageArg(v: string, prev: ImageName[] = []): ImageName[] {
  if (!(IMAGES as readonly string[]).includes(v)) throw new InvalidArgumentError(`an image is one of ${IMAGES.join(', ')}`);
  return [...prev, v as ImageName];
}

/** `bosun image`: container images written as docker-archives, without Docker. */
export function imageCommand(): Command {
  const cmd = new Command('image').description('container images written without Docker or a registry (docker-archives)');
  cmd
    .command('build')
    .description(
      'write the operator image (dist/ + production node_modules + Node, as the Dockerfile), busybox, pause and httpd as docker-archives',
    )
    .argument('[images...]', `which images: ${IMAGES.join(', ')} (default: all)`, imageArg)
    /** Where the archives are written. */
    .option('--out <dir>', 'directory for the .tar archives (docker load and ctr images import read them)', '.bosun/images')
    /** Imports them into a cluster's real node as well, under the names the manifests use. */
    .option('--import <dir>', 'also import them into the real node of the cluster in <dir> (bosun cluster up --node real)')
    .addHelpText(
      'after',
      '\nExamples:\n  bosun image build operator --import .bosun/cluster   then: make deploy IMG=ghcr.io/bosun-dev/bosun:0.1.0\n  bosun image build busybox --out /tmp/images',
    )
    .action(async (names: ImageName[] | undefined, o: { out: string; import?: string }) => {
      const [{ imageArchive, busyboxImage, httpdImage, pauseImage }, { operatorImage }] = await Promise.all([
        import('../image/archive.js'),
        import('../image/operator.js'),
      ]);
      const progress = (l: string) => process.stderr.write(`${l}\n`);
      const want = names?.length ? names : [...IMAGES];
      const busybox = want.some((n) => n === 'busybox' || n === 'httpd')
        ? (await (await import('../node/prereqs.js')).ensureHostPrograms(progress)).busybox
        : '';
      const pause = want.includes('pause')
        ? (await (await import('../node/programs.js')).resolveNodePrograms(progress, ['pause'])).pause
        : '';
      const out = resolve(o.out);
      await mkdir(out, { recursive: true });
      for (const name of want) {
        const spec =
          name === 'operator'
            ? await operatorImage(process.cwd())
            : name === 'busybox'
              ? await busyboxImage(busybox)
              : name === 'httpd'
                ? await httpdImage(busybox)
                : await pauseImage(pause);
        const img = imageArchive(spec);
        const file = join(out, `${name}.tar`);
        await writeFile(file, img.archive);
        process.stdout.write(`${spec.ref}  ${img.configDigest}  ${file}\n`);
        if (o.import) {
          await (await import('../node/realnode.js')).importImage(resolve(o.import), spec);
          process.stdout.write(`  imported into the real node of ${resolve(o.import)}\n`);
        }
      }
    });
  return cmd;
}
