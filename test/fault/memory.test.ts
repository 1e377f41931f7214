// Fault scenario 9: memory pressure. The Message operator runs as a process whose V8 heap is capped
// (NODE_OPTIONS=--max-old-space-size) against a namespace that already holds N Messages (1,000;
// 10,000 with FAULT_LONG=1), as after a restart on a big cluster, where controller-runtime caches
// get OOM-killed. One process gets a heap too small to hold comfortably what N Messages and their
// Pods take, another one a little more; both run at once, each on a namespace of its own. Each must
// either converge or fail loudly: exit non-zero with V8's out-of-memory message in its log (and
// /healthz then unanswered). What must never happen is a silent stall: the process alive, /healthz
// 200, and nothing moving toward convergence.
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import {
  createMessages,
  describeViolations,
  hotLoopReport,
  hotLoopViolations,
  names,
  readNamespace,
  violations,
} from './lib/invariants.js';
import { metricValue, operatorProcess, type OperatorProcess } from './lib/operator.js';

const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 10_000 : 1_000;
/**
 * Heap caps in MB. The process takes ~15–20 MB of heap before it caches anything (tsx, the client,
 * prom-client); 1,000 Messages and their Pods add ~10 MB of live objects. 24 MB is below what it
 * needs at the peak of the convergence (it died there in one of two runs), 40 MB is above.
 */
const HEAPS_MB = LONG ? [96, 160] : [24, 40];
/**
 * Longest time with the process alive, /healthz 200 and no Message or Pod closer to convergence.
 * With both capped processes, the control plane and other test runs on 2 cores, the longest gap
 * measured between two changes was 21.5 s (one Pod bound or Running, one status written); a silent
 * stall lasts for good, so a bound of 60 s tells the two apart without flagging a slow machine.
 */
const STALL_MS = 60_000;
/** How often the namespace, the process and its /healthz are looked at. */
const POLL_MS = LONG ? 5_000 : 2_000;
/** A run that neither converges nor exits within this is a failure too (the long form's 10,000 take minutes). */
const RUN_TIMEOUT_MS = LONG ? 900_000 : 150_000;
/** What V8 prints to stderr when the heap limit is reached. */
const OOM_MESSAGE = /FATAL ERROR: .*JavaScript heap out of memory/;

/** `p`, or a rejection after `ms`: a process near its heap limit may take long to answer. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** How one capped process ended. */
interface Run {
  heapMb: number;
  namespace: string;
  outcome: 'converged' | 'exited' | 'stalled' | 'timed out';
  /** From the start of the process to the outcome, in ms. */
  ms: number;
  /** How the process exited (code or signal), when it did. */
  exit?: string;
  /** Whether V8's out-of-memory message is in the process's log. */
  oomMessage: boolean;
  /** /healthz after the exit (undefined: no answer, as a kubelet's liveness probe would find it). */
  healthzAfterExit?: number | undefined;
  /** The longest time without progress while /healthz answered 200, in ms. */
  longestQuietMs: number;
  /** Times /healthz did not answer 200 while the process was alive. */
  healthzFailures: number;
  /** The most heap the process reported using (nodejs_heap_size_used_bytes), in MB. */
  peakHeapMb: number;
  /** Seconds it spent in garbage collection (nodejs_gc_duration_seconds_sum at the last look). */
  gcSeconds: number;
  /** Invariant violations left at the end (0 when converged) and Messages Ready. */
  violationsLeft: number;
  ready: number;
  logFile: string;
}

