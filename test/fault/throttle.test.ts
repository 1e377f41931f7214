// Fault scenario 6: the Message operator throttled by API Priority and Fairness. It runs as a
// process authenticated as a ServiceAccount; a FlowSchema sends that ServiceAccount's requests to a
// PriorityLevelConfiguration of a few seats and one short queue, so the API server itself refuses
// most of its requests with 429 and Retry-After: 1. The same N Messages are converged once without
// the FlowSchema (the baseline) and once with it, each in a namespace of its own; the audit log
// records the ServiceAccount's requests, so the 429s counted are the server's, not a fake's.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeCounts, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { auditUser, serviceAccountIdentity, throttle, type OperatorIdentity } from './lib/identity.js';
import { createMessages, describeViolations, hotLoopReport, hotLoopViolations, names, waitConverged } from './lib/invariants.js';
import { operatorProcess, readOperatorLog, reconcileFailures, type OperatorProcess } from './lib/operator.js';
import { describeThrottle, throttleReport, type ThrottleReport, type UserAuditEvent } from './lib/throttling.js';

const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 1000 : 300;
/** The priority level: 1 share of the server's 600 seats (≈3 seats), one queue of 2, nothing borrowed. */
const THROTTLE = { nominalConcurrencyShares: 1, queueLengthLimit: 2 };
/** The Retry-After APF gives with every 429 (1 s, checked in src/client/auth.integration.test.ts). */
const RETRY_AFTER_MS = 1_000;
/** Timer and timestamp granularity: the API server stamps microseconds, Node's timers may fire up to 1 ms early. */
const CLOCK_SLACK_MS = 5;
/**
 * Admitted writes to one Message and its Pod: 3 without a fault (apply the Pod, status Pending,
 * status Running), plus one per reconcile that failed after a write got through (its retry writes
 * again); the baseline makes 3.
 */
const MAX_ADMITTED_WRITES_PER_OBJECT = 6;

interface Phase {
  convergedMs: number;
  report: ThrottleReport;
}

