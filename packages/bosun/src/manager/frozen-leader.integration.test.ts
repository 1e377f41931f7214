// A leader whose process was frozen (SIGSTOP, a VM pause, a long GC pause) past its renew deadline
// must not send the write it was about to send when it froze: by its own clock its term is over and
// another replica may lead. The step-down timer cannot prevent it, since nothing says the timer runs
// before the code that resumes first; only a check of the clock as each write leaves can.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { isNotFound } from '../client/errors.js';
import { ConfigMap } from '../client/resources.js';
import { controller } from '../controller/builder.js';
import { startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { silentLogger } from '../telemetry/logger.js';
import { LeaderElectionLostError, Manager } from './manager.js';

let env: TestEnv;
let ns: string;
let admin: KubeClient;

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('frozen-leader');
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  admin?.close();
  await env?.cleanup();
});

const TIMING = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 250 };

/** Blocks this whole process, timers and I/O included, as SIGSTOP would, while its monotonic clock runs on. */
function freezeProcess(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

void test('a leader frozen past its renew deadline between a read and a write does not send the write after it resumes; it stops with LeaderElectionLostError', async () => {
  let outcome: unknown = 'not reached';
  const spec = controller('frozen')
    .for(ConfigMap)
    .reconcile(async (req, ctx) => {
      if (req.name !== 'trigger') return;
      await ctx.client.get(ConfigMap, ns, 'trigger', ctx.signal);
      // Frozen past the renew deadline and the lease duration: another replica could have taken over.
      freezeProcess(TIMING.leaseDurationMs + 1_000);
      outcome = await ctx.client
        .create(
          ConfigMap,
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'written-after-freeze', namespace: ns }, data: {} },
          { signal: ctx.signal },
        )
        .then(
          () => 'sent and accepted',
          (err: unknown) => err,
        );
    });
  const mgr = new Manager({
    client: KubeClient.fromConfig({ kubeconfig: env.kubeconfig }),
    namespaces: [ns],
    logger: silentLogger(),
    leaderElection: { namespace: ns, name: 'frozen-lock', identity: 'frozen', ...TIMING },
  });
  mgr.add(spec);
  const done = mgr.start(new AbortController().signal).then(
    () => undefined,
    (err: unknown) => err,
  );
  await admin.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'trigger', namespace: ns }, data: {} });
  const ended = await done;

  assert.ok(ended instanceof LeaderElectionLostError, `start() should reject with LeaderElectionLostError, got ${String(ended)}`);
  const written = await admin.get(ConfigMap, ns, 'written-after-freeze').then(
    () => true,
    (err: unknown) => (isNotFound(err) ? false : Promise.reject(err as Error)),
  );
  assert.equal(written, false, `the write after the freeze reached the API server (its outcome: ${String(outcome)})`);
  assert.ok(outcome instanceof LeaderElectionLostError, `the write should be refused with LeaderElectionLostError, got ${String(outcome)}`);
  assert.match(outcome.message, /frozen-lock/);
});
