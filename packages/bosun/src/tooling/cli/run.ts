import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadProject, ProjectModuleError } from './project.js';
import { parseAddress } from '../../manager/health.js';
import { LOG_FORMATS, resolveLogFormat, type LogFormat } from '../../telemetry/format.js';
import { createLogger } from '../../telemetry/logger.js';
import { Manager, type ManagerOptions } from '../../manager/manager.js';
import { webhookNames } from '../generate/webhook.js';
import { reportCacheSync } from './progress.js';
import { DEFAULT_LOCAL_WEBHOOK_ADDR, localRegistrationName, localWebhooks, webhooksOf, type LocalWebhooks } from '../webhook/local.js';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A Go-style duration ('15s', '1m30s', '500ms'), as kube-controller-manager's --leader-elect-* flags take, in ms. */
export function duration(v: string): number {
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v)
    throw new InvalidArgumentError(`expected a duration such as 15s, 1m30s or 500ms, got "${v}"`);
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS_MS[p[2]!]!, 0));
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Options of `bosun run`. */
export interface RunOptions {
  namespace: string[];
  kubeconfig?: string;
  context?: string;
  workers?: number;
  leaderElect?: boolean;
  leaderElectionNamespace?: string;
  /** How long a Lease holds without renewal, in ms. */
  leaderElectLeaseDuration?: number;
  /** How long the leader keeps trying to renew before it gives up leadership, in ms. */
  leaderElectRenewDeadline?: number;
  /** How often candidates try to acquire and the leader to renew, in ms. */
  leaderElectRetryPeriod?: number;
  metricsAddr: string;
  healthAddr: string;
  verbose?: boolean;
  logFormat?: LogFormat;
  standalone?: boolean;
  cacheSyncTimeout?: number;
  shutdownTimeout?: number;
  userAgent?: string;
  /** The project module (default: package.json's bosun.project). */
  from?: string;
  /** Where the webhook server listens, when the project declares webhooks or versions. */
  webhookAddr?: string;
  /** tls.crt, tls.key (and ca.crt) of the webhook server instead of local certificates. */
  webhookCertDir?: string;
  /** False (--no-webhooks): serve and register none. */
  webhooks?: boolean;
  /** False (--no-watch-list): the caches list, then watch. */
  watchList?: boolean;
  /** `[namespace/]name` of the Secret the manager keeps the webhook certificate in (config/certs-self), written to --webhook-cert-dir. */
  webhookCertsSecret?: string;
}

function defaultLeaseNamespace(): string {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
  } catch {
    return 'default';
  }
}

/**
 * The Manager's webhookCerts for --webhook-certs-secret: the Secret, in the Pod's namespace unless named, for the
 * Service `bosun generate` writes, injected into the configurations and CRDs of the webhooks this process serves.
 */
export function webhookCertsFor(
  o: RunOptions,
  project: { prefix?: string; namespace?: string },
  served: { webhooks: readonly { type: string }[]; versions: readonly { crdName: string }[] },
): NonNullable<ManagerOptions['webhookCerts']> {
  if (!o.webhookCertDir)
    throw new InvalidArgumentError(
      '--webhook-certs-secret needs --webhook-cert-dir: the directory the certificate from the Secret is written to and served from (config/certs-self sets both)',
    );
  const [first, second] = o.webhookCertsSecret!.split('/');
  // The Service is the Pod's (the generated manifests put both in one namespace); the Secret there unless named.
  const namespace = process.env.POD_NAMESPACE || project.namespace || defaultLeaseNamespace();
  const names = webhookNames(project.prefix ?? 'bosun');
  return {
    secret: { namespace: (second ? first : undefined) || namespace, name: (second ?? first)! },
    service: { namespace, name: names.service },
    validatingWebhookConfigurations: served.webhooks.some((w) => w.type === 'validating') ? [names.configuration] : [],
    mutatingWebhookConfigurations: served.webhooks.some((w) => w.type === 'mutating') ? [names.configuration] : [],
    crds: served.versions.map((v) => v.crdName),
  };
}