describe(`the operator throttled by API Priority and Fairness while it converges ${N} Messages`, () => {
  let cluster: FaultCluster;
  let identity: OperatorIdentity;
  let baseline: Phase | undefined;
  const ops: OperatorProcess[] = [];
  const saNamespace = 'fault-throttle-sa';

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-throttle' });
    for (const ns of [saNamespace, 'fault-throttle-base', 'fault-throttle']) await cluster.namespace(ns);
    identity = await serviceAccountIdentity(cluster, saNamespace, 'bosun-operator');
    await auditUser(cluster, identity.username);
  });

  after(async () => {
    for (const op of ops) await op.stop();
    await cluster?.destroy();
  });

  /** Starts the operator as the ServiceAccount for `ns`, creates N Messages there, and waits for the invariants. */
  async function converge(
    ns: string,
    timeoutMs: number,
  ): Promise<{ op: OperatorProcess; since: Date; convergedMs: number; startMs: number }> {
    const op = operatorProcess({
      kubeconfig: identity.kubeconfig,
      namespace: ns,
      logFile: join(cluster.dir, 'logs', `operator-${ns}.log`),
    });
    ops.push(op);
    const since = new Date();
    const startMs = await op.start();
    const t0 = performance.now();
    const expected = new Map(names('m', N).map((n) => [n, `fault suite: ${n}`]));
    await createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!);
    const { ms } = await waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected });
    return { op, since, convergedMs: ms, startMs };
  }

  test('baseline: unthrottled, the same ServiceAccount converges the Messages with no 429', async (t) => {
    const ns = 'fault-throttle-base';
    const { op, since, convergedMs, startMs } = await converge(ns, 60_000);
    const hot = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const report = throttleReport((await readAudit(cluster.auditLog)) as UserAuditEvent[], {
      username: identity.username,
      namespace: ns,
      since,
    });
    baseline = { convergedMs, report };
    t.diagnostic(`caches synced ${startMs.toFixed(0)} ms after the start; converged ${convergedMs.toFixed(0)} ms after the first create`);
    t.diagnostic(`as ${identity.username}: ${describeThrottle(report, N)}`);
    t.diagnostic(`by user agent: ${describeCounts(hot.counts)}`);
    assert.ok(report.received > N, `the audit log records the ServiceAccount's requests (${report.received} for ${N} Messages)`);
    assert.equal(report.refused, 0, 'no 429 without the FlowSchema');
    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    const v = hotLoopViolations(hot, MAX_ADMITTED_WRITES_PER_OBJECT);
    assert.deepEqual(v, [], describeViolations(v));
    await op.stop();
  });

  test('throttled: real 429s, every refused request retried no sooner than Retry-After, no storm, converged', async (t) => {
    const ns = 'fault-throttle';
    await throttle(cluster, identity, 'bosun-fault-throttle', THROTTLE);
    // At most 3 seats and 2 queued for ~3 requests per Message: the baseline's time stretched by 1 s per refusal round.
    const { op, since, convergedMs, startMs } = await converge(ns, LONG ? 300_000 : 120_000);
    const hot = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const report = throttleReport((await readAudit(cluster.auditLog)) as UserAuditEvent[], {
      username: identity.username,
      namespace: ns,
      since,
    });
    const log = await readOperatorLog(op.logFile);
    const failures = reconcileFailures(log);
    const retryLater = log.filter((l) => l.msg === 'the API server asked to retry later; retrying after its Retry-After').length;
    const watchRestarts = log.filter((l) => l.msg === 'watch restarting').length;

    t.diagnostic(`priority level: ${JSON.stringify(THROTTLE)}; caches synced ${startMs.toFixed(0)} ms after the start`);
    t.diagnostic(`converged ${convergedMs.toFixed(0)} ms after the first create (baseline ${baseline?.convergedMs.toFixed(0) ?? '?'} ms)`);
    t.diagnostic(`as ${identity.username}: ${describeThrottle(report, N)}`);
    if (baseline) t.diagnostic(`baseline: ${describeThrottle(baseline.report, N)}`);
    t.diagnostic(
      `operator log: ${retryLater} reconciles requeued after a 429 the client had retried to its limit, ${failures.total} other failed reconciles, ${watchRestarts} watch restarts`,
    );
    t.diagnostic(
      `by user agent: ${describeCounts(hot.counts)}; after convergence (3 s): ${hot.quiet.total} requests, ${hot.quiet.writes} writes`,
    );

    assert.ok(report.refused > 0, "the API server refused some of the operator's requests with 429 (the throttle took effect)");
    assert.ok(report.retryGapsMs.length > 0, 'some refused request named its object, so its retry can be timed');
    assert.ok(
      report.retryGapsMs[0]! >= RETRY_AFTER_MS - CLOCK_SLACK_MS,
      `every refused request was sent again no sooner than Retry-After (${RETRY_AFTER_MS} ms); the quickest came after ${report.retryGapsMs[0]} ms`,
    );
    // No storm: a client that waits out Retry-After is refused at most once a second per request it
    // has outstanding (16 workers, the watches, the Event writes), while ~3 seats admit requests of a
    // few ms each; a client that retried at once would be refused many times per admitted request.
    assert.ok(report.refused <= report.admitted, `no request storm: ${report.refused} requests refused for ${report.admitted} admitted`);
    assert.equal(report.notRetried, 0, 'every refused request that named its object was sent again (none given up)');
    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    const v = [
      ...hotLoopViolations(
        { counts: { ...hot.counts, maxWritesPerObject: { name: '', writes: 0 } }, quiet: hot.quiet },
        MAX_ADMITTED_WRITES_PER_OBJECT,
      ),
      ...(report.maxAdmittedWritesPerObject.writes > MAX_ADMITTED_WRITES_PER_OBJECT
        ? [
            `${report.maxAdmittedWritesPerObject.writes} admitted writes to Message ${report.maxAdmittedWritesPerObject.name} and its Pod, more than the bound ${MAX_ADMITTED_WRITES_PER_OBJECT}`,
          ]
        : []),
    ];
    assert.deepEqual(v, [], describeViolations(v));
  });
});
