// What the audit log says about one client under API Priority and Fairness: the requests it sent,
// the ones the server refused with 429 before doing anything, and whether each refused request was
// sent again no sooner than the Retry-After the server gave.
import type { AuditEvent } from './audit.js';

/** An audit event with the user the server authenticated (lib/audit.ts's AuditEvent leaves it out). */
export type UserAuditEvent = AuditEvent & { user?: { username?: string }; stageTimestamp?: string };

/** The verbs that change something. */
const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** What one user asked in one namespace, and how the server answered. */
export interface ThrottleReport {
  /** Requests received (a refused one and its retry count twice). */
  received: number;
  /** Requests answered 429 Too Many Requests. */
  refused: number;
  /** Refused requests by `verb resource[/subresource]`. */
  refusedByKind: Record<string, number>;
  /** Requests the server let through (received − refused). */
  admitted: number;
  /** The most 429s in any window of `windowMs` (a storm would be many a second, one per request sent). */
  maxRefusedPerWindow: number;
  /** Writes the server let through to one Message and its Pod (by Message name), the most of any. */
  maxAdmittedWritesPerObject: { name: string; writes: number };
  /**
   * For each refused request that `isRetriedRequest`, the ms from the 429 answer (which may come after a wait in the APF queue) to the
   * next request with the same verb and URI: its retry.
   */
  retryGapsMs: number[];
  /**
   * The least gap of `retryGapsMs` by how many times in a row that request had been refused: [0] after
   * its first 429, [1] after its second, … (APF raises its Retry-After, 1 s at first, while it keeps refusing).
   */
  minRetryGapByRefusal: number[];
  /** Refused requests that named an object and were never sent again (the client gave up on them). */
  notRetried: number;
  /** From the first to the last request received, in ms. */
  spanMs: number;
}

/**
 * Whether a request's next one with the same verb and URI is its retry: it names its object (creates to a
 * collection are left out: two Events share a URI) and is not an Event write. Events are best effort: the
 * recorder drops a write its client gave up on (10 s, which APF's doubling Retry-After can outlast), and the
 * next patch of the same Event counts a later occurrence, not the dropped one again.
 */
export function isRetriedRequest(e: AuditEvent): boolean {
  return e.verb !== 'create' && Boolean(e.objectRef?.name) && e.objectRef?.resource !== 'events';
}

