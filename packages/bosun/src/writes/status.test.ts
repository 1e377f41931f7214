import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { setCondition } from './conditions.js';
import { jsonEqual, jsonSubsetEqual } from './equal.js';

test('setCondition keeps lastTransitionTime while the status stays the same', () => {
  const t1 = new Date('2026-01-01T00:00:00Z');
  const t2 = new Date('2026-01-02T00:00:00Z');
  const a = setCondition([], { type: 'Ready', status: 'False', reason: 'PodPending' }, 1, () => t1);
  const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'PodPending' }, 1, () => t2);
  assert.deepEqual(a, b);
  const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'PodRunning' }, 1, () => t2);
  assert.equal(c[0]?.lastTransitionTime, '2026-01-02T00:00:00Z');
  assert.equal(c.length, 1);
});

test('jsonEqual ignores key order and undefined fields', () => {
  assert.ok(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
  assert.ok(!jsonEqual({ a: 1 }, { a: 2 }));
  assert.ok(!jsonEqual([1, 2], [2, 1]));
  assert.ok(jsonSubsetEqual({ phase: 'Running' }, { phase: 'Running', extra: 1 }));
  assert.ok(!jsonSubsetEqual({ phase: 'Running' }, { phase: 'Pending' }));
});

test('jsonContains accepts server defaults and catches edits', async () => {
  const { jsonContains } = await import('./equal.js');
  const desired = {
    spec: { replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'nginx', ports: [{ containerPort: 80 }] }] } } },
  };
  const defaulted = {
    spec: {
      replicas: 2,
      strategy: { type: 'RollingUpdate' },
      template: {
        spec: {
          containers: [
            {
              name: 'app',
              image: 'nginx',
              ports: [{ containerPort: 80, protocol: 'TCP' }],
              terminationMessagePath: '/dev/termination-log',
            },
          ],
        },
      },
    },
  };
  assert.ok(jsonContains(desired, defaulted));
  assert.ok(!jsonContains(desired, { ...defaulted, spec: { ...defaulted.spec, replicas: 3 } }));
  assert.ok(!jsonContains(desired, { spec: { replicas: 2, template: { spec: { containers: [] } } } }));
  assert.ok(jsonContains({ limits: { cpu: 1 } }, { limits: { cpu: '1' } }));
});

test('jsonHash ignores key order and undefined fields, and changes with any value', async () => {
  const { jsonHash } = await import('./equal.js');
  assert.equal(jsonHash({ a: 1, b: { c: [1, 2], d: 'x' } }), jsonHash({ b: { d: 'x', c: [1, 2] }, a: 1, e: undefined }));
  assert.notEqual(jsonHash({ a: 1, b: { c: [1, 2] } }), jsonHash({ a: 1, b: { c: [2, 1] } }));
  assert.notEqual(jsonHash({ data: { keep: '1', x: 'old' } }), jsonHash({ data: { keep: '1' } }));
  assert.match(jsonHash({}), /^[0-9a-f]{16}$/);
});
