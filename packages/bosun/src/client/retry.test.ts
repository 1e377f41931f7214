import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DEFAULT_RETRY_POLICY as P, retryDelay } from './retry.js';

const half = (): number => 0.5;

test('429 waits what Retry-After says, for any method, up to 10 retries', () => {
  assert.equal(retryDelay(P, 0, 'PATCH', { kind: 'status', status: 429, retryAfterSeconds: 2 }, Infinity, half), 2000);
  assert.equal(retryDelay(P, 9, 'POST', { kind: 'status', status: 429, retryAfterSeconds: 1 }, Infinity, half), 1000);
  assert.equal(retryDelay(P, 10, 'GET', { kind: 'status', status: 429, retryAfterSeconds: 1 }, Infinity, half), undefined);
});

test('without Retry-After the delay doubles from 200 ms, jittered down to half, capped at 5 s', () => {
  const d = (n: number, r: number): number | undefined => retryDelay(P, n, 'GET', { kind: 'status', status: 429 }, Infinity, () => r);
  assert.equal(d(0, 1), 200);
  assert.equal(d(0, 0), 100);
  assert.equal(d(3, 1), 1600);
  assert.equal(d(9, 1), 5000);
});

test('5xx: any method when the server sent Retry-After, else only GET', () => {
  assert.equal(retryDelay(P, 0, 'POST', { kind: 'status', status: 503, retryAfterSeconds: 1 }, Infinity, half), 1000);
  assert.equal(retryDelay(P, 0, 'POST', { kind: 'status', status: 500 }, Infinity, half), undefined);
  assert.equal(retryDelay(P, 0, 'GET', { kind: 'status', status: 500 }, Infinity, half), 150);
});

test('other statuses are never retried', () => {
  for (const status of [400, 403, 404, 409, 410, 422])
    assert.equal(retryDelay(P, 0, 'GET', { kind: 'status', status, retryAfterSeconds: 1 }, Infinity, half), undefined, String(status));
});

test('no answer: GETs and requests the server never saw are resent, other writes are not', () => {
  assert.equal(retryDelay(P, 1, 'GET', { kind: 'transport', unprocessed: false }, Infinity, half), 300);
  assert.equal(retryDelay(P, 0, 'PATCH', { kind: 'transport', unprocessed: false }, Infinity, half), undefined);
  assert.equal(retryDelay(P, 0, 'PATCH', { kind: 'transport', unprocessed: true }, Infinity, half), 150);
});

test('a retry that could only start after the deadline is not attempted', () => {
  assert.equal(retryDelay(P, 0, 'GET', { kind: 'status', status: 429, retryAfterSeconds: 3 }, 2999, half), undefined);
  assert.equal(retryDelay(P, 0, 'GET', { kind: 'status', status: 429, retryAfterSeconds: 3 }, 3001, half), 3000);
});