/** Runs the named operators in one manager until SIGINT/SIGTERM, then shuts down gracefully. */
export async function runOperators(names: string[], o: RunOptions): Promise<void> {
  const { module: project, source } = await loadProject(o.from);
  const operators = project.operators;
  if (!operators || !Object.keys(operators).length) {
    throw new ProjectModuleError(
      `${source}: no 'operators' export. Fix: export const operators = { name: { description, controllers: () => [...] } }`,
    );
  }
  const chosen = names.length ? names : [Object.keys(operators)[0]!];
  for (const n of chosen) {
    if (!operators[n]) throw new InvalidArgumentError(`unknown operator '${n}'; choose from: ${Object.keys(operators).join(', ')}`);
  }
  // Checked before anything connects, so the error names the flag rather than surfacing from the manager later.
  parseAddress(o.metricsAddr, '--metrics-addr');
  parseAddress(o.healthAddr, '--health-addr');
  if (o.webhookAddr) parseAddress(o.webhookAddr, '--webhook-addr');
  // No logger name: 'name' is the object's name on every reconcile line.
  const logger = createLogger({ verbose: o.verbose, format: o.logFormat });
  const leaderElect = o.leaderElect === true && o.standalone !== true;
  const specs = chosen.flatMap((n) => operators[n]!.controllers());
  const served = webhooksOf(specs, project);
  const webhooks: LocalWebhooks | undefined =
    o.webhooks !== false && (served.webhooks.length > 0 || served.versions.length > 0)
      ? await localWebhooks({
          ...served,
          addr: o.webhookAddr,
          certDir: o.webhookCertDir,
          kubeconfig: o.kubeconfig,
          context: o.context,
          serverUrl: (): string => mgr.client.server,
          name: localRegistrationName(project, chosen),
          namespace: project.namespace,
          logger,
        })
      : undefined;
  const mgr = new Manager({
    kubeconfig: o.kubeconfig,
    context: o.context,
    namespaces: o.namespace,
    workers: o.workers,
    metricsAddr: o.metricsAddr,
    healthAddr: o.healthAddr,
    logger,
    fieldManager: 'bosun',
    cacheSyncTimeoutMs: o.cacheSyncTimeout,
    watchList: o.watchList,
    shutdownTimeoutMs: o.shutdownTimeout,
    userAgent: o.userAgent,
    leaderElection: leaderElect
      ? {
          namespace: o.leaderElectionNamespace ?? defaultLeaseNamespace(),
          name: `bosun-${chosen.join('-')}`,
          leaseDurationMs: o.leaderElectLeaseDuration,
          renewDeadlineMs: o.leaderElectRenewDeadline,
          retryPeriodMs: o.leaderElectRetryPeriod,
        }
      : undefined,
    webhookServer: webhooks?.webhookServer,
    onWebhookServerStarted: webhooks?.onWebhookServerStarted,
    webhookCerts: webhooks && o.webhookCertsSecret ? webhookCertsFor(o, project, served) : undefined,
  });
  for (const spec of specs) mgr.add(spec);
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (ac.signal.aborted) {
      logger.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal: sig }, 'shutting down: finishing in-flight reconciles');
    ac.abort();
    // Before the server stops (the manager closes it last), so no write meets a registered webhook that is gone.
    void webhooks?.unregister();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  logger.info(
    { operators: chosen, namespaces: o.namespace.length ? o.namespace : 'all', leaderElect, server: mgr.client.server },
    'starting',
  );
  // A person watching a terminal gets a line every 2 s; a log collector every 5 s is enough.
  const text =
    resolveLogFormat(o.logFormat ?? ((process.env.BOSUN_LOG_FORMAT || 'auto') as LogFormat), process.stdout.isTTY === true) === 'text';
  const stopProgress = reportCacheSync(mgr.caches, logger, { intervalMs: text ? 2_000 : 5_000, signal: ac.signal });
  try {
    await mgr.start(ac.signal);
  } catch (err) {
    // Reconciles abandoned after a lost Lease may still hold timers; such a replica must exit, not linger.
    setTimeout(() => process.exit(1), 2_000).unref();
    throw err;
  } finally {
    stopProgress();
    await webhooks?.unregister();
  }
  logger.info('stopped');
}

