import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient } from '../client/client.js';
import type { KubeObject } from '../client/types.js';
import { type CoreEvent, EventRecorder } from './events.js';

/** Counts the Event writes a recorder makes; the spam filter is pure logic, decided before any write. */
function countingClient() {
  const writes: { verb: string; involved: string; message?: string }[] = [];
  const client = {
    create: (_t: unknown, ev: CoreEvent) => {
      writes.push({ verb: 'create', involved: ev.involvedObject.name ?? '', message: ev.message });
      return Promise.resolve(ev);
    },
    patch: (_t: unknown, _ns: string, name: string) => {
      writes.push({ verb: 'patch', involved: name });
      return Promise.resolve({});
    },
  };
  return { writes, client: client as unknown as KubeClient };
}

function obj(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', uid: `uid-${name}` } };
}

void test('spam filter: 25 events per object at once, then one per 5 minutes; other objects keep their own budget', async () => {
  const { writes, client } = countingClient();
  let now = 1_000_000;
  const rec = new EventRecorder(client, { component: 'c', now: () => now });
  for (let i = 0; i < 40; i++) rec.warning(obj('noisy'), 'Failed', `attempt ${i}`);
  await rec.flush();
  assert.equal(writes.filter((w) => w.involved === 'noisy').length, 25, 'burst of 25');
  rec.normal(obj('quiet'), 'Synced', 'ok');
  await rec.flush();
  assert.equal(writes.filter((w) => w.involved === 'quiet').length, 1, 'another object is not throttled by the noisy one');
  now += 4 * 60_000;
  rec.warning(obj('noisy'), 'Failed', 'after 4 min');
  await rec.flush();
  assert.equal(writes.filter((w) => w.involved === 'noisy').length, 25, 'no token yet after 4 minutes');
  now += 60_000;
  rec.warning(obj('noisy'), 'Failed', 'after 5 min');
  rec.warning(obj('noisy'), 'Failed', 'right after');
  await rec.flush();
  const noisy = writes.filter((w) => w.involved === 'noisy');
  assert.equal(noisy.length, 26, 'one token per 5 minutes');
  assert.equal(noisy.at(-1)?.message, 'after 5 min');
});

void test('spam filter: identical repeats use the budget too, as client-go filters every event', async () => {
  const { writes, client } = countingClient();
  const rec = new EventRecorder(client, { component: 'c', now: () => 5_000 });
  for (let i = 0; i < 30; i++) rec.warning(obj('loop'), 'Failed', 'same message');
  await rec.flush();
  assert.equal(writes.length, 25);
  assert.equal(writes.filter((w) => w.verb === 'create').length, 1, 'aggregated into one Event');
});
