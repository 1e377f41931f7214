// The Manager's webhook server against a real API server: served before the caches start, on a replica
// that does not lead, through the drain of a shutdown, and closed only when start() returns.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../client/client.js';
import { ConfigMap, Lease } from '../client/resources.js';
import { controller } from '../controller/builder.js';
import { createCa, issue } from '../tooling/cluster/pki.js';
import { eventually, startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { silentLogger } from '../telemetry/logger.js';
import { admissionReviewOf, sizeWebhook, widget, widgetVersions } from '../webhook/testdata/widgets.js';
import { Manager } from './manager.js';

let env: TestEnv;
let ns: string;
let admin: KubeClient;
let dir: string;
let caPem: string;

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('mgr-webhook');
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  dir = await mkdtemp(join(tmpdir(), 'bosun-mgr-webhook-'));
  const ca = await createCa('CN=mgr-webhook-test-ca');
  caPem = ca.pair.cert;
  const pair = await issue(ca, 'CN=webhook', { server: { dns: ['localhost'], ips: ['127.0.0.1'] } });
  await writeFile(join(dir, 'tls.crt'), pair.cert);
  await writeFile(join(dir, 'tls.key'), pair.key);
});

after(async () => {
  admin?.close();
  await env?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** Posts a review as the API server would; resolves with the HTTP status. */
function review(url: string): Promise<number> {
  const body = JSON.stringify(admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })));
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${url}${sizeWebhook.path}`,
      { method: 'POST', ca: caPem, agent: false, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

void test('a standby replica serves its webhooks from before its caches start, reports them ready, and closes them when start() returns', async () => {
  // Another replica holds the Lease for the whole test: this one never leads.
  await admin.create(Lease, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'webhook-lock', namespace: ns },
    spec: {
      holderIdentity: 'the-leader',
      leaseDurationSeconds: 3600,
      renewTime: new Date().toISOString().replace('Z', '000Z'),
      acquireTime: new Date().toISOString().replace('Z', '000Z'),
    },
  } as Lease);
  let letGo!: () => void;
  const gate = new Promise<void>((r) => (letGo = r));
  const mgr: Manager = new Manager({
    client: KubeClient.fromConfig({ kubeconfig: env.kubeconfig }),
    namespaces: [ns],
    logger: silentLogger(),
    leaderElection: {
      namespace: ns,
      name: 'webhook-lock',
      identity: 'standby',
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 500,
    },
    webhookServer: {
      webhooks: [sizeWebhook],
      versions: [widgetVersions],
      addr: '127.0.0.1:0',
      tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
    },
    shutdownTimeoutMs: 30_000,
    onWebhookServerStarted: async (server): Promise<void> => {
      // Before the caches start: a conversion webhook registered here is there for the first list.
      assert.equal(mgr.caches.hasSynced(), false);
      assert.equal(await review(server.url), 200);
      await gate;
    },
  });
  mgr.add(
    controller('webhook-test')
      .for(ConfigMap)
      .reconcile(() => Promise.resolve()),
  );
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  const server = await eventually('the webhook server listening', async () => mgr.webhookServer);
  letGo();
  await eventually('caches synced while waiting for the Lease', async () => (mgr.caches.hasSynced() ? true : undefined));
  const ready = await mgr.health.runReadyChecks();
  assert.deepEqual(
    ready.results.find((r) => r.name === 'webhook-server'),
    { name: 'webhook-server', ok: true },
  );
  assert.equal(await review(server.url), 200, 'a replica that does not lead answers admission');

  ac.abort();
  await done;
  assert.equal(mgr.webhookServer, undefined);
  await assert.rejects(review(server.url), /ECONNREFUSED/);
});
