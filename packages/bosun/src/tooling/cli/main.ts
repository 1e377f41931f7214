import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../cluster/binaries.js';
import { KUBERNETES_VERSION } from '../cluster/versions.js';
import { clusterCommand } from './cluster.js';
import { imageCommand } from './image.js';
import { runCommand } from './run.js';
import { generateCommand } from './manifests.js';
import { crdCommand } from './crd.js';
import { createApiCommand, initCommand } from './scaffold.js';
import { learnCommand } from './learn.js';

/** The bosun package version, read from package.json. */
export function bosunVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Builds the `bosun` command tree. */
export function program(): Command {
  const prog = new Command('bosun')
    .description('bosun: write Kubernetes operators in TypeScript, and run them on a local control plane')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nExamples:\n  bosun cluster up        start a local control plane\n  bosun run message       run the Message operator\n  bosun version',
    );
  prog
    .command('version')
    .description('print the bosun version and the Kubernetes version its local cluster runs')
    .action(() => {
      process.stdout.write(`bosun ${bosunVersion()} (local cluster: Kubernetes ${KUBERNETES_VERSION})\n`);
    });
  prog.addCommand(clusterCommand());
  prog.addCommand(imageCommand());
  prog.addCommand(runCommand());
  prog.addCommand(generateCommand());
  prog.addCommand(crdCommand());
  prog.addCommand(initCommand());
  prog.addCommand(createApiCommand());
  prog.addCommand(learnCommand());
  pointAtHelp(prog, []);
  return prog;
}

// Commander prints only the error for a subcommand; the line after it says where the options are.
function pointAtHelp(cmd: Command, path: string[]): void {
  for (const sub of cmd.commands) {
    const at = [...path, sub.name()];
    sub.showHelpAfterError(`(bosun ${at.join(' ')} --help lists the options)`);
    pointAtHelp(sub, at);
  }
}

/** Runs the CLI; errors become one clear line and exit code 1 instead of a stack trace. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`bosun: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}\n`);
    if (process.env.BOSUN_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exitCode = 1;
  }
}
