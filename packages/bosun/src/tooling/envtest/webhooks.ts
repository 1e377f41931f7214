// Webhooks served in the test's own process and registered with the test cluster, as controller-runtime's envtest
// runs a webhook server for Go tests: the API server calls the real server bosun's Manager runs, over TLS, with
// the configurations `bosun generate` would write (but scoped to one namespace, so tests never see each other's).
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { KubeClient } from '../../client/client.js';
import { createLogger } from '../../telemetry/logger.js';
import type { AdmissionWebhook, ApiVersions } from '../../webhook/declare.js';
import { startWebhookServer, type WebhookServer } from '../../webhook/server.js';
import { ensureWebhookCerts, type WebhookCerts } from '../webhook/certs.js';
import { registerWebhooks, type WebhookRegistration } from '../webhook/register.js';
import type { TestEnv } from './testenv.js';

/** Options of `serveWebhooks`. */
export interface ServeWebhooksOptions {
  webhooks?: readonly AdmissionWebhook[];
  versions?: readonly ApiVersions[];
  /**
   * The test's namespace: the admission webhooks apply there only (a namespaceSelector on
   * `kubernetes.io/metadata.name`). Conversion is per CRD, cluster-wide: give `versions` only for a CRD the test owns.
   */
  namespace: string;
  /** Name of the configuration objects (default `bosun-test-<namespace>`); one per serveWebhooks call in a namespace. */
  name?: string;
  /** Largest request body the server accepts. */
  maxBodyBytes?: number;
}

/** Webhooks served and registered for a test. */
export interface ServedWebhooks {
  /** The running server; `url` is what the registrations point at. */
  server: WebhookServer;
  certs: WebhookCerts;
  registration: WebhookRegistration;
  /** The server's log lines (JSON): every denial, error and timeout it logged. */
  logs: string[];
  /** Closes the server but leaves it registered: the API server then meets a webhook that is down. */
  stopServer(): Promise<void>;
  /** Unregisters the admission webhooks and closes the server (idempotent). */
  stop(): Promise<void>;
}

/**
 * Serves `webhooks` and `versions` in this process with a certificate the test cluster trusts (one CA under the
 * cluster directory, shared by every test file) and registers them for `namespace`. Registration reaches the API
 * server's admission chain within about a second (it watches the configurations), so a test's first check awaits
 * it (`eventually`). Call `stop` at the end (an `after` hook): a registration left behind refuses or slows writes
 * in that namespace only.
 */
export async function serveWebhooks(env: TestEnv, opts: ServeWebhooksOptions): Promise<ServedWebhooks> {
  const certs = await ensureWebhookCerts(join(env.dir, 'webhook'), { log: (l) => process.stderr.write(`${l}\n`) });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  const server = await startWebhookServer({
    webhooks: opts.webhooks,
    versions: opts.versions,
    addr: '127.0.0.1:0',
    tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    maxBodyBytes: opts.maxBodyBytes,
    logger: createLogger({ destination: sink, level: 'debug' }),
  });
  const client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  let registration: WebhookRegistration;
  try {
    registration = await registerWebhooks({
      client,
      name: opts.name ?? `bosun-test-${opts.namespace}`,
      baseUrl: server.url,
      caBundle: certs.caBundle,
      webhooks: opts.webhooks,
      versions: opts.versions,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': opts.namespace } },
    });
  } catch (err) {
    await server.close();
    client.close();
    throw err;
  }
  let serverClosed: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  const stopServer = () => (serverClosed ??= server.close());
  return {
    server,
    certs,
    registration,
    logs,
    stopServer,
    stop: () =>
      (stopped ??= (async () => {
        try {
          await registration.unregister();
        } finally {
          client.close();
          await stopServer();
        }
      })()),
  };
}
