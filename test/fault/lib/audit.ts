// Counting the requests one client made, from the API server's audit log.
//
// apiserver_request_total has no label naming the client (its labels are verb, group, version,
// resource, subresource, scope, component, dry_run and code; `component` is the server's own
// component, empty or "apiserver"), and it restarts at zero with the API server a scenario kills.
// The audit log names the user agent of every request and survives restarts, so a scenario's
// control plane runs with it and the suite counts the operator's requests there.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The audit policy: metadata of every request by the admin user (the operator, the test, kubectl),
 * and of every Pod deletion by anyone (kwok, garbage collection), nothing else.
 */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [ResponseStarted]
rules:
  - level: Metadata
    users: [bosun-admin]
  - level: Metadata
    verbs: [delete]
    resources: [{ group: "", resources: [pods] }]
  - level: None
`;

/** Writes the audit policy into the cluster directory; returns the kube-apiserver flags that turn the audit log on. */
export async function auditFlags(dir: string): Promise<{ args: string[]; log: string }> {
  const policy = join(dir, 'config', 'audit-policy.yaml');
  const log = join(dir, 'logs', 'audit.log');
  await writeFile(policy, AUDIT_POLICY);
  return { args: [`--audit-policy-file=${policy}`, `--audit-log-path=${log}`, '--audit-log-maxsize=0', '--audit-log-maxbackup=0'], log };
}

/** One audit event, the fields the suite reads. */
export interface AuditEvent {
  auditID: string;
  stage: 'RequestReceived' | 'ResponseComplete' | 'Panic' | 'ResponseStarted';
  verb: string;
  requestURI: string;
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  /** When this stage happened (for ResponseComplete: when the answer was sent). */
  stageTimestamp?: string;
}

/** Reads every event of the audit log (a line cut short by a killed API server is skipped). */
export async function readAudit(file: string): Promise<AuditEvent[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const out: AuditEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as AuditEvent);
    } catch {
      /* the last line of a log whose writer was SIGKILLed */
    }
  }
  return out;
}

/** The user agent of the operator's client (KubeClient's default). */
export const OPERATOR_USER_AGENT = 'bosun';
/** The user agent of the clients the scenarios themselves use, so their requests are never counted as the operator's. */
export const TEST_USER_AGENT = 'bosun-fault-test';

/** The verbs that change something. */
const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** What one client asked of the API server, from the audit log. */
export interface RequestCounts {
  /** Every request received (watches count once, when they start). */
  total: number;
  /** Requests by `verb resource[/subresource]`, e.g. `patch messages/status`. */
  byKind: Record<string, number>;
  /** Writes (create, update, patch, delete). */
  writes: number;
  /** The most writes to any one Message or Pod (by object name), with its name. */
  maxWritesPerObject: { name: string; writes: number };
  /** Pods created: writes to pods answered 201 (a server-side apply that creates answers 201 too). */
  podCreations: number;
  /** Pod creations per Pod name. */
  podCreationsByName: Map<string, number>;
  /** Requests answered 410 Gone (an expired resourceVersion: the client must relist). */
  gone: number;
  /** When the last write was received. */
  lastWriteAt: Date | undefined;
  /** Writes per Message name (a Message m and its Pod m-pod counted together). */
  writesPerObject: Map<string, number>;
}

/**
 * Counts the requests of `userAgent` (exactly) received at or after `since` (a Date), optionally
 * only those in `namespace`.
 */
export function countRequests(events: AuditEvent[], opts: { userAgent?: string; since?: Date; namespace?: string } = {}): RequestCounts {
  const ua = opts.userAgent ?? OPERATOR_USER_AGENT;
  const since = opts.since?.getTime() ?? 0;
  const mine = events.filter(
    (e) =>
      e.userAgent === ua &&
      Date.parse(e.requestReceivedTimestamp) >= since &&
      (opts.namespace === undefined || e.objectRef?.namespace === opts.namespace),
  );
  const counts: RequestCounts = {
    total: 0,
    byKind: {},
    writes: 0,
    maxWritesPerObject: { name: '', writes: 0 },
    podCreations: 0,
    podCreationsByName: new Map(),
    gone: 0,
    lastWriteAt: undefined,
    writesPerObject: new Map(),
  };
  const perObject = counts.writesPerObject;
  for (const e of mine) {
    const resource = e.objectRef?.resource ?? e.requestURI.split('?')[0]!;
    if (e.stage === 'RequestReceived') {
      counts.total++;
      const kind = `${e.verb} ${resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
      counts.byKind[kind] = (counts.byKind[kind] ?? 0) + 1;
      if (WRITES.has(e.verb)) {
        counts.writes++;
        const at = new Date(e.requestReceivedTimestamp);
        if (!counts.lastWriteAt || at > counts.lastWriteAt) counts.lastWriteAt = at;
        if ((resource === 'messages' || resource === 'pods') && e.objectRef?.name) {
          // A Message m and its Pod m-pod are one object for the bound.
          const name = e.objectRef.name.replace(/-pod$/, '');
          const n = (perObject.get(name) ?? 0) + 1;
          perObject.set(name, n);
          if (n > counts.maxWritesPerObject.writes) counts.maxWritesPerObject = { name, writes: n };
        }
      }
    } else if (e.stage === 'ResponseComplete') {
      if (e.responseStatus?.code === 410) counts.gone++;
      if (resource === 'pods' && WRITES.has(e.verb) && e.verb !== 'delete' && e.responseStatus?.code === 201) {
        counts.podCreations++;
        const name = e.objectRef?.name ?? '';
        counts.podCreationsByName.set(name, (counts.podCreationsByName.get(name) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/** A one-line summary of the counts for t.diagnostic. */
export function describeCounts(c: RequestCounts): string {
  const kinds = Object.entries(c.byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  return `${c.total} requests (${c.writes} writes; most writes to one Message+Pod: ${c.maxWritesPerObject.writes} (${c.maxWritesPerObject.name || 'none'}); ${c.podCreations} Pod creations; ${c.gone} answered 410) — ${kinds}`;
}

/** One deletion of a Pod, from its two audit events: when it was received and when, and how, it was answered. */
export interface PodDeletion {
  userAgent: string;
  receivedAt: number;
  /** When the answer was sent; undefined when the API server died before answering. */
  answeredAt?: number;
  code?: number;
}

/**
 * Deletions of Pods by other clients than `userAgent` (kwok, the garbage collector) received at or
 * after `since`, by Pod name. A deletion is received and answered at two moments, and a create of
 * the same name can fall between them: kwok deletes by name, so a deletion received just before a
 * create can remove the Pod that create made. The times are audit MicroTime, kept to the microsecond.
 */
export function foreignPodDeletes(
  events: AuditEvent[],
  opts: { since: Date; namespace: string; userAgent?: string },
): Map<string, PodDeletion[]> {
  const ua = opts.userAgent ?? OPERATOR_USER_AGENT;
  const byId = new Map<string, { name: string; d: PodDeletion }>();
  for (const e of events) {
    if (e.verb !== 'delete' || e.objectRef?.resource !== 'pods' || e.objectRef.namespace !== opts.namespace) continue;
    if (e.userAgent === ua || e.userAgent === TEST_USER_AGENT) continue;
    const receivedAt = microTime(e.requestReceivedTimestamp);
    if (receivedAt < opts.since.getTime()) continue;
    const entry = byId.get(e.auditID) ?? { name: e.objectRef.name ?? '', d: { userAgent: e.userAgent ?? '', receivedAt } };
    if (e.stage === 'ResponseComplete') {
      entry.d.answeredAt = microTime(e.stageTimestamp ?? e.requestReceivedTimestamp);
      entry.d.code = e.responseStatus?.code;
    }
    byId.set(e.auditID, entry);
  }
  const out = new Map<string, PodDeletion[]>();
  for (const { name, d } of byId.values()) out.set(name, [...(out.get(name) ?? []), d]);
  return out;
}

/**
 * Whether one of `deletions` removed a Pod between two creations of its name received at `prev`
 * and `next`: it succeeded, was answered after `prev` was received and was received before `next`.
 */
export function deletedBetween(deletions: PodDeletion[], prev: number, next: number): boolean {
  return deletions.some(
    (d) => (d.code === 200 || d.code === 202) && d.answeredAt !== undefined && d.answeredAt > prev && d.receivedAt < next,
  );
}

/** Milliseconds since the epoch of an audit MicroTime (2026-12-01T18:40:33.414123Z), the microseconds kept as a fraction. */
export function microTime(s: string): number {
  const m = /\.(\d+)Z$/.exec(s);
  const whole = Date.parse(s.replace(/\.\d+Z$/, 'Z'));
  return m ? whole + Number(`0.${m[1]}`) * 1000 : whole;
}

/** The times the operator's Pod creations (answered 201) were received, by Pod name. */
export function podCreationTimes(
  events: AuditEvent[],
  opts: { since: Date; namespace: string; userAgent?: string },
): Map<string, number[]> {
  const ua = opts.userAgent ?? OPERATOR_USER_AGENT;
  const out = new Map<string, number[]>();
  for (const e of events) {
    if (
      e.stage !== 'ResponseComplete' ||
      e.userAgent !== ua ||
      e.objectRef?.resource !== 'pods' ||
      e.objectRef.namespace !== opts.namespace
    )
      continue;
    if (e.verb === 'delete' || !WRITES.has(e.verb) || e.responseStatus?.code !== 201) continue;
    const at = microTime(e.requestReceivedTimestamp);
    if (at < opts.since.getTime()) continue;
    const name = e.objectRef.name ?? '';
    out.set(
      name,
      [...(out.get(name) ?? []), at].sort((a, b) => a - b),
    );
  }
  return out;
}