/** `bosun run`: run operators against a cluster. */
export function runCommand(): Command {
  return (
    new Command('run')
      .description('run operators against a cluster (the kubeconfig chain, or in-cluster config)')
      .argument('[operators...]', "operators to run, by their name in the project module's 'operators' (default: its first)")
      /** The project module, when package.json's bosun.project does not name it. */
      .option('--from <module>', "module exporting 'operators' (default: package.json's bosun.project)")
      /** Restricts watches to these namespaces. */
      .option('-n, --namespace <ns>', 'watch only this namespace (repeatable; default: all)', collect, [] as string[])
      /** Kubeconfig file instead of the default chain. */
      .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
      /** Kubeconfig context instead of the current one. */
      .option('--context <name>', 'kubeconfig context to use')
      /** Concurrent reconciles per controller. */
      .option('--workers <n>', 'concurrent reconciles per controller (default 16)', positiveInt)
      /** Elect one active replica through a Lease, so replicas never act twice. */
      .option('--leader-elect', 'use leader election (a coordination.k8s.io Lease)')
      /** Namespace of the leader-election Lease. */
      .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: the pod namespace, else default)')
      /** Lease timings, as kube-controller-manager's flags of the same names: a standby takes over at most this long after the leader stops renewing. */
      .option('--leader-elect-lease-duration <duration>', 'how long a Lease holds without renewal (default 15s)', duration)
      /** A leader that cannot renew for this long stops acting; must be shorter than the lease duration. */
      .option('--leader-elect-renew-deadline <duration>', 'how long the leader retries renewal before it stops (default 10s)', duration)
      /** The pace of acquire and renew attempts. */
      .option('--leader-elect-retry-period <duration>', 'how often to try to acquire or renew the Lease (default 2s)', duration)
      /** Address for Prometheus metrics; '0' disables. */
      .option('--metrics-addr <addr>', "address of /metrics ('0' to disable)", ':8080')
      /** Address for the health probes; '0' disables. */
      .option('--health-addr <addr>', "address of /healthz and /readyz ('0' to disable)", ':8081')
      /** Address of the webhook server, served when the project declares webhooks or versions. */
      .option(
        '--webhook-addr <addr>',
        'address of the webhook server, when the project declares webhooks or versions (port 0: a free one)',
        DEFAULT_LOCAL_WEBHOOK_ADDR,
      )
      /** The webhook server's certificate files instead of local ones (in a cluster: the mounted cert-manager Secret). */
      .option(
        '--webhook-cert-dir <dir>',
        'tls.crt, tls.key (and ca.crt) of the webhook server (default: a local CA under the cluster directory, else .bosun/webhook)',
      )
      /** The manager keeps the webhook certificate itself in this Secret (config/certs-self): no cert-manager. */
      .option(
        '--webhook-certs-secret <[namespace/]name>',
        "keep the webhook certificate in this Secret (created, rotated, its CA injected), written to --webhook-cert-dir (namespace: $POD_NAMESPACE, else the project's)",
      )
      /** Serve none of the project's webhooks. Against a local API server they are otherwise registered there too. */
      .option('--no-webhooks', "do not serve the project's webhooks (served and, against a local API server, registered by default)")
      /** Fail when a watched kind cannot be listed for this long (missing RBAC or CRD). */
      .option(
        '--cache-sync-timeout <ms>',
        'exit with an error when the caches have not synced after this many ms (default 120000)',
        positiveInt,
      )
      /** An API server before 1.27 ignores sendInitialEvents, and a cache would wait for a state that never ends. */
      .option(
        '--no-watch-list',
        'fill the caches by list, then watch, instead of from the watch itself (for API servers before Kubernetes 1.27)',
      )
      /** How long a graceful stop waits for in-flight reconciles before aborting them. */
      .option('--shutdown-timeout <ms>', 'on SIGTERM, abort reconciles still running after this many ms (default 30000)', positiveInt)
      /** User-Agent of every request, so each replica's requests can be told apart in the audit log. */
      .option('--user-agent <ua>', 'User-Agent header of every API request (default: bosun)')
      /** Debug-level logs. */
      .option('-v, --verbose', 'debug logging')
      /** Readable lines or JSON; auto picks text on a terminal and JSON for pipes and log collectors. */
      .addOption(
        new Option(
          '--log-format <format>',
          'log lines as text or json (default: $BOSUN_LOG_FORMAT, else auto: text on a terminal, json otherwise)',
        ).choices(LOG_FORMATS),
      )
      /** Run without leader election, as kopf's --standalone. */
      .addOption(new Option('--standalone', 'no leader election (as kopf run --standalone)').conflicts('leaderElect'))
      .addHelpText(
        'after',
        '\nExamples:\n  bosun run message --kubeconfig .bosun/cluster/kubeconfig --standalone\n  bosun run message application --leader-elect -n default',
      )
      .action(async (names: string[], o: RunOptions) => runOperators(names, o))
  );
}
