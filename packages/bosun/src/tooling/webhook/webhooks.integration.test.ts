// Webhooks served by bosun's server in this process and called by the real API server of the test cluster:
// what `kubectl` shows for a denial, a mutation, a conversion, and a webhook that is down or slow. The Gadget
// kind lives in a group of this run's own (testdata/gadgets.ts), so nothing else on the shared cluster is touched.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { KubeClient } from '../../client/client.js';
import { toMultiVersionCrd } from '../generate/crd.js';
import { serveWebhooks, type ServedWebhooks } from '../envtest/webhooks.js';
import { eventually, startTestEnv, type KubectlResult, type TestEnv } from '../envtest/testenv.js';
import { gadgetApi, gadgetYaml } from './testdata/gadgets.js';
import { registerWebhooks, unregisterWebhooks } from './register.js';

let env: TestEnv;
const api = gadgetApi();
const served: ServedWebhooks[] = [];
let main: ServedWebhooks;
let ns: string;

before(async () => {
  env = await startTestEnv();
  // Registration sets the conversion: the CRD goes in without it, as one applied before the server first ran.
  const crd = toMultiVersionCrd(api.versions, { clientConfig: { url: 'https://127.0.0.1:1/unused' } });
  delete crd.spec.conversion;
  await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(crd));
  await env.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${api.versions.crdName}`]);
  ns = await env.namespace('webhooks');
  main = await serveWebhooks(env, { webhooks: [api.size, api.defaults], versions: [api.versions], namespace: ns });
  served.push(main);
});

after(async () => {
  for (const s of served) await s.stop();
  if (env) {
    await env.kubectl(['delete', 'crd', api.versions.crdName, '--ignore-not-found', '--wait=false']);
    await env.cleanup();
  }
});

const plural = (version: string) => `gadgets.${version}.${api.group}`;

/** Applies a Gadget with kubectl; how long kubectl took is in `ms`. */
async function applyGadget(namespace: string, name: string, spec: { owner: string; sizeCm: number; color?: string }, dryRun = false) {
  const t0 = performance.now();
  const r = await env.kubectl(['apply', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'], gadgetYaml(api.v1, namespace, name, spec));
  return { ...r, ms: performance.now() - t0 };
}

/** Waits until the API server's admission chain calls the registered webhooks: a dry run refused (or warned) as `expect` says. */
async function untilInEffect(namespace: string, expect: (r: KubectlResult) => boolean, spec = { owner: 'mallory', sizeCm: 1 }) {
  return eventually(
    `the webhooks registered for ${namespace} in effect`,
    async () => {
      const r = await applyGadget(namespace, 'probe', spec, true);
      return expect(r) ? r : undefined;
    },
    30_000,
    200,
  );
}

void test('kubectl apply of an oversized Gadget is refused with the validating webhook message', async () => {
  await untilInEffect(ns, (r) => r.code !== 0, { owner: 'alice', sizeCm: 500 });
  const r = await applyGadget(ns, 'huge', { owner: 'alice', sizeCm: 150 });
  assert.notEqual(r.code, 0);
  assert.equal(
    r.stderr.trim(),
    `Error from server (Forbidden): error when creating "STDIN": admission webhook "size.gadgets.${api.group}" denied the request: ` +
      'spec.sizeCm is 150, more than 100. Fix: set spec.sizeCm to at most 100',
  );
  assert.equal((await env.kubectl(['get', plural('v1'), 'huge', '-n', ns])).code, 1, 'the refused Gadget was not stored');
});

void test("the mutating webhook's defaults are visible in kubectl get -o yaml", async () => {
  await untilInEffect(ns, (r) => r.code !== 0, { owner: 'alice', sizeCm: 500 });
  const r = await applyGadget(ns, 'small', { owner: 'alice', sizeCm: 20 });
  assert.equal(r.code, 0, r.stderr);
  const yaml = await env.kubectlOk(['get', plural('v1'), 'small', '-n', ns, '-o', 'yaml']);
  const obj = parseYaml(yaml) as { metadata: { labels?: Record<string, string> }; spec: Record<string, unknown> };
  assert.deepEqual(obj.spec, { owner: 'alice', sizeCm: 20, color: 'grey' });
  assert.equal(obj.metadata.labels?.['gadgets.bosun.dev/size-class'], 'small');
  assert.match(yaml, /^ {2}color: grey$/m);
});

void test('a v1 Gadget read as v2 and written back is unchanged at v1 (conversion through the webhook)', async () => {
  await untilInEffect(ns, (r) => r.code !== 0, { owner: 'alice', sizeCm: 500 });
  const created = await applyGadget(ns, 'round', { owner: 'bob', sizeCm: 70, color: 'red' });
  assert.equal(created.code, 0, created.stderr);
  const v1Before = JSON.parse(await env.kubectlOk(['get', plural('v1'), 'round', '-n', ns, '-o', 'json'])) as {
    metadata: { generation: number; resourceVersion: string; labels: Record<string, string> };
    spec: unknown;
  };
  const v2 = JSON.parse(await env.kubectlOk(['get', plural('v2'), 'round', '-n', ns, '-o', 'json'])) as {
    apiVersion: string;
    spec: unknown;
  };
  assert.equal(v2.apiVersion, `${api.group}/v2`);
  assert.deepEqual(v2.spec, { owner: { name: 'bob' }, size: { value: 70, unit: 'cm' }, color: 'red' });
  // Written back at v2 as read: the API server converts it to v1 to store, which must change nothing.
  await env.kubectlOk(['replace', '-f', '-'], JSON.stringify(v2));
  const v1After = JSON.parse(await env.kubectlOk(['get', plural('v1'), 'round', '-n', ns, '-o', 'json'])) as typeof v1Before;
  assert.deepEqual(v1After.spec, v1Before.spec);
  assert.deepEqual(v1After.spec, { owner: 'bob', sizeCm: 70, color: 'red' });
  assert.equal(v1After.metadata.generation, v1Before.metadata.generation, 'a no-op write does not bump the generation');
  assert.deepEqual(v1After.metadata.labels, v1Before.metadata.labels);

  // And the other way: created at v2, stored and read at v1.
  const v2Doc = `apiVersion: ${api.group}/v2\nkind: Gadget\nmetadata:\n  name: fromv2\n  namespace: ${ns}\nspec:\n  owner:\n    name: carol\n  size:\n    value: 40\n    unit: cm\n`;
  await env.kubectlOk(['apply', '-f', '-'], v2Doc);
  const fromV2 = JSON.parse(await env.kubectlOk(['get', plural('v1'), 'fromv2', '-n', ns, '-o', 'json'])) as { spec: unknown };
  assert.deepEqual(fromV2.spec, { owner: 'carol', sizeCm: 40, color: 'grey' });
});

/** A namespace with one owner-check webhook of its own, seen in effect (mallory refused or warned about). */
async function ownerCheckIn(prefix: string, ...args: Parameters<typeof api.ownerCheck>) {
  const namespace = await env.namespace(prefix);
  const s = await serveWebhooks(env, { webhooks: [api.ownerCheck(...args)], namespace });
  served.push(s);
  return { namespace, s };
}

void test('a webhook server that is down: failurePolicy Fail refuses with the API server message, at once', async (t) => {
  const { namespace, s } = await ownerCheckIn('webhook-down-fail', 'down-fail', 'Fail');
  await untilInEffect(namespace, (r) => r.code !== 0 && r.stderr.includes('mallory may not own gadgets'));
  await s.stopServer();
  const bound = await slowBound(0);
  const r = await applyGadget(namespace, 'g', { owner: 'alice', sizeCm: 1 });
  t.diagnostic(`kubectl took ${Math.round(r.ms)} ms (bound ${Math.round(bound)} ms): ${r.stderr.trim()}`);
  assert.ok(r.ms < bound, `kubectl took ${Math.round(r.ms)} ms; bound ${Math.round(bound)} ms`);
  const port = s.server.port;
  const webhook = `down-fail.gadgets.${api.group}`;
  assert.notEqual(r.code, 0);
  assert.equal(
    r.stderr.trim(),
    `Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed calling webhook "${webhook}": ` +
      `failed to call webhook: Post "https://127.0.0.1:${port}/validate/${webhook}?timeout=10s": dial tcp 127.0.0.1:${port}: connect: connection refused`,
  );
});

void test('a webhook server that is down: failurePolicy Ignore admits the object', async () => {
  const { namespace, s } = await ownerCheckIn('webhook-down-ignore', 'down-ignore', 'Ignore');
  await untilInEffect(namespace, (r) => r.code !== 0 && r.stderr.includes('mallory may not own gadgets'));
  await s.stopServer();
  // Even mallory: nothing judges it now.
  const r = await applyGadget(namespace, 'g', { owner: 'mallory', sizeCm: 1 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `gadget.${api.group}/g created`);
  await env.kubectlOk(['get', plural('v1'), 'g', '-n', namespace]);
});

/**
 * How long a kubectl write through the slow webhook may take: its timeoutSeconds plus what kubectl costs here
 * without any webhook (process start, discovery; measured now, on this loaded machine), plus 2 s of slack for
 * the API server's own scheduling. A hung kubectl (waiting for kubectl's own 120 s default) is far outside.
 */
async function slowBound(timeoutSeconds: number): Promise<number> {
  const plain = await env.namespace('webhook-baseline');
  const r = await applyGadget(plain, 'g', { owner: 'alice', sizeCm: 1 }, true);
  assert.equal(r.code, 0, r.stderr);
  return timeoutSeconds * 1000 + r.ms + 2_000;
}

void test('a slow webhook with failurePolicy Fail: kubectl is refused within timeoutSeconds, not hung', async (t) => {
  const { namespace } = await ownerCheckIn('webhook-slow-fail', 'slow-fail', 'Fail', 2, 10_000);
  await untilInEffect(namespace, (r) => r.code !== 0);
  const bound = await slowBound(2);
  const r = await applyGadget(namespace, 'g', { owner: 'alice', sizeCm: 1 });
  t.diagnostic(`kubectl took ${Math.round(r.ms)} ms (bound ${Math.round(bound)} ms): ${r.stderr.trim()}`);
  const webhook = `slow-fail.gadgets.${api.group}`;
  assert.notEqual(r.code, 0);
  assert.equal(
    r.stderr.trim(),
    `Error from server (Timeout): error when creating "STDIN": admission webhook "${webhook}" denied the request: ` +
      `webhook ${webhook} timed out after 1.5 s (the API server gives up at 2 s, the timeoutSeconds declared)`,
  );
  assert.ok(r.ms < bound, `kubectl took ${Math.round(r.ms)} ms; bound ${Math.round(bound)} ms`);
  // The server answers 0.5 s before the API server's deadline; kubectl cannot be back sooner.
  assert.ok(r.ms > 1_500, `kubectl took ${Math.round(r.ms)} ms: the webhook's delay was not waited for`);
});

