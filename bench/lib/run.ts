// One benchmark run: a fresh control plane, one contender, N Messages created at once, and what
// it took (wall time to all Ready, the contender's peak RSS, API requests by verb and resource).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from 'bosun';
import { adminGet, down, up } from '../../src/cluster/controlplane.js';
import { loadPki, type ClusterPki } from '../../src/cluster/pki.js';
import { runKubectl } from '../../src/envtest/index.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { Pod } from '../../src/client/resources.js';
import { desiredPod } from '../../operators/message/pod.js';
import { ensurePeers } from '../peers.js';

/** The contenders, in the order they are interleaved. */
export const CONTENDERS = ['floor', 'bosun', 'kopf', 'controller-runtime'] as const;
/** One contender's name. */
export type ContenderName = (typeof CONTENDERS)[number];

/** What one run measured. */
export interface RunResult {
  contender: ContenderName;
  n: number;
  round: number;
  /** Seconds from the first create to the last Message Ready (floor: to the last status write). */
  seconds: number;
  /** Peak resident memory of the contender's process (VmHWM), MiB; undefined for the floor. */
  peakRssMiB?: number;
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

/** apiserver_request_total by "VERB resource[/subresource]" for the resources the work touches. */
async function requestCounts(apiserverUrl: string, pki: ClusterPki): Promise<Map<string, number>> {
  const res = await adminGet(`${apiserverUrl}/metrics`, pki, 30_000);
  const text = res.body;
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

/** Resolves when every Message named `m-0`…`m-(n-1)` is Ready, watching the API (not any contender's cache). */
async function waitAllReady(client: KubeClient, n: number, signal: AbortSignal): Promise<void> {
  const ready = new Set<string>();
  for (;;) {
    const list = await client.list<Message>(MessageResource, { namespace: NS });
    for (const m of list.items) if (m.metadata.name?.startsWith('m-') && isReady(m)) ready.add(m.metadata.name);
    if (ready.size >= n) return;
    try {
      for await (const ev of client.watch<Message>(MessageResource, { namespace: NS, resourceVersion: list.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 }, signal)) {
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
          const name = ev.object.metadata.name ?? '';
          if (name.startsWith('m-') && isReady(ev.object)) ready.add(name);
          if (ready.size >= n) return;
        }
      }
    } catch (err) {
      if (signal.aborted) throw err;
    }
  }
}

interface Started {
  child?: ChildProcess;
  stop(): Promise<void>;
}

async function startContender(name: ContenderName, kubeconfig: string): Promise<Started> {
  let cmd: { command: string; args: string[]; env: Record<string, string | undefined>; cwd: string };
  if (name === 'bosun') {
    cmd = {
      command: process.execPath,
      args: [join(ROOT, 'bin', 'bosun.js'), 'run', 'message', '--kubeconfig', kubeconfig, '--standalone', '-n', NS, '--workers', String(WORKERS), '--metrics-addr', '0', '--health-addr', '0'],
      env: { ...process.env, BOSUN_LOG_LEVEL: 'warn' },
      cwd: ROOT,
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
      await client.create(Pod, { ...desiredPod(msg), apiVersion: 'v1', kind: 'Pod', metadata: { ...desiredPod(msg).metadata, ownerReferences: [{ apiVersion: 'myorg.dev/v1', kind: 'Message', name: msg.metadata.name!, uid: msg.metadata.uid!, controller: true, blockOwnerDeletion: true }] } } as KubeObject);
      await client.patch(MessageResource, NS, msg.metadata.name!, { status: { phase: 'Running', podName: `${msg.metadata.name}-pod`, observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'PodRunning', message: '', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } }, 'merge', { subresource: 'status' });
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 64) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

/** A fresh control plane with the Message CRD and an empty namespace, and a running contender. */
interface Bench {
  client: KubeClient;
  kubeconfig: string;
  contender: Started;
  counts(): Promise<Map<string, number>>;
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
    await down({ dir, purge: true, progress });
    await rm(dir, { recursive: true, force: true });
  };
  inProgress.add(cleanup);
  const { kubeconfig, state } = await up({ dir, progress });
  const pki = (await loadPki(dir))!;
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
      counts: () => requestCounts(state.apiserverUrl, pki),
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
  if (contender === 'floor') {
    // The floor reacts to each create's response directly: no watch, no cache, no latency.
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
    await Promise.all([creates, floorWrites(b.client, feed())]);
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
    const seconds = await converge(b, contender, n);
    const rss = peakRssMiB(b.contender.child?.pid);
    // Requests still in flight when the last Message turned Ready belong to the run; give them a moment.
    await new Promise((r) => setTimeout(r, 500));
    const requestsPerMessage = perMessage(before, await b.counts(), n);
    log(`  ${contender.padEnd(18)} n=${n} round ${round}: ${seconds.toFixed(2)} s${rss ? `, peak RSS ${rss.toFixed(0)} MiB` : ''}`);
    return { contender, n, round, seconds, peakRssMiB: rss, requestsPerMessage };
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
    log(`  ${contender.padEnd(18)} restart n=${n} round ${round}: ${writes} writes, idle after ${secondsUntilIdle.toFixed(2)} s (${Object.entries(requests).map(([k, v]) => `${k}: ${v}`).join(', ')})`);
    return { contender, n, round, writes, secondsUntilIdle, requests };
  });
}

/** Latency from create to Ready under a steady stream of creates. */
export interface StreamResult {
  contender: ContenderName;
  rate: number;
  durationS: number;
  round: number;
  p50_ms: number;
  p99_ms: number;
  /** Messages not Ready 60 s after the stream ended. */
  missing: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

/** Creates `rate` Messages per second for `durationS` seconds and measures create-to-Ready latency. */
export async function runStream(contender: ContenderName, rate: number, durationS: number, round: number, log: (l: string) => void): Promise<StreamResult> {
  return withBench(contender, async (b) => {
    const total = rate * durationS;
    const sentAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const ac = new AbortController();
    const list = await b.client.list<Message>(MessageResource, { namespace: NS });
    const watching = (async () => {
      try {
        for await (const ev of b.client.watch<Message>(MessageResource, { namespace: NS, resourceVersion: list.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 600 }, ac.signal)) {
          const name = ev.object.metadata?.name ?? '';
          if ((ev.type === 'ADDED' || ev.type === 'MODIFIED') && !readyAt.has(name) && isReady(ev.object)) readyAt.set(name, performance.now());
          if (readyAt.size >= total) return;
        }
      } catch {
        /* aborted */
      }
    })();
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
    const lat = [...readyAt].map(([name, t]) => t - (sentAt.get(name) ?? t));
    const r: StreamResult = { contender, rate, durationS, round, p50_ms: Math.round(percentile(lat, 50)), p99_ms: Math.round(percentile(lat, 99)), missing: total - readyAt.size };
    log(`  ${contender.padEnd(18)} stream ${rate}/s × ${durationS} s round ${round}: p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, not Ready ${r.missing}`);
    return r;
  });
}
