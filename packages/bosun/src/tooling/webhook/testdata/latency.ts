// One measurement, not a test: the admission latency the API server records for bosun's webhook server as the
// envtest harness serves it (serveWebhooks, in this process), at a steady rate of dry-run creates.
//
//   BOSUN_TEST_CLUSTER_DIR=$PWD/.bosun/test-cluster node --import tsx packages/bosun/src/tooling/webhook/testdata/latency.ts [rate] [seconds]
//
// The figures come from the API server's apiserver_admission_webhook_admission_duration_seconds (the difference
// of two readings, quantiles interpolated inside buckets as Prometheus' histogram_quantile does); the client's
// own round trip (whole create, exact percentiles) is printed beside them.
import { KubeClient } from '../../../client/client.js';
import type { ObjectOf } from '../../../client/types.js';
import { apiserverMetrics } from '../../envtest/cluster.js';
import { serveWebhooks } from '../../envtest/webhooks.js';
import { startTestEnv } from '../../envtest/testenv.js';
import { toMultiVersionCrd } from '../../generate/crd.js';
import { gadgetApi } from './gadgets.js';

const METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const rate = Number(process.argv[2] ?? 50);
const seconds = Number(process.argv[3] ?? 30);

/** Cumulative bucket counts of METRIC for one webhook, summed over its other labels. */
function buckets(text: string, webhook: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${METRIC}_bucket{`) || !line.includes(`name="${webhook}"`)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (!le) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

function quantile(q: number, b: Map<number, number>): number {
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const total = b.get(Infinity) ?? 0;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const bound of bounds) {
    const count = b.get(bound)!;
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
    }
    prevBound = bound;
    prevCount = count;
  }
  return NaN;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

const env = await startTestEnv();
const api = gadgetApi();
const crd = toMultiVersionCrd(api.versions, { clientConfig: { url: 'https://127.0.0.1:1/unused' } });
delete crd.spec.conversion;
await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(crd));
await env.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${api.versions.crdName}`]);
const ns = await env.namespace('webhook-latency');
const served = await serveWebhooks(env, { webhooks: [api.size], namespace: ns });
const client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
const gadget = (i: number): ObjectOf<typeof api.v1> => ({
  apiVersion: `${api.group}/v1`,
  kind: 'Gadget',
  metadata: { name: `g-${i}`, namespace: ns },
  spec: { owner: 'alice', sizeCm: 10 },
});
try {
  // In effect once an oversized dry run is refused.
  for (let i = 0; ; i++) {
    const refused = await client.create(api.v1, { ...gadget(0), spec: { owner: 'alice', sizeCm: 500 } }, { dryRun: true }).then(
      () => false,
      () => true,
    );
    if (refused) break;
    if (i > 300) throw new Error('the webhook never took effect');
    await new Promise((r) => setTimeout(r, 100));
  }
  const before = buckets(await apiserverMetrics(env.state), api.size.name);
  const n = rate * seconds;
  const rtt: number[] = [];
  let failed = 0;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    inflight.push(
      client.create(api.v1, gadget(i), { dryRun: true }).then(
        () => void rtt.push(performance.now() - t0),
        () => void failed++,
      ),
    );
  }
  await Promise.all(inflight);
  const wall = (performance.now() - start) / 1000;
  const after = buckets(await apiserverMetrics(env.state), api.size.name);
  const delta = new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
  rtt.sort((a, b) => a - b);
  const row = {
    webhook: api.size.name,
    requests: n,
    failed,
    wallSeconds: Number(wall.toFixed(1)),
    achievedRate: Number((n / wall).toFixed(1)),
    apiserverObservations: delta.get(Infinity),
    apiserverBuckets: Object.fromEntries([...delta].map(([k, v]) => [String(k), v])),
    apiserverP50ms: Number((quantile(0.5, delta) * 1000).toFixed(2)),
    apiserverP99ms: Number((quantile(0.99, delta) * 1000).toFixed(2)),
    clientP50ms: Number(percentile(rtt, 0.5).toFixed(2)),
    clientP99ms: Number(percentile(rtt, 0.99).toFixed(2)),
  };
  process.stdout.write(`${JSON.stringify(row, null, 2)}\n`);
} finally {
  client.close();
  await served.stop();
  await env.kubectl(['delete', 'crd', api.versions.crdName, '--wait=false']);
  await env.cleanup();
}
