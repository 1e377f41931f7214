import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, TransportError, isConflict, isGone, isNotFound, isTooManyRequests, parseRetryAfter } from './errors.js';

void test('ApiError names the verb, the object and the server message, and keeps status, reason and Retry-After', () => {
  const e = new ApiError(
    { verb: 'patch', kind: 'Pod', namespace: 'ns', name: 'p' },
    429,
    { reason: 'TooManyRequests', message: 'slow down' },
    3,
  );
  assert.equal(e.message, 'patch Pod ns/p: 429 TooManyRequests: slow down');
  assert.equal(e.name, 'ApiError');
  assert.equal(e.retryAfterSeconds, 3);
  assert.ok(isTooManyRequests(e) && !isNotFound(e) && !isConflict(e) && !isGone(e));
  const fromBody = new ApiError({ verb: 'list', kind: 'Pod' }, 503, { details: { retryAfterSeconds: 7 } });
  assert.equal(fromBody.retryAfterSeconds, 7, 'falls back to the Status details');
  assert.equal(fromBody.message, 'list Pod: 503: HTTP 503');
  assert.ok(isGone(new ApiError({ verb: 'watch' }, 410, undefined)));
  assert.equal(isNotFound(new TransportError({ verb: 'get' }, new Error('ECONNREFUSED'))), false);
});

void test('parseRetryAfter reads delta seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('5'), 5);
  assert.equal(parseRetryAfter(undefined), undefined);
  assert.equal(parseRetryAfter('garbage'), undefined);
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10);
});