void test('a slow webhook with failurePolicy Ignore: kubectl admits within timeoutSeconds, with a warning', async (t) => {
  const { namespace } = await ownerCheckIn('webhook-slow-ignore', 'slow-ignore', 'Ignore', 2, 10_000);
  await untilInEffect(namespace, (r) => r.code === 0 && r.stderr.includes('admitted unchecked'));
  const bound = await slowBound(2);
  const r = await applyGadget(namespace, 'g', { owner: 'mallory', sizeCm: 1 });
  t.diagnostic(`kubectl took ${Math.round(r.ms)} ms (bound ${Math.round(bound)} ms): ${r.stderr.trim()}`);
  const webhook = `slow-ignore.gadgets.${api.group}`;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stderr.trim(),
    `Warning: webhook ${webhook} could not judge this request (webhook ${webhook} timed out after 1.5 s ` +
      '(the API server gives up at 2 s, the timeoutSeconds declared)); admitted unchecked (failurePolicy Ignore)',
  );
  assert.equal(r.stdout.trim(), `gadget.${api.group}/g created`);
  assert.ok(r.ms < bound, `kubectl took ${Math.round(r.ms)} ms; bound ${Math.round(bound)} ms`);
  assert.ok(r.ms > 1_500, `kubectl took ${Math.round(r.ms)} ms: the webhook's delay was not waited for`);
});

