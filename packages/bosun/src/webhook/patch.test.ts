import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyJsonPatch, createJsonPatch } from './patch.js';

void test('no operations for equal objects, whatever their key order', () => {
  assert.deepEqual(createJsonPatch({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }), []);
});

void test('the patch turns the original into the mutated object: added, changed, removed fields and array items', () => {
  const original = {
    metadata: { name: 'w', labels: { a: '1', 'x/y': 'z' } },
    spec: { size: 3, parts: ['a', 'b', 'c'], gone: true, nested: { deep: { keep: 1 } } },
  };
  const mutated = {
    metadata: { name: 'w', labels: { a: '2', 'x/y': 'z', 'tilde~slash/': 'n' } },
    spec: { size: 4, parts: ['b', 'c'], nested: { deep: { keep: 1, added: [{ k: 'v' }] } } },
  };
  const patch = createJsonPatch(original, mutated);
  assert.ok(patch.length > 0);
  assert.deepEqual(applyJsonPatch(original, patch), mutated);
  // JSON pointers escape '~' and '/' in keys (RFC 6901), as the API server reads them.
  assert.ok(patch.some((op) => op.path === '/metadata/labels/tilde~0slash~1'));
});

void test('fields JSON cannot hold are not in the patch: an undefined value is an absent field', () => {
  assert.deepEqual(createJsonPatch({ spec: { a: 1 } }, { spec: { a: 1, b: undefined } }), []);
  assert.deepEqual(createJsonPatch({ spec: { a: 1, b: 2 } }, { spec: { a: 1, b: undefined } }), [{ op: 'remove', path: '/spec/b' }]);
});

void test('applying does not change the original', () => {
  const original = { spec: { a: 1 } };
  applyJsonPatch(original, [{ op: 'replace', path: '/spec/a', value: 2 }]);
  assert.deepEqual(original, { spec: { a: 1 } });
});
