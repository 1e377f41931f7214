// What must hold at the end of every fault scenario, read straight from the API server (never
// from the operator's cache): every Message converged with a truthful status, exactly one Pod per
// Message, no orphan Pod, no deletion lost; and, from the audit log, no hot loop.
import type { KubeClient } from '../../../packages/bosun/src/client/client.js';
import { Pod as PodType } from '../../../packages/bosun/src/client/resources.js';
import type { KubeObject, ResourceType } from '../../../packages/bosun/src/client/types.js';
import { MessageResource, type Message } from '../../../operators/message/resource.js';
import { POD_LABELS, textHash, type Pod } from '../../../operators/message/pod.js';
import { countRequests, readAudit, OPERATOR_USER_AGENT, type RequestCounts } from './audit.js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Raised when a scenario's end state breaks an invariant; the message lists every violation found. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

/** The Messages and Pods of one namespace, as the API server has them. */
export interface NamespaceState {
  messages: Message[];
  pods: Pod[];
}

async function listAll<T extends KubeObject>(client: KubeClient, type: ResourceType<T>, namespace: string): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await client.list<T>(type, { namespace, limit: 500, continue: cont });
    out.push(...page.items);
    cont = page.continue;
  } while (cont);
  return out;
}

/** Reads every Message and every Pod of `namespace` from the API server. */
export async function readNamespace(client: KubeClient, namespace: string): Promise<NamespaceState> {
  const [messages, pods] = await Promise.all([
    listAll<Message>(client, MessageResource, namespace),
    listAll<Pod>(client, PodType, namespace),
  ]);
  return { messages, pods };
}

/** What the Messages of a namespace must be at the end: name → text. Absent, only the invariants that need no expectation are checked. */
export type Expected = Map<string, string>;

function controllerUid(pod: Pod): string | undefined {
  return pod.metadata.ownerReferences?.find((r) => r.controller === true)?.uid;
}

/**
 * Every broken invariant of `state` (empty when all hold):
 * - each Message is Ready=True for its current generation (observedGeneration = generation);
 * - its status is truthful: status.podName names a Pod that exists, is controlled by this Message
 *   (ownerReference uid = the Message's uid), prints the Message's current text, and whose phase
 *   is status.phase;
 * - exactly one Pod is controlled by each Message, and no Pod is being deleted;
 * - no orphan: every Pod of the operator (its labels) is controlled by a Message that exists;
 * - with `expected`: the Messages are exactly the expected names with the expected texts (no
 *   deletion lost, no creation lost).
 */
export function violations(state: NamespaceState, expected?: Expected): string[] {
  const out: string[] = [];
  const byUid = new Map(state.messages.map((m) => [m.metadata.uid!, m]));
  const podsByOwner = new Map<string, Pod[]>();
  for (const pod of state.pods) {
    const uid = controllerUid(pod);
    const name = pod.metadata.name!;
    const ours = Object.entries(POD_LABELS).every(([k, v]) => pod.metadata.labels?.[k] === v);
    if (!uid || !byUid.has(uid)) {
      if (ours || uid) out.push(`orphan Pod ${name}: controller ${uid ?? 'none'} is no Message that exists`);
      continue;
    }
    if (pod.metadata.deletionTimestamp) out.push(`Pod ${name} is being deleted`);
    podsByOwner.set(uid, [...(podsByOwner.get(uid) ?? []), pod]);
  }
  for (const m of state.messages) {
    const name = m.metadata.name!;
    const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') out.push(`Message ${name}: Ready=${ready?.status ?? 'absent'} (${ready?.reason ?? 'no reason'})`);
    if (m.status?.observedGeneration !== m.metadata.generation) {
      out.push(
        `Message ${name}: status.observedGeneration ${m.status?.observedGeneration ?? 'absent'} ≠ generation ${m.metadata.generation}`,
      );
    }
    const owned = podsByOwner.get(m.metadata.uid!) ?? [];
    if (owned.length !== 1)
      out.push(
        `Message ${name}: ${owned.length} Pods controlled by it (${owned.map((p) => p.metadata.name).join(', ') || 'none'}); want exactly 1`,
      );
    const pod = state.pods.find((p) => p.metadata.name === m.status?.podName);
    if (!pod) {
      out.push(`Message ${name}: status.podName ${m.status?.podName ?? 'absent'} names no Pod that exists`);
      continue;
    }
    if (controllerUid(pod) !== m.metadata.uid)
      out.push(`Message ${name} (uid ${m.metadata.uid}): its Pod ${pod.metadata.name} is controlled by ${controllerUid(pod) ?? 'nothing'}`);
    if (pod.metadata.annotations?.['myorg.dev/text-hash'] !== textHash(m.spec?.text ?? ''))
      out.push(`Message ${name}: its Pod ${pod.metadata.name} prints another text`);
    if ((pod.status?.phase ?? 'Pending') !== m.status?.phase)
      out.push(
        `Message ${name}: status.phase ${m.status?.phase ?? 'absent'} but Pod ${pod.metadata.name} is ${pod.status?.phase ?? 'Pending'}`,
      );
  }
  if (expected) {
    const live = new Map(state.messages.map((m) => [m.metadata.name!, m]));
    for (const [name, text] of expected) {
      const m = live.get(name);
      if (!m) out.push(`Message ${name} is missing (a creation lost)`);
      else if (m.spec?.text !== text) out.push(`Message ${name}: spec.text is not the text last written`);
    }
    for (const name of live.keys()) if (!expected.has(name)) out.push(`Message ${name} exists but was deleted (a deletion lost)`);
  }
  return out;
}