describe(`the operator with a capped heap (--max-old-space-size ${HEAPS_MB.join(' MB, ')} MB) against ${N} Messages`, () => {
  let cluster: FaultCluster;
  const ops: OperatorProcess[] = [];
  const expected = new Map(names('m', N).map((n) => [n, `fault suite: ${n}`]));

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-memory' });
    for (const heap of HEAPS_MB) {
      const ns = await cluster.namespace(`fault-memory-${heap}`);
      await createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!);
    }
  });

  after(async () => {
    for (const op of ops) await op.stop();
    await cluster?.destroy();
  });

  /** Runs one capped process on `namespace` until it converges, exits, stalls silently or times out. */
  async function underHeap(heapMb: number, namespace: string): Promise<Run> {
    const logFile = join(cluster.dir, 'logs', `operator-${heapMb}mb.log`);
    const op = operatorProcess({
      kubeconfig: cluster.kubeconfig,
      namespace,
      logFile,
      env: { NODE_OPTIONS: `--max-old-space-size=${heapMb}` },
    });
    ops.push(op);
    const t0 = performance.now();
    // start() resolves once /readyz is 200 and rejects if the process exits first; the watch below
    // covers the start too, since a process can stall (or die) while its caches fill.
    let started = false;
    void op.start().then(
      () => (started = true),
      () => undefined,
    );
    const run: Run = {
      heapMb,
      namespace,
      outcome: 'timed out',
      ms: 0,
      oomMessage: false,
      longestQuietMs: 0,
      healthzFailures: 0,
      peakHeapMb: 0,
      gcSeconds: 0,
      violationsLeft: -1,
      ready: 0,
      logFile,
    };
    let best = Infinity;
    let lastProgress = t0;
    for (;;) {
      const now = performance.now();
      const state = await readNamespace(cluster.client, namespace);
      const v = violations(state, expected).length;
      run.violationsLeft = v;
      run.ready = state.messages.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
      if (v < best) {
        best = v;
        lastProgress = now;
      }
      if (v === 0) {
        run.outcome = 'converged';
        break;
      }
      if (!op.alive() && op.pid !== undefined) {
        run.outcome = 'exited';
        break;
      }
      const health = await op.healthz();
      if (op.alive() && health !== undefined && op.pid !== undefined) {
        const metrics = await within(op.metrics(), 5_000).catch(() => '');
        run.peakHeapMb = Math.max(run.peakHeapMb, metricValue(metrics, 'nodejs_heap_size_used_bytes') / 2 ** 20);
        if (metrics) run.gcSeconds = metricValue(metrics, 'nodejs_gc_duration_seconds_sum');
      }
      if (health === 200) {
        run.longestQuietMs = Math.max(run.longestQuietMs, now - lastProgress);
        if (now - lastProgress > STALL_MS) {
          run.outcome = 'stalled';
          break;
        }
      } else if (op.alive() && started) {
        run.healthzFailures++;
      }
      if (now - t0 > RUN_TIMEOUT_MS) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    run.ms = performance.now() - t0;
    if (run.outcome === 'exited') {
      run.exit = op.exitedUnexpectedly();
      run.healthzAfterExit = await op.healthz(2_000);
    }
    run.oomMessage = OOM_MESSAGE.test(await readFile(logFile, 'utf8').catch(() => ''));
    return run;
  }

  test('each capped process either converges or exits non-zero with an out-of-memory message; none stalls silently', async (t) => {
    const since = new Date();
    const runs = await Promise.all(HEAPS_MB.map((heap) => underHeap(heap, `fault-memory-${heap}`)));
    for (const r of runs) {
      const end =
        r.outcome === 'exited'
          ? `exited (${r.exit ?? 'exit code 0'}) after ${(r.ms / 1000).toFixed(1)} s, ${r.oomMessage ? 'with' : 'WITHOUT'} V8's out-of-memory message in its log, /healthz then ${r.healthzAfterExit ?? 'unanswered'}; ${r.ready}/${N} Ready, ${r.violationsLeft} violations left`
          : `${r.outcome} after ${(r.ms / 1000).toFixed(1)} s (${r.ready}/${N} Ready)`;
      t.diagnostic(
        `--max-old-space-size=${r.heapMb}: ${end}; peak heap used ${r.peakHeapMb.toFixed(1)} MB, ${r.gcSeconds.toFixed(1)} s in GC; longest time with /healthz 200 and no progress ${(r.longestQuietMs / 1000).toFixed(1)} s; /healthz not 200 while alive: ${r.healthzFailures} times`,
      );
    }
    for (const r of runs.filter((x) => x.outcome === 'converged')) {
      const hot = await hotLoopReport(cluster.auditLog, { since, namespace: r.namespace });
      t.diagnostic(
        `--max-old-space-size=${r.heapMb}: ${hot.counts.total} requests (${(hot.counts.total / N).toFixed(2)} per Message), ${hot.quiet.writes} writes in the 3 s after convergence`,
      );
      const v = hotLoopViolations(hot, 6);
      assert.deepEqual(v, [], `--max-old-space-size=${r.heapMb}: ${describeViolations(v)}`);
    }
    for (const r of runs) {
      const where = `--max-old-space-size=${r.heapMb} (log ${r.logFile})`;
      assert.notEqual(r.outcome, 'stalled', `${where}: alive, /healthz 200, and no progress for ${STALL_MS} ms: a silent stall`);
      assert.notEqual(r.outcome, 'timed out', `${where}: neither converged nor exited in ${RUN_TIMEOUT_MS} ms`);
      if (r.outcome === 'exited') {
        assert.ok(r.exit !== undefined && r.exit !== 'code 0', `${where}: exited with ${r.exit ?? 'code 0'}; a failure must exit non-zero`);
        assert.ok(r.oomMessage, `${where}: exited without an out-of-memory message in its log`);
        assert.equal(r.healthzAfterExit, undefined, `${where}: /healthz still answered after the exit`);
      }
    }
  });
});
