// `bosun crd`: operations on a cluster's CRDs that generation cannot do, such as storage-version migration.
import { Command, InvalidArgumentError } from 'commander';
import { KubeClient } from '../../client/client.js';
import { migrateStorageVersion, type MigrationProgress } from '../evolve/migrate.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** Options of `bosun crd migrate`. */
export interface CrdMigrateOptions {
  kubeconfig?: string;
  context?: string;
  pageSize: number;
  concurrency: number;
}

function progressLine(p: MigrationProgress): string {
  return `${p.crd}: ${p.done}/${p.total} rewritten at ${p.version} (${Math.round(p.perSecond)}/s)`;
}

/** Runs `bosun crd migrate <crd>` until done; SIGINT or SIGTERM stops it cleanly, leaving storedVersions as it was. */
export async function runCrdMigrate(crd: string, o: CrdMigrateOptions, log: (line: string) => void): Promise<void> {
  const client = KubeClient.fromConfig({ kubeconfig: o.kubeconfig, context: o.context });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await migrateStorageVersion({
      client,
      crd,
      pageSize: o.pageSize,
      concurrency: o.concurrency,
      signal: stop.signal,
      progress: (p) => log(progressLine(p)),
    });
    if (r.rewritten === 0 && r.gone === 0 && r.storedVersionsBefore.join() === r.storedVersions.join()) {
      log(`${crd}: status.storedVersions is already [${r.storedVersions.join(', ')}]; nothing to migrate`);
      return;
    }
    const seconds = r.elapsedMs / 1000;
    log(
      `${crd}: ${r.rewritten} objects rewritten at ${r.storageVersion} in ${seconds.toFixed(1)} s (${Math.round(r.rewritten / Math.max(seconds, 0.001))}/s` +
        `${r.gone ? `, ${r.gone} deleted meanwhile` : ''}${r.restarts ? `, listing restarted ${r.restarts}x on an expired continue token` : ''}); ` +
        `status.storedVersions [${r.storedVersionsBefore.join(', ')}] -> [${r.storedVersions.join(', ')}]`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.close();
  }
}

/** `bosun crd`: operations on a cluster's CRDs (storage-version migration). */
export function crdCommand(): Command {
  const cmd = new Command('crd').description("operate on a cluster's CustomResourceDefinitions");
  cmd
    .command('migrate')
    .description(
      'rewrite every object of a CRD at its storage version (a no-op update each), then prune status.storedVersions to that version; safe to interrupt and rerun',
    )
    .argument('<crd>', 'the CRD name, <plural>.<group>')
    /** The kubeconfig of the cluster to migrate. */
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
    /** The kubeconfig context, when not its current-context. */
    .option('--context <name>', 'kubeconfig context to use')
    /** Objects per list page. */
    .option('--page-size <n>', 'objects per list page', positiveInt, 500)
    /** Rewrites in flight at once: the load the migration puts on the API server. */
    .option('--concurrency <n>', 'rewrites in flight at once', positiveInt, 8)
    .addHelpText(
      'after',
      [
        '',
        'Run it after the storage version of a CRD changed, before removing the old version from the CRD.',
        '',
        'Examples:',
        '  bosun crd migrate flighttickets.flights.com',
        '  bosun crd migrate flighttickets.flights.com --kubeconfig .bosun/cluster/kubeconfig --concurrency 4',
      ].join('\n'),
    )
    .action(async (crd: string, o: CrdMigrateOptions) => {
      await runCrdMigrate(crd, o, (l) => process.stdout.write(`${l}\n`));
    });
  return cmd;
}
