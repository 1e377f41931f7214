import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../telemetry/logger.js';
import type { ControllerSpec } from '../../controller/builder.js';
import type { AdmissionWebhook, ApiVersions } from '../../webhook/declare.js';
import { isLoopbackServer, localCertDir, localRegistrationName, localWebhooks, webhooksOf } from './local.js';

void test('an API server on loopback is local; any other host is not', () => {
  for (const url of ['https://127.0.0.1:6443', 'https://127.0.0.2:1', 'https://localhost:40939', 'https://[::1]:6443'])
    assert.equal(isLoopbackServer(url), true, url);
  for (const url of ['https://10.0.0.1:6443', 'https://kubernetes.default.svc', 'https://127.example.com', 'https://[::2]:1', 'not a url'])
    assert.equal(isLoopbackServer(url), false, url);
});

void test("the certificates live beside a bosun cluster's kubeconfig, else under .bosun/webhook", async () => {
  const root = await mkdtemp(join(tmpdir(), 'bosun-local-'));
  try {
    const cluster = join(root, 'cluster');
    await mkdir(join(cluster, 'pki'), { recursive: true });
    await writeFile(join(cluster, 'state.json'), '{}');
    await writeFile(join(cluster, 'kubeconfig'), '');
    assert.equal(localCertDir(join(cluster, 'kubeconfig')), join(cluster, 'webhook'));
    assert.equal(localCertDir('cluster/kubeconfig', root), join(cluster, 'webhook'));
    const other = join(root, 'elsewhere');
    await mkdir(other);
    await writeFile(join(other, 'kubeconfig'), '');
    assert.equal(localCertDir(join(other, 'kubeconfig'), root), join(root, '.bosun', 'webhook'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

void test('the registration name is one per project, a valid object name', () => {
  assert.equal(localRegistrationName({ prefix: 'bosun' }, ['message']), 'bosun-local-bosun');
  assert.equal(localRegistrationName({}, ['message', 'application']), 'bosun-local-message-application');
  assert.equal(localRegistrationName({ prefix: 'My_Operator' }, []), 'bosun-local-my-operator');
});

void test("an operator run serves the webhooks and conversions of the kinds its controllers reconcile, no other operator's", () => {
  const kind = (plural: string, group: string) => ({ plural, group, version: 'v1', kind: plural, namespaced: true });
  const tickets = kind('flighttickets', 'flights.com');
  const messages = kind('messages', 'myorg.dev');
  const controller = (forType: ReturnType<typeof kind>) => ({ name: forType.plural, forType }) as unknown as ControllerSpec;
  const webhook = { name: 'route.flighttickets.flights.com', resource: tickets } as unknown as AdmissionWebhook;
  const versions = { crdName: 'flighttickets.flights.com' } as unknown as ApiVersions;
  const project = { webhooks: [webhook], versions: [versions] };
  assert.deepEqual(webhooksOf([controller(messages)], project), { webhooks: [], versions: [] });
  assert.deepEqual(webhooksOf([controller(messages), controller(tickets)], project), { webhooks: [webhook], versions: [versions] });
  assert.deepEqual(webhooksOf([controller(tickets)], {}), { webhooks: [], versions: [] });
});

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => { msg: string; [k: string]: unknown }[] } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ destination: sink, level: 'debug' }), lines: () => out.map((l) => JSON.parse(l) as { msg: string }) };
}

const server = { port: 1, url: 'https://127.0.0.1:1', checkServing: async () => {}, close: async () => {} };

void test('against an API server elsewhere the webhooks are served but not registered, and the log says what installs them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-local-'));
  try {
    const { logger, lines } = capture();
    const w = await localWebhooks({
      webhooks: [],
      versions: [],
      certDir: dir,
      serverUrl: () => 'https://10.1.2.3:6443',
      name: 'bosun-local-x',
      logger,
    });
    assert.deepEqual(w.webhookServer.tls, { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });
    assert.equal(w.webhookServer.addr, '127.0.0.1:0');
    // No client is made: a registration attempt against 10.1.2.3 would hang or fail here.
    await w.onWebhookServerStarted(server);
    await w.unregister();
    const line = lines().find((l) => l.msg.startsWith('webhooks served but not registered'));
    assert.equal(
      line?.msg,
      'webhooks served but not registered: the API server is not on this machine; in a cluster, the manifests bosun generate writes to config/webhook install them',
    );
    assert.equal(line?.server, 'https://10.1.2.3:6443');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('a --webhook-cert-dir without ca.crt cannot be registered locally, and the warning says how to fix it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-local-'));
  try {
    const { logger, lines } = capture();
    const w = await localWebhooks({
      webhooks: [],
      versions: [],
      certDir: dir,
      serverUrl: () => 'https://127.0.0.1:6443',
      name: 'n',
      logger,
    });
    await w.onWebhookServerStarted(server);
    const line = lines().find((l) => l.msg.startsWith('webhooks served but not registered'));
    assert.match(line?.msg ?? '', /ca\.crt is missing from --webhook-cert-dir.*leave --webhook-cert-dir out for local certificates/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
