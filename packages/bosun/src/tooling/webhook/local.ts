// What `bosun run` does with a project's webhooks: where the certificates come from, whether the API server can
// reach a server on this machine (so registering it makes sense), and the registration once the server listens.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { KubeClient } from '../../client/client.js';
import type { ControllerSpec } from '../../controller/builder.js';
import type { ManagerOptions } from '../../manager/manager.js';
import type { Logger } from '../../telemetry/logger.js';
import type { AdmissionWebhook, ApiVersions } from '../../webhook/declare.js';
import { ensureWebhookCerts, WEBHOOK_CERT_FILES } from './certs.js';
import { registerWebhooks, unregisterWebhooks, WebhookRegistrationError } from './register.js';
import { statusOf } from '../../client/errors.js';

/** Whether an API server URL is on this machine's loopback, so it can call a webhook server listening on 127.0.0.1. */
export function isLoopbackServer(serverUrl: string): boolean {
  let host: string;
  try {
    host = new URL(serverUrl).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * The directory of the local webhook certificates: `<cluster dir>/webhook` when the kubeconfig is the one a
 * `bosun cluster up` directory holds (its CA then lives beside the cluster it serves), else `.bosun/webhook`
 * under `cwd`.
 */
export function localCertDir(kubeconfig: string | undefined, cwd = process.cwd()): string {
  const file = kubeconfig ?? process.env.KUBECONFIG?.split(':').find(Boolean);
  if (file) {
    const dir = dirname(resolve(cwd, file));
    if (existsSync(join(dir, 'state.json')) && existsSync(join(dir, 'pki'))) return join(dir, 'webhook');
  }
  return resolve(cwd, '.bosun', 'webhook');
}

/** The address a local webhook server listens on when none is given: loopback only, a free port. */
export const DEFAULT_LOCAL_WEBHOOK_ADDR = '127.0.0.1:0';

/** The name of the configurations `bosun run` registers for a project: one per project, stable across runs. */
export function localRegistrationName(project: { prefix?: string }, operators: readonly string[]): string {
  const base = (project.prefix ?? operators.join('-'))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `bosun-local-${base || 'project'}`.slice(0, 253);
}

/**
 * The project's webhooks and versions that belong to the kinds `controllers` reconcile: `bosun run message` serves
 * none of another operator's webhooks, and never registers a conversion for a CRD whose controller is not running.
 */
export function webhooksOf(
  controllers: readonly ControllerSpec[],
  project: { webhooks?: readonly AdmissionWebhook[]; versions?: readonly ApiVersions[] },
): { webhooks: AdmissionWebhook[]; versions: ApiVersions[] } {
  const kinds = new Set(controllers.map((c) => `${c.forType.plural}.${c.forType.group}`));
  return {
    webhooks: (project.webhooks ?? []).filter((w) => kinds.has(`${w.resource.plural}.${w.resource.group}`)),
    versions: (project.versions ?? []).filter((v) => kinds.has(v.crdName)),
  };
}

/** Options of `localWebhooks`. */
export interface LocalWebhooksOptions {
  webhooks: readonly AdmissionWebhook[];
  versions: readonly ApiVersions[];
  /** `--webhook-addr`; default 127.0.0.1:0. */
  addr?: string;
  /** `--webhook-cert-dir`: tls.crt and tls.key (and ca.crt, to register) from there instead of local ones. */
  certDir?: string;
  /** The kubeconfig and context the manager uses: its server decides whether to register, its file where the local CA lives. */
  kubeconfig?: string;
  context?: string;
  /** The API server URL the manager talks to (asked once the server listens: the manager's client knows it). */
  serverUrl: () => string;
  /** Name of the registered configurations (`localRegistrationName`). */
  name: string;
  /** The operator's namespace, kept out of the admission webhooks as in the generated configuration. */
  namespace?: string;
  logger: Logger;
}

/** What `bosun run` hands the Manager, and what it calls on the way out. */
export interface LocalWebhooks {
  webhookServer: NonNullable<ManagerOptions['webhookServer']>;
  onWebhookServerStarted: NonNullable<ManagerOptions['onWebhookServerStarted']>;
  /** Removes the registration, if one was made (idempotent). */
  unregister(): Promise<void>;
}

/**
 * Plans the webhook server of `bosun run`: its certificates (local ones under `localCertDir`, or `certDir`'s) and,
 * when the API server is on loopback, its registration once it listens (replacing the last run's). Against any
 * other API server it only serves: the cluster's webhook configuration comes from the manifests `bosun generate`
 * writes to config/webhook.
 */
export async function localWebhooks(opts: LocalWebhooksOptions): Promise<LocalWebhooks> {
  const { logger } = opts;
  let tlsFiles: { certFile: string; keyFile: string };
  let caBundle: string | undefined;
  if (opts.certDir) {
    tlsFiles = { certFile: join(opts.certDir, WEBHOOK_CERT_FILES.cert), keyFile: join(opts.certDir, WEBHOOK_CERT_FILES.key) };
    caBundle = await readFile(join(opts.certDir, WEBHOOK_CERT_FILES.ca)).then(
      (b) => b.toString('base64'),
      () => undefined,
    );
  } else {
    const certs = await ensureWebhookCerts(localCertDir(opts.kubeconfig), { log: (line) => logger.info(line) });
    if (certs.renewed !== 'none')
      logger.info({ dir: certs.dir, renewed: certs.renewed, notAfter: certs.notAfter }, 'webhook certificates written');
    tlsFiles = { certFile: certs.certFile, keyFile: certs.keyFile };
    caBundle = certs.caBundle;
  }
  let client: KubeClient | undefined;
  let registeredUrl: string | undefined;
  let unregistering: Promise<void> | undefined;
  return {
    webhookServer: {
      webhooks: opts.webhooks,
      versions: opts.versions,
      addr: opts.addr ?? DEFAULT_LOCAL_WEBHOOK_ADDR,
      tls: tlsFiles,
    },
    async onWebhookServerStarted(server) {
      if (!isLoopbackServer(opts.serverUrl())) {
        logger.info(
          { url: server.url, server: opts.serverUrl() },
          'webhooks served but not registered: the API server is not on this machine; in a cluster, the manifests bosun generate writes to config/webhook install them',
        );
        return;
      }
      if (!caBundle) {
        logger.warn(
          { certDir: opts.certDir },
          `webhooks served but not registered: ${WEBHOOK_CERT_FILES.ca} is missing from --webhook-cert-dir, so the API server could not trust the server; add it, or leave --webhook-cert-dir out for local certificates`,
        );
        return;
      }
      client = KubeClient.fromConfig({ kubeconfig: opts.kubeconfig, context: opts.context });
      const r = await registerWebhooks({
        client,
        name: opts.name,
        baseUrl: server.url,
        caBundle,
        webhooks: opts.webhooks,
        versions: opts.versions,
        namespace: opts.namespace,
      }).catch((err: unknown) => {
        if (statusOf(err) !== 403) throw err;
        // A least-privilege identity (the deployed ServiceAccount's token) may not register webhooks, and in a
        // cluster it need not: the manifests do.
        throw new WebhookRegistrationError(
          `webhooks served but not registered with the local API server: this identity may not write their configuration (${(err as Error).message}). ` +
            'Fix: run with a kubeconfig that may (the cluster admin one bosun cluster up writes), or pass --no-webhooks',
        );
      });
      registeredUrl = server.url;
      for (const line of r.unserved) logger.warn({ name: opts.name }, line);
      logger.info(
        { url: server.url, name: opts.name, validating: r.validating, mutating: r.mutating, crds: r.crds },
        'webhooks registered',
      );
    },
    unregister: () =>
      (unregistering ??= (async () => {
        if (!client) return;
        try {
          if (registeredUrl === undefined) return;
          const removed = await unregisterWebhooks(client, opts.name, { onlyUrl: registeredUrl });
          if (removed.length > 0) logger.info({ name: opts.name, kinds: removed }, 'webhook configurations removed');
          else logger.info({ name: opts.name }, 'webhook configurations left: they point at another server now');
        } catch (err) {
          logger.warn({ err, name: opts.name }, 'webhook configurations not removed; the next bosun run replaces them');
        } finally {
          client.close();
        }
      })()),
  };
}
