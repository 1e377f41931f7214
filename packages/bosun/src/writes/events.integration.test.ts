// Events against a real API server: the server validates involvedObject against the event's namespace,
// and only a real PATCH shows that aggregation bumps the count of the Event it created.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { ConfigMap, Event, Namespace } from '../client/resources.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import { startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { type CoreEvent, EventRecorder, MAX_MESSAGE_LENGTH } from './events.js';

let env: TestEnv;
let ns: string;
let client: KubeClient;

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('events');
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  client?.close();
  await env?.cleanup();
});

async function eventsAbout(name: string): Promise<CoreEvent[]> {
  const r = await client.list(Event as ResourceType<CoreEvent>, { namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return r.items.sort((a, b) => a.message.localeCompare(b.message));
}

async function configMap(name: string): Promise<KubeObject> {
  return client.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { a: '1' } });
}

void test('an event names its object, source and reporting component', async () => {
  const cm = await configMap('cm-one');
  const rec = new EventRecorder(client, { component: 'test-controller', host: 'replica-0' });
  rec.normal(cm, 'Synced', 'config applied');
  await rec.flush();
  const [ev, ...rest] = await eventsAbout('cm-one');
  assert.ok(ev, 'the event exists');
  assert.equal(rest.length, 0);
  assert.deepEqual(ev.involvedObject, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    name: 'cm-one',
    namespace: ns,
    uid: cm.metadata.uid,
    resourceVersion: cm.metadata.resourceVersion,
  });
  assert.equal(ev.type, 'Normal');
  assert.equal(ev.reason, 'Synced');
  assert.equal(ev.message, 'config applied');
  assert.deepEqual(ev.source, { component: 'test-controller', host: 'replica-0' });
  assert.equal(ev.reportingComponent, 'test-controller');
  assert.equal(ev.reportingInstance, 'replica-0');
  assert.equal(ev.count, 1);
  assert.match(ev.firstTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(ev.metadata.namespace, ns);
});

void test('a repeat bumps count on the same Event; a different message makes a new one', async () => {
  const cm = await configMap('cm-repeat');
  const rec = new EventRecorder(client, { component: 'test-controller' });
  rec.warning(cm, 'Failed', 'backend unreachable');
  rec.warning(cm, 'Failed', 'backend unreachable');
  rec.warning(cm, 'Failed', 'backend unreachable');
  rec.warning(cm, 'Failed', 'quota exceeded');
  await rec.flush();
  const evs = await eventsAbout('cm-repeat');
  assert.equal(evs.length, 2, JSON.stringify(evs.map((e) => [e.metadata.name, e.message, e.count])));
  const [unreachable, quota] = evs;
  assert.equal(unreachable?.message, 'backend unreachable');
  assert.equal(unreachable?.count, 3);
  assert.equal(unreachable?.type, 'Warning');
  assert.equal(quota?.count, 1);
});

void test('aggregation window: a repeat after the window creates a new Event', async () => {
  const cm = await configMap('cm-window');
  let now = Date.now();
  const rec = new EventRecorder(client, { component: 'test-controller', now: () => now, aggregateWindowMs: 60_000 });
  rec.normal(cm, 'Synced', 'same');
  await rec.flush();
  now += 61_000;
  rec.normal(cm, 'Synced', 'same');
  await rec.flush();
  const evs = await eventsAbout('cm-window');
  assert.deepEqual(
    evs.map((e) => e.count),
    [1, 1],
  );
});

void test('long messages are truncated and failures never reach the caller', async () => {
  const cm = await configMap('cm-long');
  const rec = new EventRecorder(client, { component: 'test-controller' });
  rec.normal(cm, 'Big', 'x'.repeat(5000));
  // An object in a namespace that does not exist: the create fails with 404 and is dropped.
  rec.normal(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ghost', namespace: 'no-such-namespace-xyz', uid: 'u1' } },
    'Lost',
    'nobody sees this',
  );
  await rec.flush();
  const [ev] = await eventsAbout('cm-long');
  assert.equal(ev?.message.length, MAX_MESSAGE_LENGTH);
  assert.ok(ev?.message.endsWith('...'));
});

void test('cluster-scoped objects get their events in the default namespace', async () => {
  const nsObj = await client.get(Namespace, undefined, ns);
  const rec = new EventRecorder(client, { component: 'test-controller' });
  rec.normal(nsObj, 'Observed', `namespace ${ns} seen`);
  await rec.flush();
  const r = await client.list(Event as ResourceType<CoreEvent>, { namespace: 'default', fieldSelector: `involvedObject.name=${ns}` });
  assert.equal(r.items.length, 1);
  assert.equal(r.items[0]?.involvedObject.kind, 'Namespace');
});