/** Formats violations for an assertion message: how many, then the first 15. */
export function describeViolations(list: string[]): string {
  return `${list.length} invariant violations:\n  ${list.slice(0, 15).join('\n  ')}${list.length > 15 ? `\n  … and ${list.length - 15} more` : ''}`;
}

/**
 * Polls the API server until every invariant holds; resolves the ms from `since` (a
 * performance.now() value) at which it first did, or throws InvariantError with the violations
 * still present at `timeoutMs`.
 */
export async function waitConverged(
  client: KubeClient,
  namespace: string,
  opts: { since: number; timeoutMs: number; expected?: Expected; intervalMs?: number },
): Promise<{ ms: number; state: NamespaceState }> {
  const until = performance.now() + opts.timeoutMs;
  for (;;) {
    const state = await readNamespace(client, namespace).catch((err: Error) => err);
    if (!(state instanceof Error)) {
      const v = violations(state, opts.expected);
      if (v.length === 0) return { ms: performance.now() - opts.since, state };
      if (performance.now() > until)
        throw new InvariantError(`not converged ${opts.timeoutMs} ms after the start: ${describeViolations(v)}`);
    } else if (performance.now() > until) {
      throw new InvariantError(`could not read namespace ${namespace} at the deadline: ${state.message}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

/** The operator's requests in a namespace and in a quiet window after convergence. */
export interface HotLoopReport {
  /** Every request the operator made since `since`. */
  counts: RequestCounts;
  /** Requests the operator made in the quiet window after convergence: writes must be 0. */
  quiet: RequestCounts;
}

/**
 * Reads the operator's requests from the audit log: all of them since `since`, and those made in a
 * window of `quietMs` that starts now (the scenario has converged, so nothing is left to do).
 * There is no event to await for "no request came": the window is the measure.
 */
export async function hotLoopReport(auditLog: string, opts: { since: Date; namespace: string; quietMs?: number }): Promise<HotLoopReport> {
  const quietFrom = new Date();
  await new Promise((r) => setTimeout(r, opts.quietMs ?? 3_000));
  const events = await readAudit(auditLog);
  return {
    counts: countRequests(events, { userAgent: OPERATOR_USER_AGENT, since: opts.since, namespace: opts.namespace }),
    quiet: countRequests(events, { userAgent: OPERATOR_USER_AGENT, since: quietFrom }),
  };
}

/** Every hot-loop symptom of `r`: writes in the quiet window, or more writes to one Message and its Pod than `maxWritesPerObject`. */
export function hotLoopViolations(r: HotLoopReport, maxWritesPerObject: number): string[] {
  const out: string[] = [];
  if (r.quiet.writes > 0)
    out.push(`${r.quiet.writes} writes by the operator after convergence (${JSON.stringify(r.quiet.byKind)}): a hot loop`);
  if (r.counts.maxWritesPerObject.writes > maxWritesPerObject) {
    out.push(
      `${r.counts.maxWritesPerObject.writes} writes to Message ${r.counts.maxWritesPerObject.name} and its Pod, more than the bound ${maxWritesPerObject}`,
    );
  }
  return out;
}

/** Creates Messages `names` with `text(name)` in `namespace`, `concurrency` at a time; resolves their uids by name. */
export async function createMessages(
  client: KubeClient,
  namespace: string,
  names: string[],
  text: (name: string) => string,
  concurrency = 32,
): Promise<Map<string, string>> {
  const uids = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const created = await client.create<Message>(MessageResource, {
        apiVersion: 'myorg.dev/v1',
        kind: 'Message',
        metadata: { name, namespace },
        spec: { text: text(name) },
      } as Message);
      uids.set(name, created.metadata.uid!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return uids;
}

/** Names `prefix-000` … for `n` objects. */
export function names(prefix: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(from + i).padStart(4, '0')}`);
}

/** What a Pod watch saw over a run: the most Pods one owner had at once, and an owner that had two. */
export interface PodWatch {
  readonly max: number;
  readonly doubled: string | undefined;
  stop(): void;
}

/**
 * Watches every Pod of `namespace` (kubectl as the client) and tracks, per controlling owner uid, the Pods that
 * exist at once: a check of "exactly one child" that a final listing would miss, since it also sees two Pods
 * that existed for a moment.
 */
export function watchPods(kubeconfig: string, namespace: string): PodWatch {
  const byOwner = new Map<string, Set<string>>();
  const state = { max: 0, doubled: undefined as string | undefined };
  const proc = spawn(
    'kubectl',
    [
      'get',
      'pods',
      '-n',
      namespace,
      '--watch',
      '--output-watch-events',
      '-o',
      'jsonpath={.type} {.object.metadata.uid} {.object.metadata.ownerReferences[0].uid}{"\\n"}',
    ],
    { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const [type, uid, owner] = line.trim().split(' ');
    if (!uid || !owner) return;
    const set = byOwner.get(owner) ?? new Set<string>();
    byOwner.set(owner, set);
    if (type === 'DELETED') set.delete(uid);
    else set.add(uid);
    if (set.size > state.max) {
      state.max = set.size;
      if (set.size > 1) state.doubled = owner;
    }
  });
  return {
    get max() {
      return state.max;
    },
    get doubled() {
      return state.doubled;
    },
    stop: () => proc.kill(),
  };
}
