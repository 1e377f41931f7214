// One benchmark run: a fresh control plane, one contender, N Messages created at once, and what
// it took (wall time to all Ready, the contender's peak RSS, API requests by verb and resource).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Event, KubeClient, Pod, type KubeObject, type ResourceType } from 'bosun';
import { apiserverMetrics, runKubectl, startCluster, stopCluster, type ClusterState } from 'bosun/envtest';
import { clientListWatcher, runWatcher } from 'bosun/runtime';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { desiredPod } from '../../operators/message/pod.js';
import { ensurePeers } from '../peers.js';

/** The contenders, in the order they are interleaved. */
export const CONTENDERS = ['floor', 'floor-running', 'bosun', 'kopf', 'controller-runtime'] as const;
/**
 * Contenders run only when named with --contenders: `bosun-base` is bosun built from another checkout
 * (BENCH_BOSUN_BASE_DIR, e.g. a `git worktree` of the previous release), for before/after in one run;
 * `bosun-http1` is this bosun on HTTP/1.1 keep-alive instead of HTTP/2.
 */
export const EXTRA_CONTENDERS = ['bosun-base', 'bosun-http1'] as const;
/** One contender's name. */
export type ContenderName = (typeof CONTENDERS)[number] | (typeof EXTRA_CONTENDERS)[number];

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

/** Workers per controller for bosun and controller-runtime alike (bosun's default). */
export const WORKERS = 16;
const NS = 'bench';
const ROOT = join(import.meta.dirname, '..', '..');

