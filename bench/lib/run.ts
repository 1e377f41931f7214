// One benchmark run: a fresh control plane, one contender, N Messages created at once, and what
// it took (wall time to all Ready, the contender's peak RSS, API requests by verb and resource).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Event, KubeClient, type KubeObject, type ResourceType } from 'bosun';
import { apiserverMetrics, runKubectl, startCluster, stopCluster, type ClusterState } from 'bosun/envtest';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { startContender, type ContenderName, type RunningContender } from './contenders.js';
import { floorConverge, floorWrites, isFloor, RunningPods } from './floors.js';
import { followReady, isReady, message, NS, waitAllReady } from './messages.js';
import { pool } from './pool.js';
import { cpuSeconds, peakRssMiB } from './proc.js';
import { convergeLimitMs, countersMoved } from './quiet.js';

/** What one run measured. */
export interface RunResult {
  contender: ContenderName;
  n: number;
  round: number;
  /** Seconds from the first create to the last Message Ready (floor: to the last status write). */
  seconds: number;
  /** Peak resident memory of the contender's process (VmHWM), MiB; undefined for the floor. */
  peakRssMiB?: number;
  /** CPU seconds (user + system) the contender's process spent during the run; undefined for the floors. */
  cpuSeconds?: number;
  /** CPU seconds the control plane (etcd, API server, controller-manager, scheduler, kwok) spent during the run. */
  clusterCpuSeconds: number;
  /** API requests during the run per Message, by "VERB resource[/subresource]". */
  requestsPerMessage: Record<string, number>;
}

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * apiserver_request_total by "VERB resource[/subresource]" for the resources the work touches, and the KiB the
 * API server sent for them ("KiB answered": responses; "KiB of watch events": to all watchers, the cluster's own included).
 */
async function requestCounts(state: ClusterState): Promise<Map<string, number>> {
  const text = await apiserverMetrics(state);
  const counts = new Map<string, number>();
  const add = (key: string, v: number) => counts.set(key, (counts.get(key) ?? 0) + v);
  for (const line of text.split('\n')) {
    // Bytes the API server sent for the same resources: answers to requests, and watch events to every watcher.
    const bytes = /^(apiserver_response_sizes_sum|apiserver_watch_events_sizes_sum)\{/.exec(line)?.[1];
    if (bytes) {
      const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const resource = (labels.resource ?? labels.kind ?? '').toLowerCase();
      if (!['messages', 'pods', 'events', 'message', 'pod', 'event'].includes(resource)) continue;
      add(
        bytes === 'apiserver_response_sizes_sum' ? 'KiB answered' : 'KiB of watch events',
        Number(line.slice(line.lastIndexOf(' ') + 1)) / 1024,
      );
      continue;
    }
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    // Messages, their Pods and Events: what the contenders touch (kwok's node leases would never go idle).
    if (!['messages', 'pods', 'events'].includes(labels.resource ?? '')) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

/** A fresh control plane with the Message CRD and an empty namespace, and a running contender. */
interface Bench {
  client: KubeClient;
  kubeconfig: string;
  contender: RunningContender;
  /** floor-running's Pod watch, opened before its warm-up. */
  pods?: RunningPods;
  /** The floors' client for their writes and watch: a connection of their own, as an operator has. */
  floorClient?: KubeClient;
  counts(): Promise<Map<string, number>>;
  /** CPU seconds the control plane's processes have used so far. */
  clusterCpu(): number;
  restartContender(): Promise<void>;
}

/** Clean-ups of the runs in progress, so an interrupted benchmark leaves no control plane or contender behind. */
const inProgress = new Set<() => Promise<void>>();

/** Stops every run in progress (contenders first, then their control planes); for SIGINT/SIGTERM handlers. */
export async function abortRuns(): Promise<void> {
  await Promise.all([...inProgress].map((f) => f().catch(() => undefined)));
}

async function withBench<T>(contender: ContenderName, fn: (b: Bench) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-bench-'));
  const progress = () => undefined;
  let started: RunningContender | undefined;
  let pods: RunningPods | undefined;
  let floorClient: KubeClient | undefined;
  const cleanup = async () => {
    await started?.stop();
    await pods?.stop();
    floorClient?.close();
    await stopCluster({ dir, purge: true, progress });
    await rm(dir, { recursive: true, force: true });
  };
  inProgress.add(cleanup);
  const { kubeconfig, state } = await startCluster({ dir, progress });
  const client = KubeClient.fromConfig({ kubeconfig });
  try {
    const k = async (args: string[], input?: string) => {
      const r = await runKubectl(kubeconfig, args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    };
    await k(['apply', '-f', join(ROOT, 'config/crd/messages.myorg.dev.yaml')]);
    // kubectl wait fails at once ("accessor error") when the CRD has no status yet rather than waiting: ask again.
    for (let i = 0; ; i++) {
      const r = await runKubectl(kubeconfig, ['wait', '--for=condition=Established', 'crd/messages.myorg.dev', '--timeout=60s']);
      if (r.code === 0) break;
      if (i >= 50 || !/accessor error|not found/.test(r.stderr)) throw new Error(`kubectl wait for the Message CRD: ${r.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await k(['create', 'namespace', NS]);
    for (let i = 0; i < 200 && (await runKubectl(kubeconfig, ['get', 'sa', 'default', '-n', NS])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    const warmUp = async (name: string) => {
      // A warm-up Message tells us the contender is up and has synced, for every contender alike;
      // the floor makes its own writes for it, so it too starts on a settled control plane.
      const created = await client.create<Message>(MessageResource, {
        apiVersion: 'myorg.dev/v1',
        kind: 'Message',
        metadata: { name, namespace: NS },
        spec: { text: 'warm up' },
      });
      if (isFloor(contender)) {
        await floorWrites(
          contender,
          floorClient!,
          (async function* () {
            yield created;
          })(),
          pods,
        );
        return;
      }
      const until = Date.now() + 120_000;
      for (;;) {
        const m = await client.get<Message>(MessageResource, NS, name);
        if (isReady(m)) break;
        if (Date.now() > until) throw new Error(`${contender} did not make the warm-up Message ${name} Ready within 120 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    started = await startContender(contender, kubeconfig);
    if (isFloor(contender)) floorClient = KubeClient.fromConfig({ kubeconfig });
    if (contender === 'floor-running') {
      pods = new RunningPods(floorClient!);
      await pods.synced;
    }
    await warmUp('warmup');
    // The same settling second for every contender before the clock starts.
    await new Promise((r) => setTimeout(r, 1000));
    const bench: Bench = {
      client,
      kubeconfig,
      contender: started,
      pods,
      floorClient,
      counts: () => requestCounts(state),
      clusterCpu: () => Object.values(state.pids).reduce((sum, pid) => sum + cpuSeconds(pid), 0),
      async restartContender() {
        await started?.stop();
        started = await startContender(contender, kubeconfig);
        bench.contender = started;
      },
    };
    return await fn(bench);
  } finally {
    client.close();
    await cleanup();
    inProgress.delete(cleanup);
  }
}

const NodeType: ResourceType = { group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false };

/** BENCH_TRACE: what the scheduler refused during the run, and the node's taints now. */
async function traceScheduling(b: Bench, contender: ContenderName): Promise<void> {
  const events = (await b.client.list<KubeObject & { reason?: string; message?: string; count?: number }>(Event, { namespace: NS })).items;
  const failed = events.filter((e) => e.reason === 'FailedScheduling');
  const node = await (b.client.get(NodeType, undefined, 'bosun-node-0') as Promise<KubeObject & { spec?: { taints?: unknown[] } }>).catch(
    () => undefined,
  );
  process.stderr.write(
    `${contender} trace: ${failed.length} FailedScheduling Events (${failed.reduce((s, e) => s + (e.count ?? 1), 0)} times)${failed[0] ? `, e.g. ${failed[0].message}` : ''}; node taints now ${JSON.stringify(node?.spec?.taints ?? [])}\n`,
  );
}

function perMessage(before: Map<string, number>, after: Map<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of after) {
    const d = v - (before.get(key) ?? 0);
    if (d > 0) out[key] = Math.round((d / n) * 100) / 100;
  }
  return out;
}

/** Creates N Messages at once and waits until all are Ready (the floor: makes the writes itself). */
async function converge(b: Bench, contender: ContenderName, n: number): Promise<number> {
  const ac = new AbortController();
  const t0 = performance.now();
  const msgs = Array.from({ length: n }, (_, i) => message(i));
  if (isFloor(contender)) {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${contender} did not finish ${n} Messages within ${convergeLimitMs(n) / 1000} s`)),
        convergeLimitMs(n),
      );
    });
    try {
      await Promise.race([floorConverge(contender, b.client, b.floorClient!, msgs, b.pods), limit]);
    } finally {
      clearTimeout(timer);
    }
  } else {
    const readyP = waitAllReady(b.client, n, ac.signal);
    await pool(msgs, 32, async (m) => {
      await b.client.create(MessageResource, m);
    });
    const timeout = setTimeout(() => ac.abort(), convergeLimitMs(n));
    await readyP;
    clearTimeout(timeout);
  }
  ac.abort();
  return (performance.now() - t0) / 1000;
}

/** Runs one contender on a fresh control plane over `n` Messages created at once. */
export async function runOnce(contender: ContenderName, n: number, round: number, log: (l: string) => void): Promise<RunResult> {
  return withBench(contender, async (b) => {
    const before = await b.counts();
    const cpu0 = cpuSeconds(b.contender.child?.pid);
    const clusterCpu0 = b.clusterCpu();
    const seconds = await converge(b, contender, n);
    if (process.env.BENCH_TRACE) await traceScheduling(b, contender);
    const cpu = b.contender.child ? cpuSeconds(b.contender.child.pid) - cpu0 : undefined;
    const clusterCpuSeconds = b.clusterCpu() - clusterCpu0;
    const rss = peakRssMiB(b.contender.child?.pid);
    // Requests still in flight when the last Message turned Ready belong to the run; give them a moment.
    await new Promise((r) => setTimeout(r, 500));
    const requestsPerMessage = perMessage(before, await b.counts(), n);
    log(
      `  ${contender.padEnd(18)} n=${n} round ${round}: ${seconds.toFixed(2)} s${rss ? `, peak RSS ${rss.toFixed(0)} MiB` : ''}${cpu !== undefined ? `, CPU ${cpu.toFixed(1)} s` : ''}, cluster CPU ${clusterCpuSeconds.toFixed(1)} s`,
    );
    return { contender, n, round, seconds, peakRssMiB: rss, cpuSeconds: cpu, clusterCpuSeconds, requestsPerMessage };
  });
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY', 'CREATE', 'UPDATE']);

/** What a restart over converged Messages cost. */
export interface RestartResult {
  contender: ContenderName;
  n: number;
  round: number;
  /** Writes (create, update, patch, delete) to Messages, Pods and Events after the restart. */
  writes: number;
  /** Seconds from the restart until, for 3 s, the API server answered no request on Messages, Pods or Events and sent no watch event for them. */
  secondsUntilIdle: number;
  requests: Record<string, number>;
  /** The new process's peak RSS (VmHWM) and CPU seconds until idle: what taking over N objects costs it. */
  peakRssMiB?: number;
  cpuSeconds?: number;
  /** Events recorded after the restart, by "component: reason", so writes can be traced to who made them. */
  eventsBySource: Record<string, number>;
}

/** Waits until no request but watches reaches the API server for `quietMs` (the cluster has settled); returns the counts then. */
async function waitQuiet(b: Bench, quietMs: number, limitMs: number): Promise<{ counts: Map<string, number>; at: number }> {
  const t0 = performance.now();
  let last = await b.counts();
  let lastChange = performance.now();
  while (performance.now() - lastChange < quietMs && performance.now() - t0 < limitMs) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await b.counts();
    if (countersMoved(last, now)) lastChange = performance.now();
    last = now;
  }
  return { counts: last, at: lastChange };
}

/** Converges N Messages, lets the cluster settle, restarts the contender, and counts what the new process writes. */
export async function runRestart(contender: ContenderName, n: number, round: number, log: (l: string) => void): Promise<RestartResult> {
  return withBench(contender, async (b) => {
    await converge(b, contender, n);
    // The scheduler's and controller-manager's Events trickle in after convergence: start from a quiet cluster,
    // so what is counted after the restart is the contender's.
    const { counts: before } = await waitQuiet(b, 3000, 180_000);
    const t0 = performance.now();
    const restartedAt = Date.now();
    await b.restartContender();
    const { counts: after, at } = await waitQuiet(b, 3000, 300_000);
    const rss = peakRssMiB(b.contender.child?.pid);
    const cpu = b.contender.child ? cpuSeconds(b.contender.child.pid) : undefined;
    const requests: Record<string, number> = {};
    let writes = 0;
    for (const [k, v] of after) {
      const d = v - (before.get(k) ?? 0);
      if (d <= 0) continue;
      requests[k] = d;
      if (WRITE_VERBS.has(k.split(' ')[0] ?? '')) writes += d;
    }
    const secondsUntilIdle = (at - t0) / 1000;
    const eventsBySource: Record<string, number> = {};
    for (const e of (
      await b.client.list<
        KubeObject & {
          reason?: string;
          reportingComponent?: string;
          source?: { component?: string };
          lastTimestamp?: string;
          eventTime?: string;
        }
      >(Event, { namespace: NS })
    ).items) {
      const when = Date.parse(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? '');
      if (!(when >= restartedAt - 1000)) continue;
      const key = `${e.reportingComponent || e.source?.component || 'unknown'}: ${e.reason ?? ''}`;
      eventsBySource[key] = (eventsBySource[key] ?? 0) + 1;
    }
    log(
      `  ${contender.padEnd(18)} restart n=${n} round ${round}: ${writes} writes, idle after ${secondsUntilIdle.toFixed(2)} s${
        rss ? `, peak RSS ${rss.toFixed(0)} MiB` : ''
      }${cpu !== undefined ? `, CPU ${cpu.toFixed(1)} s` : ''} (${Object.entries(requests)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}); Events since: ${
        Object.entries(eventsBySource)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ') || 'none'
      }`,
    );
    return { contender, n, round, writes, secondsUntilIdle, requests, peakRssMiB: rss, cpuSeconds: cpu, eventsBySource };
  });
}

/** Latency from create to Ready under a steady stream of creates. */
export interface StreamResult {
  contender: ContenderName;
  rate: number;
  durationS: number;
  round: number;
  /** Create-to-Ready latency percentiles over every Message sent; null when more than that share never became Ready. */
  p50_ms: number | null;
  p99_ms: number | null;
  /** Messages not Ready 60 s after the stream ended. */
  missing: number;
}

/** The p-th percentile, in whole ms; Infinity entries (never Ready) sort last, so a percentile that falls on one is null. */
export function percentile(xs: number[], p: number): number | null {
  const s = [...xs].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return v === undefined || !Number.isFinite(v) ? null : Math.round(v);
}

/** Creates `rate` Messages per second for `durationS` seconds and measures create-to-Ready latency. */
export async function runStream(
  contender: ContenderName,
  rate: number,
  durationS: number,
  round: number,
  log: (l: string) => void,
): Promise<StreamResult> {
  return withBench(contender, async (b) => {
    const total = rate * durationS;
    const sentAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const ac = new AbortController();
    const watching = followReady(b.client, ac.signal, (name) => {
      readyAt.set(name, performance.now());
      return readyAt.size >= total;
    });
    const t0 = performance.now();
    const creates: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const m = message(i);
      sentAt.set(m.metadata.name!, performance.now());
      creates.push(b.client.create(MessageResource, m).then(() => undefined));
    }
    await Promise.all(creates);
    const until = performance.now() + 60_000;
    while (readyAt.size < total && performance.now() < until) await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await watching;
    // A Message never Ready counts as infinitely late, so a backlog shows in the percentiles instead of hiding from them.
    const lat = [...sentAt].map(([name, t]) => (readyAt.get(name) ?? Infinity) - t);
    const r: StreamResult = {
      contender,
      rate,
      durationS,
      round,
      p50_ms: percentile(lat, 50),
      p99_ms: percentile(lat, 99),
      missing: total - readyAt.size,
    };
    const ms = (v: number | null) => (v === null ? 'not reached' : `${v} ms`);
    log(
      `  ${contender.padEnd(18)} stream ${rate}/s × ${durationS} s round ${round}: p50 ${ms(r.p50_ms)}, p99 ${ms(r.p99_ms)}, not Ready ${r.missing}`,
    );
    return r;
  });
}
