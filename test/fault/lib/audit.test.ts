import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { deletedBetween, foreignPodDeletes, microTime, podCreationTimes, type AuditEvent } from './audit.js';

const ns = 'fault';
function ev(
  auditID: string,
  stage: AuditEvent['stage'],
  verb: string,
  userAgent: string,
  at: string,
  code?: number,
  answered?: string,
): AuditEvent {
  return {
    auditID,
    stage,
    verb,
    userAgent,
    requestURI: `/api/v1/namespaces/${ns}/pods/m-0057-pod`,
    objectRef: { resource: 'pods', namespace: ns, name: 'm-0057-pod' },
    requestReceivedTimestamp: at,
    ...(code === undefined ? {} : { responseStatus: { code } }),
    ...(answered === undefined ? {} : { stageTimestamp: answered }),
  };
}

test('microTime keeps the microseconds of an audit timestamp', () => {
  assert.ok(Math.abs(microTime('2026-12-01T18:40:33.414123Z') - Date.parse('2026-12-01T18:40:33.414Z') - 0.123) < 1e-3);
  assert.ok(microTime('2026-12-01T18:40:33.414900Z') > microTime('2026-12-01T18:40:33.414100Z'));
  assert.equal(microTime('2026-12-01T18:40:33Z'), Date.parse('2026-12-01T18:40:33Z'));
});

test('a deletion received just before a creation but answered after it counts as deleting the created Pod', () => {
  // kwok's deletion by name is received at .412, the operator's create at .414 succeeds, the deletion
  // is answered at .420 and removed the new Pod, so the create at .431 is forced, not a double.
  const events = [
    ev('d1', 'RequestReceived', 'delete', 'kwok', '2026-12-01T18:40:33.412000Z'),
    ev('c1', 'RequestReceived', 'create', 'bosun', '2026-12-01T18:40:33.414000Z'),
    ev('c1', 'ResponseComplete', 'create', 'bosun', '2026-12-01T18:40:33.414000Z', 201, '2026-12-01T18:40:33.416000Z'),
    ev('d1', 'ResponseComplete', 'delete', 'kwok', '2026-12-01T18:40:33.412000Z', 200, '2026-12-01T18:40:33.420000Z'),
    ev('c2', 'RequestReceived', 'create', 'bosun', '2026-12-01T18:40:33.431000Z'),
    ev('c2', 'ResponseComplete', 'create', 'bosun', '2026-12-01T18:40:33.431000Z', 201, '2026-12-01T18:40:33.433000Z'),
  ];
  const since = new Date('2026-12-01T18:40:00Z');
  const creations = podCreationTimes(events, { since, namespace: ns }).get('m-0057-pod')!;
  const deletions = foreignPodDeletes(events, { since, namespace: ns }).get('m-0057-pod')!;
  assert.equal(creations.length, 2);
  assert.deepEqual(deletions, [{ userAgent: 'kwok', receivedAt: creations[0]! - 2, answeredAt: creations[0]! + 6, code: 200 }]);
  assert.equal(deletedBetween(deletions, creations[0]!, creations[1]!), true);
});

test('a deletion that failed, or was answered before the first creation, or received after the second, deleted nothing in between', () => {
  const prev = 1000;
  const next = 1020;
  assert.equal(deletedBetween([{ userAgent: 'kwok', receivedAt: 1005, answeredAt: 1006, code: 404 }], prev, next), false);
  assert.equal(deletedBetween([{ userAgent: 'kwok', receivedAt: 990, answeredAt: 999, code: 200 }], prev, next), false);
  assert.equal(deletedBetween([{ userAgent: 'kwok', receivedAt: 1021, answeredAt: 1022, code: 200 }], prev, next), false);
  assert.equal(deletedBetween([{ userAgent: 'kwok', receivedAt: 1005 }], prev, next), false, 'never answered');
  assert.equal(deletedBetween([{ userAgent: 'kwok', receivedAt: 1005, answeredAt: 1006, code: 200 }], prev, next), true);
});
