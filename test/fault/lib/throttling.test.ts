import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { throttleReport, type UserAuditEvent } from './throttling.js';

const user = 'system:serviceaccount:sa:op';
let id = 0;
/** A request received at `at` ms and answered `code` at `answeredAt` ms (seconds since an arbitrary epoch). */
function request(
  verb: string,
  uri: string,
  name: string | undefined,
  at: number,
  code: number,
  answeredAt = at + 5,
  username = user,
): UserAuditEvent[] {
  const auditID = String(++id);
  const objectRef = { resource: 'pods', namespace: 'ns', name };
  const ts = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
  const base = { auditID, verb, requestURI: uri, objectRef, user: { username }, requestReceivedTimestamp: ts(at) };
  return [
    { ...base, stage: 'RequestReceived', stageTimestamp: ts(at) },
    { ...base, stage: 'ResponseComplete', stageTimestamp: ts(answeredAt), responseStatus: { code } },
  ];
}

test('a refused request and its retry: the gap is timed from the 429 answer, not from the receipt', () => {
  const events = [
    ...request('patch', '/api/v1/namespaces/ns/pods/a', 'a', 0, 429, 3_000),
    ...request('patch', '/api/v1/namespaces/ns/pods/a', 'a', 4_100, 201),
    ...request('patch', '/api/v1/namespaces/ns/pods/b', 'b', 50, 200),
  ];
  const r = throttleReport(events, { username: user, namespace: 'ns', since: new Date(Date.UTC(2026, 0, 1)) });
  assert.equal(r.received, 3);
  assert.equal(r.refused, 1);
  assert.equal(r.admitted, 2);
  assert.deepEqual(r.retryGapsMs, [1_100]);
  assert.equal(r.notRetried, 0);
  assert.deepEqual(r.refusedByKind, { 'patch pods': 1 });
  assert.equal(r.maxAdmittedWritesPerObject.writes, 1, 'the refused patch of a is no write');
});

test('a refused request never sent again is counted; creates to a collection are not timed; other users are left out', () => {
  const events = [
    ...request('patch', '/api/v1/namespaces/ns/pods/a', 'a', 0, 429),
    ...request('create', '/api/v1/namespaces/ns/events', undefined, 10, 429),
    ...request('create', '/api/v1/namespaces/ns/events', undefined, 20, 201),
    ...request('patch', '/api/v1/namespaces/ns/pods/a', 'a', 30, 429, 35, 'someone-else'),
  ];
  const r = throttleReport(events, { username: user, namespace: 'ns', since: new Date(Date.UTC(2026, 0, 1)) });
  assert.equal(r.refused, 2);
  assert.equal(r.notRetried, 1);
  assert.deepEqual(r.retryGapsMs, []);
});

test('the most 429s in one window slides over the refusals', () => {
  const events = [0, 400, 900, 1_000, 1_950, 2_500].flatMap((at, i) =>
    request('patch', `/api/v1/namespaces/ns/pods/p${i}`, `p${i}`, at, 429),
  );
  const r = throttleReport(events, { username: user, namespace: 'ns', since: new Date(Date.UTC(2026, 0, 1)) });
  // 0, 400, 900 (and 400, 900, 1000) lie within one second; 900, 1000, 1950 do not (1,050 ms).
  assert.equal(r.maxRefusedPerWindow, 3);
});

test('retry gaps are grouped by how many times in a row the request had been refused', () => {
  const uri = '/api/v1/namespaces/ns/pods/a';
  const events = [
    ...request('patch', uri, 'a', 0, 429, 0),
    ...request('patch', uri, 'a', 1_300, 429, 1_300),
    ...request('patch', uri, 'a', 3_500, 200),
    ...request('patch', uri, 'a', 10_000, 429, 10_000),
    ...request('patch', uri, 'a', 11_100, 200),
  ];
  const r = throttleReport(events, { username: user, namespace: 'ns', since: new Date(Date.UTC(2026, 0, 1)) });
  assert.deepEqual(r.minRetryGapByRefusal, [1_100, 2_200]);
  assert.deepEqual(r.retryGapsMs, [1_100, 1_300, 2_200]);
});

test('an Event patch is best effort: one given up is not a refused request never retried, and the next occurrence is not its retry', () => {
  const eventPatch = (at: number, code: number, answeredAt?: number) =>
    request('patch', '/api/v1/namespaces/ns/events/m-0001.1', 'm-0001.1', at, code, answeredAt).map((e) => ({
      ...e,
      objectRef: { ...e.objectRef!, resource: 'events' },
    }));
  const events = [
    // Refused, retried after Retry-After, refused until the recorder's 10 s deadline: dropped.
    ...eventPatch(0, 429, 5),
    ...eventPatch(1_010, 429, 1_015),
    ...eventPatch(3_020, 429, 3_025),
    // The same Event's next occurrence, 200 ms after the last refusal: a new write, not an early retry.
    ...eventPatch(3_225, 200),
  ];
  const r = throttleReport(events, { username: user, namespace: 'ns', since: new Date(Date.UTC(2026, 0, 1)) });
  assert.equal(r.refused, 3);
  assert.deepEqual(r.retryGapsMs, []);
  assert.equal(r.notRetried, 0);
});
