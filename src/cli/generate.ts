import { resolve } from 'node:path';
import { Command } from 'commander';
import { RESOURCES } from '../../operators/index.js';
import { checkCrds, generateCrds } from '../crd/generate.js';

/** `bosun generate`: write the CRD manifests from the TypeScript resource definitions. */
export function generateCommand(): Command {
  return (
    new Command('generate')
      .description('write config/crd/*.yaml from the TypeScript resource definitions (one source of truth)')
      /** Where the CRD files go. */
      .option('--out <dir>', 'output directory for CRDs', 'config/crd')
      /** Check only: exit 1 when the files differ from what generation gives. */
      .option('--check', 'do not write; fail when the checked-in files are stale')
      .addHelpText('after', '\nExamples:\n  bosun generate\n  bosun generate --check')
      .action(async (o: { out: string; check?: boolean }) => {
        const out = resolve(o.out);
        if (o.check) {
          const stale = await checkCrds(RESOURCES, out);
          if (stale.length) {
            process.stderr.write(`stale CRD files (run: bosun generate):\n${stale.map((f) => `  ${f}`).join('\n')}\n`);
            process.exitCode = 1;
          } else process.stdout.write(`CRDs in ${out} are up to date\n`);
          return;
        }
        for (const f of await generateCrds(RESOURCES, out)) process.stdout.write(`wrote ${f}\n`);
      })
  );
}