function message(i: number): Message {
  return { apiVersion: 'myorg.dev/v1', kind: 'Message', metadata: { name: `m-${i}`, namespace: NS }, spec: { text: `benchmark message ${i}` } };
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function peakRssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** apiserver_request_total by "VERB resource[/subresource]" for the resources the work touches. */
async function requestCounts(state: ClusterState): Promise<Map<string, number>> {
  const text = await apiserverMetrics(state);
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    // Messages, their Pods and Events: what the contenders touch (kwok's node leases would never go idle).
    if (!['messages', 'pods', 'events'].includes(labels.resource ?? '')) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

function isReady(m: Message): boolean {
  return m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true && m.status?.observedGeneration === m.metadata.generation;
}

/**
 * Feeds every object of `type` in the bench namespace to `see`, as listed and then as it changes, through
 * bosun's own watcher (re-lists on 410, reconnects after errors); returns when `see` returns true or
 * `signal` fires. Reads the API server, never a contender's cache.
 */
async function follow<T extends KubeObject>(client: KubeClient, type: ResourceType<T>, signal: AbortSignal, see: (obj: T) => boolean): Promise<void> {
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const feed = (obj: T) => {
    if (!stop.signal.aborted && see(obj)) stop.abort();
  };
  await runWatcher<T>(
    clientListWatcher<T>(client, type, { namespace: NS }),
    (ev) => {
      if (ev.type === 'applied') feed(ev.object);
      else if (ev.type !== 'deleted') for (const o of ev.objects) feed(o);
    },
    both,
  );
}

/** Calls `onReady` once for every benchmark Message that is or turns Ready; returns when it returns true or `signal` fires. */
async function followReady(client: KubeClient, signal: AbortSignal, onReady: (name: string) => boolean): Promise<void> {
  const seen = new Set<string>();
  await follow<Message>(client, MessageResource, signal, (m) => {
    const name = m.metadata.name ?? '';
    if (!name.startsWith('m-') || seen.has(name) || !isReady(m)) return false;
    seen.add(name);
    return onReady(name);
  });
}

/** Resolves when every Message named `m-0`…`m-(n-1)` is Ready. */
async function waitAllReady(client: KubeClient, n: number, signal: AbortSignal): Promise<void> {
  let ready = 0;
  await followReady(client, signal, () => ++ready >= n);
  if (ready < n) throw new Error(`only ${ready} of ${n} Messages became Ready`);
}

/** The built checkout `bosun-base` runs from. */
function baseDir(): string {
  const dir = process.env.BENCH_BOSUN_BASE_DIR;
  if (!dir) throw new Error('the bosun-base contender needs BENCH_BOSUN_BASE_DIR: a built checkout of the version to compare with (git worktree add ../base <rev> && (cd ../base && npm ci && npx tsc -p tsconfig.build.json))');
  return resolve(dir);
}

interface Started {
  child?: ChildProcess;
  stop(): Promise<void>;
}

async function startContender(name: ContenderName, kubeconfig: string): Promise<Started> {
  let cmd: { command: string; args: string[]; env: Record<string, string | undefined>; cwd: string };
  if (name === 'bosun' || name === 'bosun-base' || name === 'bosun-http1') {
    const root = name === 'bosun-base' ? baseDir() : ROOT;
    cmd = {
      command: process.execPath,
      // BENCH_BOSUN_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the contender, not the bench.
      args: [...(process.env.BENCH_BOSUN_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(root, 'bin', 'bosun.js'), 'run', 'message', '--kubeconfig', kubeconfig, '--standalone', '-n', NS, '--workers', String(WORKERS), '--metrics-addr', '0', '--health-addr', '0'],
      env: { ...process.env, BOSUN_LOG_LEVEL: 'warn', ...(name === 'bosun-http1' ? { BOSUN_TRANSPORT: 'http1' } : {}) },
      cwd: root,
    };
  } else if (name === 'kopf' || name === 'controller-runtime') {
    const peers = await ensurePeers({ kubeconfig, namespace: NS, workers: WORKERS });
    cmd = name === 'kopf' ? peers.kopf : peers.controllerRuntime;
  } else {
    return { stop: async () => undefined };
  }
  const child = spawn(cmd.command, cmd.args, { env: cmd.env, cwd: cmd.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (code !== null && code !== 0) process.stderr.write(`bench: ${name} exited with ${code ?? sig}: ${stderr}\n`);
  });
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The floor: the necessary writes (create the Pod, write the status) for each Message as fast as the API server takes them. */
async function floorWrites(client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  const inflight = new Set<Promise<void>>();
  for await (const msg of created) {
    const p = (async () => {
      await client.create(Pod, ownedPod(msg));
      await client.patch(MessageResource, NS, msg.metadata.name!, readyStatus(msg), 'merge', { subresource: 'status' });
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 64) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

/** The Pod the floors create for a Message: the Message operator's own, owned by the Message. */
function ownedPod(msg: Message): KubeObject {
  const pod = desiredPod(msg);
  const owner = { apiVersion: 'myorg.dev/v1', kind: 'Message', name: msg.metadata.name!, uid: msg.metadata.uid!, controller: true, blockOwnerDeletion: true };
  return { ...pod, apiVersion: 'v1', kind: 'Pod', metadata: { ...pod.metadata, ownerReferences: [owner] } } as KubeObject;
}

function readyStatus(msg: Message) {
  const lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return { status: { phase: 'Running', podName: `${msg.metadata.name}-pod`, observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'PodRunning', message: '', lastTransitionTime }] } };
}

/**
 * The floor with the cluster's share: the same writes, but each status only once its Pod is Running,
 * seen through one watch of Pods (no cache, no reconcile loop). No operator whose Ready follows the
 * Pod can beat this: it waits for the scheduler's binding and kwok's status like they do.
 */
async function runningFloorWrites(client: KubeClient, created: AsyncIterable<Message>): Promise<void> {
  const waiting = new Map<string, Message>();
  const running = new Set<string>();
  const writes: Promise<void>[] = [];
  let createsDone = false;
  let done!: () => void;
  const allWritten = new Promise<void>((r) => (done = r));
  const ac = new AbortController();
  const writeStatus = (msg: Message) => {
    writes.push(client.patch(MessageResource, NS, msg.metadata.name!, readyStatus(msg), 'merge', { subresource: 'status' }).then(() => undefined));
    if (createsDone && waiting.size === 0) done();
  };
  const settle = (podName: string) => {
    const msg = waiting.get(podName);
    if (!msg) return void running.add(podName);
    waiting.delete(podName);
    writeStatus(msg);
  };
  const watching = follow<KubeObject<unknown, { phase?: string }>>(client, Pod, ac.signal, (p) => {
    if (p.status?.phase === 'Running') settle(p.metadata.name!);
    return false;
  });
  const inflight = new Set<Promise<void>>();
  for await (const msg of created) {
    const p = (async () => {
      const pod = ownedPod(msg);
      await client.create(Pod, pod);
      waiting.set(pod.metadata.name!, msg);
      if (running.has(pod.metadata.name!)) settle(pod.metadata.name!);
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 64) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  createsDone = true;
  if (waiting.size === 0) done();
  await allWritten;
  await Promise.all(writes);
  ac.abort();
  await watching;
}

/** A fresh control plane with the Message CRD and an empty namespace, and a running contender. */
interface Bench {
  client: KubeClient;
  kubeconfig: string;
  contender: Started;
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
  let started: Started | undefined;
  const cleanup = async () => {
    await started?.stop();
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
    await k(['wait', '--for=condition=Established', 'crd/messages.myorg.dev']);
    await k(['create', 'namespace', NS]);
    for (let i = 0; i < 200 && (await runKubectl(kubeconfig, ['get', 'sa', 'default', '-n', NS])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    const warmUp = async (name: string) => {
      // A warm-up Message tells us the contender is up and has synced, for every contender alike;
      // the floor makes its own writes for it, so it too starts on a settled control plane.
      const created = await client.create<Message>(MessageResource, { apiVersion: 'myorg.dev/v1', kind: 'Message', metadata: { name, namespace: NS }, spec: { text: 'warm up' } });
      if (contender === 'floor') {
        await floorWrites(client, (async function* () {
          yield created;
        })());
        return;
      }
      if (contender === 'floor-running') {
        await runningFloorWrites(client, (async function* () {
          yield created;
        })());
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
    await warmUp('warmup');
    // The same settling second for every contender before the clock starts.
    await new Promise((r) => setTimeout(r, 1000));
    const bench: Bench = {
      client,
      kubeconfig,
      contender: started,
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
  if (contender === 'floor' || contender === 'floor-running') {
    // The floors react to each create's response directly: no watch, no cache, no latency.
    const queue: Message[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const creates = pool(msgs, 32, async (m) => {
      queue.push(await b.client.create<Message>(MessageResource, m));
      wake?.();
    }).then(() => {
      finished = true;
      wake?.();
    });
    const feed = async function* (): AsyncIterable<Message> {
      for (;;) {
        const m = queue.shift();
        if (m) yield m;
        else if (finished) return;
        else await new Promise<void>((r) => (wake = r));
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${contender} did not finish ${n} Messages within 900 s`)), 900_000);
    });
    try {
      await Promise.race([Promise.all([creates, (contender === 'floor' ? floorWrites : runningFloorWrites)(b.client, feed())]), limit]);
    } finally {
      clearTimeout(timer);
    }
  } else {
    const readyP = waitAllReady(b.client, n, ac.signal);
    await pool(msgs, 32, async (m) => {
      await b.client.create(MessageResource, m);
    });
    const timeout = setTimeout(() => ac.abort(), 900_000);
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
    const cpu = b.contender.child ? cpuSeconds(b.contender.child.pid) - cpu0 : undefined;
    const clusterCpuSeconds = b.clusterCpu() - clusterCpu0;
    const rss = peakRssMiB(b.contender.child?.pid);
    // Requests still in flight when the last Message turned Ready belong to the run; give them a moment.
    await new Promise((r) => setTimeout(r, 500));
    const requestsPerMessage = perMessage(before, await b.counts(), n);
    log(`  ${contender.padEnd(18)} n=${n} round ${round}: ${seconds.toFixed(2)} s${rss ? `, peak RSS ${rss.toFixed(0)} MiB` : ''}${cpu !== undefined ? `, CPU ${cpu.toFixed(1)} s` : ''}, cluster CPU ${clusterCpuSeconds.toFixed(1)} s`);
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
  /** Seconds from the restart until the API server saw no request from the operator for 3 s. */
  secondsUntilIdle: number;
  requests: Record<string, number>;
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
    // Watches stay open and count once; any other request, a read included, means still busy.
    if ([...now].some(([k, v]) => !k.startsWith('WATCH') && v !== (last.get(k) ?? 0))) lastChange = performance.now();
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
    for (const e of (await b.client.list<KubeObject & { reason?: string; reportingComponent?: string; source?: { component?: string }; lastTimestamp?: string; eventTime?: string }>(Event, { namespace: NS })).items) {
      const when = Date.parse(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? '');
      if (!(when >= restartedAt - 1000)) continue;
      const key = `${e.reportingComponent || e.source?.component || 'unknown'}: ${e.reason ?? ''}`;
      eventsBySource[key] = (eventsBySource[key] ?? 0) + 1;
    }
    log(`  ${contender.padEnd(18)} restart n=${n} round ${round}: ${writes} writes, idle after ${secondsUntilIdle.toFixed(2)} s (${Object.entries(requests).map(([k, v]) => `${k}: ${v}`).join(', ')}); Events since: ${Object.entries(eventsBySource).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`);
    return { contender, n, round, writes, secondsUntilIdle, requests, eventsBySource };
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
export async function runStream(contender: ContenderName, rate: number, durationS: number, round: number, log: (l: string) => void): Promise<StreamResult> {
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
    const r: StreamResult = { contender, rate, durationS, round, p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), missing: total - readyAt.size };
    const ms = (v: number | null) => (v === null ? 'not reached' : `${v} ms`);
    log(`  ${contender.padEnd(18)} stream ${rate}/s × ${durationS} s round ${round}: p50 ${ms(r.p50_ms)}, p99 ${ms(r.p99_ms)}, not Ready ${r.missing}`);
    return r;
  });
}