void test('an endpoint that accepts and never answers: the API server gives up at timeoutSeconds and failurePolicy Fail refuses', async (t) => {
  // What the API server meets when the server cannot answer at all (its process stopped, its event loop blocked):
  // TLS is accepted with the cluster-trusted certificate, the request read, no answer ever sent.
  const namespace = await env.namespace('webhook-hung');
  const sockets = new Set<{ destroy(): void }>();
  const hung = https.createServer({ cert: await readFile(main.certs.certFile), key: await readFile(main.certs.keyFile) }, (req) =>
    req.resume(),
  );
  hung.on('connection', (sock) => sockets.add(sock));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  const webhook = api.ownerCheck('hung', 'Fail', 2);
  const name = `bosun-test-${namespace}`;
  try {
    await registerWebhooks({
      client,
      name,
      baseUrl: `https://127.0.0.1:${(hung.address() as AddressInfo).port}`,
      caBundle: main.certs.caBundle,
      webhooks: [webhook],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
    });
    await untilInEffect(namespace, (r) => r.code !== 0, { owner: 'alice', sizeCm: 1 });
    const bound = await slowBound(2);
    const r = await applyGadget(namespace, 'g', { owner: 'alice', sizeCm: 1 });
    t.diagnostic(`kubectl took ${Math.round(r.ms)} ms (bound ${Math.round(bound)} ms): ${r.stderr.trim()}`);
    const port = (hung.address() as AddressInfo).port;
    assert.notEqual(r.code, 0);
    assert.equal(
      r.stderr.trim(),
      `Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed calling webhook "${webhook.name}": ` +
        `failed to call webhook: Post "https://127.0.0.1:${port}${webhook.path}?timeout=2s": context deadline exceeded`,
    );
    assert.ok(r.ms < bound, `kubectl took ${Math.round(r.ms)} ms; bound ${Math.round(bound)} ms`);
    assert.ok(r.ms > 2_000, `kubectl took ${Math.round(r.ms)} ms: the API server did not wait for its timeout`);
  } finally {
    await unregisterWebhooks(client, name);
    client.close();
    for (const sock of sockets) sock.destroy();
    hung.close();
  }
});