function kindOf(e: AuditEvent): string {
  const resource = e.objectRef?.resource ?? e.requestURI.split('?')[0]!;
  return `${e.verb} ${resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
}

/**
 * Reads the requests of `username` in `namespace` received at or after `since` (a Date) from audit
 * events; `windowMs` (default 1 s) is the window of `maxRefusedPerWindow`.
 */
export function throttleReport(
  events: UserAuditEvent[],
  opts: { username: string; namespace: string; since: Date; windowMs?: number },
): ThrottleReport {
  const since = opts.since.getTime();
  const mine = events.filter(
    (e) =>
      e.user?.username === opts.username && e.objectRef?.namespace === opts.namespace && Date.parse(e.requestReceivedTimestamp) >= since,
  );
  const received = mine
    .filter((e) => e.stage === 'RequestReceived')
    .sort((a, b) => Date.parse(a.requestReceivedTimestamp) - Date.parse(b.requestReceivedTimestamp));
  const code = new Map<string, number | undefined>();
  const answeredAt = new Map<string, number>();
  for (const e of mine) {
    if (e.stage !== 'ResponseComplete') continue;
    code.set(e.auditID, e.responseStatus?.code);
    answeredAt.set(e.auditID, Date.parse(e.stageTimestamp ?? e.requestReceivedTimestamp));
  }
  const refused = received.filter((e) => code.get(e.auditID) === 429);

  const refusedByKind: Record<string, number> = {};
  for (const e of refused) refusedByKind[kindOf(e)] = (refusedByKind[kindOf(e)] ?? 0) + 1;

  const windowMs = opts.windowMs ?? 1_000;
  const times = refused.map((e) => Date.parse(e.requestReceivedTimestamp));
  let maxRefusedPerWindow = 0;
  for (let lo = 0, hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= windowMs) lo++;
    maxRefusedPerWindow = Math.max(maxRefusedPerWindow, hi - lo + 1);
  }

  const perObject = new Map<string, number>();
  let maxWrites = { name: '', writes: 0 };
  for (const e of received) {
    const resource = e.objectRef?.resource;
    if (!WRITES.has(e.verb) || code.get(e.auditID) === 429 || (resource !== 'messages' && resource !== 'pods') || !e.objectRef?.name)
      continue;
    const name = e.objectRef.name.replace(/-pod$/, '');
    const n = (perObject.get(name) ?? 0) + 1;
    perObject.set(name, n);
    if (n > maxWrites.writes) maxWrites = { name, writes: n };
  }

  const retryGapsMs: number[] = [];
  const minRetryGapByRefusal: number[] = [];
  let notRetried = 0;
  const byKey = new Map<string, UserAuditEvent[]>();
  for (const e of received) {
    if (!isRetriedRequest(e)) continue;
    const key = `${e.verb} ${e.requestURI}`;
    byKey.set(key, [...(byKey.get(key) ?? []), e]);
  }
  for (const sequence of byKey.values()) {
    let inARow = 0;
    for (const [i, e] of sequence.entries()) {
      if (code.get(e.auditID) !== 429) {
        inARow = 0;
        continue;
      }
      const at = answeredAt.get(e.auditID)!;
      const next = sequence.slice(i + 1).find((n) => Date.parse(n.requestReceivedTimestamp) > at);
      if (next === undefined) notRetried++;
      else {
        const gap = Date.parse(next.requestReceivedTimestamp) - at;
        retryGapsMs.push(gap);
        minRetryGapByRefusal[inARow] = Math.min(minRetryGapByRefusal[inARow] ?? Infinity, gap);
      }
      inARow++;
    }
  }
  retryGapsMs.sort((a, b) => a - b);

  const first = received[0];
  const last = received[received.length - 1];
  return {
    received: received.length,
    refused: refused.length,
    refusedByKind,
    admitted: received.length - refused.length,
    maxRefusedPerWindow,
    maxAdmittedWritesPerObject: maxWrites,
    retryGapsMs,
    minRetryGapByRefusal,
    notRetried,
    spanMs: first && last ? Date.parse(last.requestReceivedTimestamp) - Date.parse(first.requestReceivedTimestamp) : 0,
  };
}

/** A one-line summary for t.diagnostic. */
export function describeThrottle(r: ThrottleReport, messages: number): string {
  const kinds = Object.entries(r.refusedByKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  const gaps = r.retryGapsMs;
  const byRefusal = r.minRetryGapByRefusal.map((g, i) => `${i + 1}: ${g}`).join(', ');
  const gapText = gaps.length
    ? `retry of a refused request min ${gaps[0]} ms, median ${gaps[Math.floor(gaps.length / 2)]} ms after its 429 (least gap after the n-th refusal in a row, ms: ${byRefusal})`
    : 'no refused request named its object';
  return (
    `${r.received} requests received (${(r.received / messages).toFixed(2)} per Message), ${r.refused} answered 429 (${kinds || 'none'}), ` +
    `${r.admitted} admitted (${(r.admitted / messages).toFixed(2)} per Message) over ${(r.spanMs / 1000).toFixed(1)} s; ` +
    `at most ${r.maxRefusedPerWindow} 429s in one second; ${gapText}; ${r.notRetried} never sent again; ` +
    `most admitted writes to one Message+Pod: ${r.maxAdmittedWritesPerObject.writes} (${r.maxAdmittedWritesPerObject.name || 'none'})`
  );
}
