import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeObject } from '../client/types.js';
import { detectCause, essenceChanged, essenceOf, fieldChanged, hashOf } from './cause.js';
import { DIFF_BASE_ANNOTATION, MAX_ANNOTATIONS_BYTES, MAX_DIFF_BASE_BYTES, encodeDiffBase, readDiffBase } from './diffbase.js';
import { executeCause, type HandlerStep } from './execute.js';

const cr = (spec: unknown, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
  apiVersion: 'x/v1',
  kind: 'X',
  metadata: { name: 'a', uid: 'u1', generation: 1, ...extra },
  spec,
  status: { ready: true },
});
const cm = (data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', uid: 'u2' },
  data,
});

test('essenceOf keeps every top-level field but apiVersion, kind, metadata and status', () => {
  assert.deepEqual(essenceOf(cr({ a: 1 })), { spec: { a: 1 } });
  assert.deepEqual(essenceOf(cm({ k: 'v' })), { data: { k: 'v' } });
});

test('detectCause: no base is a create; a deletion is a delete', () => {
  assert.equal(detectCause(cr({ a: 1 }), undefined, { resumed: false }).type, 'create');
  assert.equal(detectCause(cr({ a: 1 }, { deletionTimestamp: 'now' }), undefined, { resumed: true }).type, 'delete');
});

test('detectCause: a changed essence is an update carrying the old essence, for kinds without generation too', () => {
  const old = essenceOf(cm({ k: '1' }));
  const c = detectCause(cm({ k: '2' }), { hash: hashOf(old), essence: old }, { resumed: true });
  assert.equal(c.type, 'update');
  assert.deepEqual(c.type === 'update' && [c.old, c.essence], [{ data: { k: '1' } }, { data: { k: '2' } }]);
});

test('detectCause: unchanged is a resume until this process handled the object, then nothing', () => {
  const e = essenceOf(cr({ a: 1 }));
  assert.equal(detectCause(cr({ a: 1 }), { hash: hashOf(e) }, { resumed: false }).type, 'resume');
  assert.equal(detectCause(cr({ a: 1 }), { hash: hashOf(e) }, { resumed: true }).type, 'none');
});

test('detectCause: a 0.1 base (spec hash) of an unchanged object is not an update; of a changed one it is, with the old spec', () => {
  const legacy = (spec: unknown) =>
    ({ metadata: { annotations: { [DIFF_BASE_ANNOTATION]: JSON.stringify({ spec, hash: hashOf(spec) }) } } }) as KubeObject;
  const base = readDiffBase(legacy({ a: 1 }));
  assert.equal(base?.legacy, true);
  assert.equal(detectCause(cr({ a: 1 }), base, { resumed: true }).type, 'none');
  const c = detectCause(cr({ a: 2 }), base, { resumed: true });
  assert.deepEqual(c.type === 'update' ? c.old : c.type, { spec: { a: 1 } });
});

test('fieldChanged compares one dotted path, and counts as changed without the old essence', () => {
  assert.equal(fieldChanged({ spec: { a: 1, b: 1 } }, { spec: { a: 1, b: 2 } }, 'spec.a'), false);
  assert.equal(fieldChanged({ spec: { a: 1 } }, { spec: { a: 2 } }, 'spec.a'), true);
  assert.equal(fieldChanged(undefined, { spec: { a: 1 } }, 'spec.a'), true);
});

test('essenceChanged ignores status and annotation writes, passes data changes of kinds without generation and deletions', () => {
  const a = cr({ a: 1 });
  assert.equal(essenceChanged(a, { ...a, status: { ready: false }, metadata: { ...a.metadata, annotations: { x: 'y' } } }), false);
  assert.equal(essenceChanged(cm({ k: '1' }), cm({ k: '2' })), true);
  assert.equal(essenceChanged(a, { ...a, metadata: { ...a.metadata, deletionTimestamp: 'now' } }), true);
});

test('encodeDiffBase counts bytes, not UTF-16 units', () => {
  const units = Math.floor(MAX_DIFF_BASE_BYTES / 2);
  const e = { spec: { text: '€'.repeat(units) } }; // under the limit in units, three times over it in bytes
  const enc = encodeDiffBase(e, hashOf(e), undefined);
  assert.equal(enc.whole, false);
  assert.deepEqual(readDiffBase({ metadata: { annotations: { [DIFF_BASE_ANNOTATION]: enc.value } } }), {
    hash: hashOf(e),
    essence: undefined,
  });
});

test('encodeDiffBase keeps the whole essence when it fits, and a hash only when the other annotations leave no room', () => {
  const e = { spec: { text: 'y'.repeat(60 * 1024) } };
  assert.equal(encodeDiffBase(e, hashOf(e), { 'example.com/small': 'x' }).whole, true);
  const big = { 'example.com/big': 'x'.repeat(MAX_ANNOTATIONS_BYTES - 60 * 1024) };
  assert.equal(encodeDiffBase(e, hashOf(e), big).whole, false);
  // The diff base being replaced does not count against itself.
  assert.equal(encodeDiffBase(e, hashOf(e), { [DIFF_BASE_ANNOTATION]: 'z'.repeat(200 * 1024) }).whole, true);
});

function steps(log: string[], failing?: string): HandlerStep[] {
  return ['a', 'b', 'c'].map((id) => ({
    id,
    call: () => {
      if (id === failing) throw new Error(`${id} failed`);
      log.push(id);
    },
  }));
}

test('executeCause records the handlers that succeeded before a failure and skips them on the retry', async () => {
  const log: string[] = [];
  const saved: string[][] = [];
  const run = { controller: 'c', cause: 'create' as const, hash: 'h', save: async (p: { done: string[] }) => void saved.push(p.done) };
  await assert.rejects(executeCause({ ...run, previous: undefined, steps: steps(log, 'b') }), /b failed/);
  assert.deepEqual([log, saved], [['a'], [['a']]]);
  await executeCause({ ...run, previous: { controller: 'c', cause: 'create', hash: 'h', done: saved[0]! }, steps: steps(log) });
  assert.deepEqual(log, ['a', 'b', 'c']);
});

test('executeCause starts over for another cause, another essence or another controller', async () => {
  for (const previous of [
    { controller: 'c', cause: 'update' as const, hash: 'h', done: ['a'] },
    { controller: 'c', cause: 'create' as const, hash: 'other', done: ['a'] },
    { controller: 'other', cause: 'create' as const, hash: 'h', done: ['a'] },
  ]) {
    const log: string[] = [];
    await executeCause({ controller: 'c', cause: 'create', hash: 'h', previous, steps: steps(log), save: async () => {} });
    assert.deepEqual(log, ['a', 'b', 'c']);
  }
});

test('executeCause does not write progress when the first handler fails', async () => {
  let saves = 0;
  await assert.rejects(
    executeCause({
      controller: 'c',
      cause: 'create',
      hash: 'h',
      previous: undefined,
      steps: steps([], 'a'),
      save: async () => void saves++,
    }),
  );
  assert.equal(saves, 0);
});
