// The Message operator behind a fault proxy on the real control plane: a frozen connection (open at
// the TCP level, no bytes flowing: a hung load balancer or a dead NAT entry) must be noticed within
// client-go's 45 s, and a cut one at once. The operator runs with the client's default timings.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeClient } from '../../packages/bosun/src/client/client.js';
import { startFaultProxy, writeProxyKubeconfig, type FaultProxy } from '../../packages/bosun/src/tooling/envtest/faultproxy.js';
import { startTestEnv, type TestEnv } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import type { RunningControllers } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import { messageYaml, readyWithin, startInProcessOperator } from './helpers.js';

/** client-go's dead-connection bound: HTTP/2 ReadIdleTimeout 30 s + PingTimeout 15 s. */
const DEAD_CONNECTION_BOUND_MS = 45_000;
/** A cut connection fails at once, so only the reconnect and the normal work remain. */
const CUT_BOUND_MS = 5_000;

describe('Message operator through a fault proxy', () => {
  let env: TestEnv;
  let ns: string;
  let dir: string;
  let proxy: FaultProxy;
  let op: RunningControllers | undefined;
  let direct: KubeClient;
  let normalMs: number;

  /** Creates a Message straight at the API server (not through the proxy) and times it to Ready. */
  async function createAndTime(name: string, boundMs: number): Promise<number | undefined> {
    const t0 = performance.now();
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml(name, `fault suite: ${name}`));
    return readyWithin(direct, ns, name, t0, t0 + boundMs);
  }

  function restarts(): string[] {
    return (op?.logs ?? []).filter((l) => l.includes('watch restarting')).map((l) => {
      const j = JSON.parse(l) as { time?: string; reason?: string; err?: string };
      return `${j.time} ${j.reason}: ${j.err}`;
    });
  }

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('fault-proxy');
    dir = await mkdtemp(join(tmpdir(), 'bosun-fault-'));
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: env.state.ports.apiserver } });
    const kubeconfig = await writeProxyKubeconfig(env.kubeconfig, proxy.url, join(dir, 'kubeconfig'));
    direct = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
    op = startInProcessOperator(env, 'message', kubeconfig, [ns]);
    // The first Message also waits for the caches to sync; it is not a measure of normal work.
    const warm = await createAndTime('warm-up', 60_000);
    assert.ok(warm !== undefined, 'the warm-up Message became Ready through the proxy');
  });

  after(async () => {
    // Cutting first lets a stuck operator see its connections fail and shut down.
    proxy?.cut();
    await op?.stop();
    await proxy?.close();
    direct?.close();
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('normal convergence through the proxy', async (t) => {
    const ms = await createAndTime('normal', 30_000);
    assert.ok(ms !== undefined, 'the Message became Ready within 30 s with no fault');
    normalMs = ms;
    t.diagnostic(`normal convergence: ${ms.toFixed(0)} ms (create → Ready, read from the API server)`);
  });

  test('after every connection is cut, a new Message is Ready within 5 s', async (t) => {
    assert.ok(proxy.connections() > 0, 'the operator holds connections through the proxy');
    const open = proxy.connections();
    proxy.cut();
    const ms = await createAndTime('after-cut', CUT_BOUND_MS);
    t.diagnostic(`cut ${open} connections; Ready after ${ms === undefined ? `more than ${CUT_BOUND_MS}` : ms.toFixed(0)} ms; proxy ${JSON.stringify(proxy.stats())}`);
    assert.ok(ms !== undefined, `Message after-cut Ready within ${CUT_BOUND_MS} ms of its creation after a cut`);
  });

  test('while every open connection stays frozen, a new Message is Ready within 45 s + the normal convergence time', { timeout: 180_000 }, async (t) => {
    assert.ok(normalMs !== undefined, 'the normal convergence time was measured');
    assert.ok(proxy.connections() > 0, 'the operator holds connections through the proxy');
    // Freeze only what is open now: new connections pass, as after a dead NAT entry, so the
    // operator recovers exactly when it notices the dead ones and dials again.
    proxy.freeze();
    const frozen = proxy.stats().frozen;
    const acceptedBefore = proxy.stats().accepted;
    const bound = DEAD_CONNECTION_BOUND_MS + normalMs;
    const tFreeze = performance.now();
    const ms = await createAndTime('during-freeze', bound);
    const stats = proxy.stats();
    t.diagnostic(
      `froze ${frozen} connections; Ready after ${ms === undefined ? `more than ${bound.toFixed(0)}` : ms.toFixed(0)} ms ` +
        `(bound ${DEAD_CONNECTION_BOUND_MS} + ${normalMs.toFixed(0)} ms; ${(performance.now() - tFreeze).toFixed(0)} ms since the freeze); ` +
        `proxy ${JSON.stringify(stats)}; watch restarts: ${JSON.stringify(restarts())}`,
    );
    assert.ok(frozen > 0, 'the freeze caught open connections');
    assert.ok(ms !== undefined, `Message during-freeze Ready within ${bound.toFixed(0)} ms while the operator's connections were frozen`);
    assert.ok(stats.accepted > acceptedBefore, 'the operator dialled new connections through the proxy');
  });
});
