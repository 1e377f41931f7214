// Fault scenario 2: a watch gap longer than etcd's history. The operator process is paused
// (SIGSTOP) and its connections are cut while Messages are created, deleted, re-created under the
// same name and edited; etcd is compacted past everything the operator saw, so when it resumes
// (SIGCONT) its Message watch gets 410 Gone and must relist. Nothing may be lost or done twice: a
// re-created Message is a delete plus a create (a new Pod owned by the new uid), and each change
// costs exactly the Pod creations it needs.
//
// The API server's watch cache keeps serving compacted revisions from its own window (checked on
// 1.35: after an etcd compaction a watch from a compacted revision still replays), so Messages are
// served without it (--watch-cache-sizes=messages.myorg.dev#0): etcd answers their watches and the
// compaction expires the operator's resourceVersion. Pods keep the cache: without it kwok deletes
// re-created same-name Pods again and again (348 deletions for 20 edited Messages, against 32 with
// it), and restarting the API server in the gap instead left kube-scheduler with a corrupted cache
// that never bound a Pod again. So the Pod watch resumes from the cache and the Message watch relists.
// On a control plane of its own; the operator goes through a fault proxy so its connections can be
// cut while it is paused.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { startFaultProxy, writeProxyKubeconfig, type FaultProxy } from '../../packages/bosun/src/tooling/envtest/faultproxy.js';
import { eventually } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import { countRequests, describeCounts, foreignPodDeletes, OPERATOR_USER_AGENT, podCreationTimes, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { compactEtcd, etcdRevision } from './lib/etcd.js';
import {
  createMessages,
  describeViolations,
  hotLoopReport,
  hotLoopViolations,
  names,
  readNamespace,
  waitConverged,
} from './lib/invariants.js';
import { metricValue, operatorProcess, type OperatorProcess } from './lib/operator.js';

const LONG = process.env.FAULT_LONG === '1';
/**
 * FAULT_WATCH_CACHE=off: the API server runs without any watch cache (--watch-cache=false), so the Pod
 * watch gets 410 and relists too, and the two relists finish in no fixed order. kwok then deletes
 * re-created same-name Pods far more often (see above): slower, so not the default.
 */
const NO_WATCH_CACHE = process.env.FAULT_WATCH_CACHE === 'off';
/** Messages converged before the gap. */
const BASE = LONG ? 300 : 100;
/** Changes made during the gap. */
const CREATED = 50;
const DELETED = 10;
const RECREATED = 5;
const EDITED = 10;
/** Writes to one Message and its Pod in the gap's aftermath: an edit costs delete Pod, status, apply Pod, status Pending, status Running. */
// Status writes are conditional on the version read, so one computed before the relist caught up is refused (409)
// and sent again: the bound leaves room for that (a run measured 7 for one edited Message).
const MAX_WRITES_PER_OBJECT = 8;

describe('a watch gap past etcd compaction (410 Gone, relist)', () => {
  let cluster: FaultCluster;
  let proxy: FaultProxy;
  let op: OperatorProcess;
  const ns = 'fault-compaction';

  before(async () => {
    cluster = await startFaultCluster({
      prefix: 'fault-compaction',
      apiserverArgs: NO_WATCH_CACHE ? ['--watch-cache=false'] : ['--watch-cache-sizes=messages.myorg.dev#0'],
    });
    await cluster.namespace(ns);
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: cluster.state.ports.apiserver } });
    const kubeconfig = await writeProxyKubeconfig(cluster.kubeconfig, proxy.url, join(cluster.dir, 'config', 'operator.kubeconfig'));
    op = operatorProcess({ kubeconfig, namespace: ns, logFile: join(cluster.dir, 'logs', 'operator.log') });
    await op.start();
  });

  after(async () => {
    await op?.stop();
    await proxy?.close();
    await cluster?.destroy();
  });

  test('every change made in the gap is handled once: creates, deletes, re-creates under the same name, edits', async (t) => {
    const client = cluster.client;
    const expected = new Map(names('m', BASE).map((n) => [n, `before the gap: ${n}`]));
    const t0 = performance.now();
    await createMessages(client, ns, [...expected.keys()], (n) => expected.get(n)!);
    const { ms: baseMs } = await waitConverged(client, ns, { since: t0, timeoutMs: 90_000, expected });
    const before = await readNamespace(client, ns);
    const oldUid = new Map(before.messages.map((m) => [m.metadata.name!, m.metadata.uid!]));

    // The gap: the operator is frozen and cut off, the world changes, etcd forgets.
    const gapFrom = new Date();
    const revBefore = await etcdRevision(cluster.etcdUrl);
    const goneBefore = metricValue(await op.metrics(), 'bosun_watch_restarts_total', { reason: 'gone' });
    await op.signal('SIGSTOP');
    const cutConnections = proxy.connections();
    proxy.cut();

    const created = names('n', CREATED);
    for (const n of created) expected.set(n, `made in the gap: ${n}`);
    await createMessages(client, ns, created, (n) => expected.get(n)!);

    const deleted = names('m', DELETED);
    await Promise.all(deleted.map((n) => client.delete(MessageResource, ns, n, { propagationPolicy: 'Background' })));
    for (const n of deleted) expected.delete(n);
    // Their Pods are garbage-collected while the operator sleeps, so a re-created Message must get a new Pod.
    const deletedUids = new Set(deleted.map((n) => oldUid.get(n)!));
    await eventually(
      'the deleted Messages and their Pods gone',
      async () => {
        const s = await readNamespace(client, ns);
        const left =
          s.messages.filter((m) => deletedUids.has(m.metadata.uid!)).length +
          s.pods.filter((p) => p.metadata.ownerReferences?.some((r) => deletedUids.has(r.uid))).length;
        return left === 0 ? true : undefined;
      },
      60_000,
      250,
    );

    const recreated = deleted.slice(0, RECREATED);
    for (const n of recreated) expected.set(n, `re-created in the gap: ${n}`);
    const newUid = await createMessages(client, ns, recreated, (n) => expected.get(n)!);

    const edited = names('m', EDITED, 50);
    for (const n of edited) expected.set(n, `edited in the gap: ${n}`);
    await Promise.all(edited.map((n) => client.patch<Message>(MessageResource, ns, n, { spec: { text: expected.get(n) } })));

    const compactedAt = await compactEtcd(cluster.etcdUrl);
    const gapMs = Date.now() - gapFrom.getTime();

    // Resume: the operator finds its connections dead, reconnects from revisions nobody has any more.
    const resumed = new Date();
    const r0 = performance.now();
    await op.signal('SIGCONT');
    const { ms: convergedMs } = await waitConverged(client, ns, { since: r0, timeoutMs: 90_000, expected });
    const report = await hotLoopReport(cluster.auditLog, { since: resumed, namespace: ns });
    const events = await readAudit(cluster.auditLog);
    const afterResume = countRequests(events, { userAgent: OPERATOR_USER_AGENT, since: resumed, namespace: ns });
    const firstList = events
      .filter(
        (e) =>
          e.stage === 'RequestReceived' &&
          e.userAgent === OPERATOR_USER_AGENT &&
          e.verb === 'list' &&
          Date.parse(e.requestReceivedTimestamp) >= resumed.getTime(),
      )
      .map((e) => Date.parse(e.requestReceivedTimestamp))
      .sort((a, b) => a - b)[0];
    const metrics = await op.metrics();
    const gone = (resource: RegExp) => metricValue(metrics, 'bosun_watch_restarts_total', { reason: 'gone', resource });
    const goneMessages = gone(/messages|Message/);
    const gonePods = gone(/pods|Pod/);
    const goneAll = metricValue(metrics, 'bosun_watch_restarts_total', { reason: 'gone' });

    t.diagnostic(`${BASE} Messages converged before the gap in ${baseMs.toFixed(0)} ms`);
    t.diagnostic(
      `gap: operator SIGSTOPped ${gapMs} ms; ${CREATED} created, ${DELETED} deleted, ${RECREATED} of them re-created, ${EDITED} edited; etcd compacted at revision ${compactedAt} (the operator had seen at most ${revBefore}); ${cutConnections} connections of the operator cut`,
    );
    t.diagnostic(
      `time to notice: the operator's first relist ${firstList === undefined ? 'never came' : `${firstList - resumed.getTime()} ms after SIGCONT`}; relists after 410: ${goneMessages} of Messages, ${gonePods} of Pods`,
    );
    t.diagnostic(`time to converge: ${convergedMs.toFixed(0)} ms after SIGCONT`);
    t.diagnostic(
      `operator requests after SIGCONT: ${describeCounts(afterResume)}; in the 3 s after convergence: ${report.quiet.total} requests, ${report.quiet.writes} writes`,
    );

    // Every watch relisted after 410.
    assert.equal(goneBefore, 0, 'no relist before the gap');
    assert.equal(
      goneAll,
      goneMessages + gonePods,
      `every relist is of Messages or Pods: ${metrics
        .split('\n')
        .filter((l) => l.startsWith('bosun_watch_restarts_total'))
        .join('; ')}`,
    );
    assert.ok(goneMessages >= 1, `the Message watch relisted after 410 Gone (bosun_watch_restarts_total{reason="gone"} = ${goneMessages})`);
    if (NO_WATCH_CACHE) assert.ok(gonePods >= 1, `without the watch cache the Pod watch relisted after 410 Gone too (${gonePods})`);

    // A re-created Message is a new object: its Pod is new and owned by the new uid.
    const end = await readNamespace(client, ns);
    for (const n of recreated) {
      const pod = end.pods.find((p) => p.metadata.name === `${n}-pod`);
      assert.ok(pod, `re-created Message ${n} has its Pod`);
      assert.notEqual(newUid.get(n), oldUid.get(n), `${n} got a new uid`);
      assert.equal(
        pod.metadata.ownerReferences?.find((r) => r.controller)?.uid,
        newUid.get(n),
        `the Pod of re-created ${n} is owned by the new Message`,
      );
    }

    // Nothing done twice: one Pod creation per Message that needed a Pod, and none for the others.
    // kwok (the fake kubelet) deletes by name, without a uid precondition, and sometimes deletes a
    // re-created same-name Pod as well; each such deletion forces one more creation, which is right.
    // So every creation after a name's first must follow a deletion by someone else since the last one.
    const needed = new Set([...created, ...recreated, ...edited].map((n) => `${n}-pod`));
    const creations = podCreationTimes(events, { since: resumed, namespace: ns });
    const foreign = foreignPodDeletes(events, { since: resumed, namespace: ns });
    const unneeded = [...creations.keys()].filter((n) => !needed.has(n));
    // The Pod watch may resume before the Message watch has relisted after its 410: the Pod deletions the garbage
    // collector made in the gap then wake Messages deleted in the gap. The controller holds its reconciles while
    // the Message cache is known to be behind, so they find those Messages gone and make no Pod for them.
    assert.deepEqual(unneeded, [], 'no Pod created for a Message that needed none (deleted, or untouched in the gap)');
    const missing = [...needed].filter((n) => !creations.has(n));
    assert.deepEqual(missing, [], 'a Pod created for each new, re-created and edited Message');
    const unprovoked: string[] = [];
    let forced = 0;
    for (const [name, times] of creations) {
      for (let i = 1; i < times.length; i++) {
        if ((foreign.get(name) ?? []).some((d) => d > times[i - 1]! && d <= times[i]!)) forced++;
        else
          unprovoked.push(
            `${name} created again at ${new Date(times[i]!).toISOString()} with no deletion since ${new Date(times[i - 1]!).toISOString()}`,
          );
      }
    }
    t.diagnostic(
      `Pod creations after SIGCONT: ${[...creations.values()].reduce((a, x) => a + x.length, 0)} for ${needed.size} Messages that needed one; ${forced} of them replaced a Pod kwok deleted by name after its creation`,
    );
    assert.deepEqual(unprovoked, [], 'no Pod created twice without a deletion in between');
    // One Pod deletion that took effect per edit. A reconcile re-run by the operator's own status
    // write while its Pod cache still replays the gap's backlog can send the delete again; the
    // uid precondition makes that a 404, never a second Pod deleted (counted, reported, allowed).
    const podDeletes = events.filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        e.userAgent === OPERATOR_USER_AGENT &&
        e.verb === 'delete' &&
        e.objectRef?.resource === 'pods' &&
        Date.parse(e.requestReceivedTimestamp) >= resumed.getTime(),
    );
    const effective = podDeletes.filter((e) => e.responseStatus?.code === 200 || e.responseStatus?.code === 202);
    const repeated = podDeletes.filter((e) => !effective.includes(e));
    t.diagnostic(
      `Pod deletions by the operator after SIGCONT: ${effective.length} took effect, ${repeated.length} repeated (answered ${[...new Set(repeated.map((e) => e.responseStatus?.code))].join(', ') || '-'})`,
    );
    assert.deepEqual(
      effective.map((e) => e.objectRef?.name).sort(),
      edited.map((n) => `${n}-pod`).sort(),
      'the operator deleted exactly the Pods of the edited Messages, once each',
    );
    assert.deepEqual(
      repeated.filter((e) => e.responseStatus?.code !== 404 && e.responseStatus?.code !== 409),
      [],
      'a repeated delete found the Pod gone (404) or replaced (409, uid precondition)',
    );
    // The Pods of untouched Messages were left alone.
    const untouched = [...expected.keys()].filter((n) => !needed.has(`${n}-pod`));
    const touched = untouched.filter(
      (n) =>
        (afterResume.podCreationsByName.get(`${n}-pod`) ?? 0) > 0 ||
        before.pods.find((p) => p.metadata.name === `${n}-pod`)?.metadata.uid !==
          end.pods.find((p) => p.metadata.name === `${n}-pod`)?.metadata.uid,
    );
    assert.deepEqual(touched, [], 'the Pods of Messages untouched in the gap are the same Pods');

    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    // The write bound per Message+Pod grows by one apply and two status writes per forced replacement.
    const over = [...afterResume.writesPerObject].filter(([name, w]) => {
      const pod = `${name}-pod`;
      return w > MAX_WRITES_PER_OBJECT + 3 * Math.max(0, (creations.get(pod)?.length ?? 0) - 1);
    });
    assert.deepEqual(over, [], `writes per Message+Pod within ${MAX_WRITES_PER_OBJECT} (+3 per forced replacement)`);
    const hot = hotLoopViolations(report, Infinity);
    assert.deepEqual(hot, [], describeViolations(hot));
  });
});
