/**
 * The cause detector of the kopf style: a pure function of the object, its diff base (the essence
 * last handled) and whether this process has handled it yet. No I/O, so it is tested without a
 * cluster.
 */
import { createHash } from 'node:crypto';
import type { KubeObject } from '../client/types.js';

/**
 * What a handler compares: the object without `apiVersion`, `kind`, `metadata` and `status`.
 * For custom resources that is `{ spec }`, for a ConfigMap `{ data, binaryData }`, for a Service
 * `{ spec }`: kinds without `metadata.generation` change here too.
 */
export type Essence = Record<string, unknown>;

/** The diff base as read from the object: the hash of the essence last handled, and the essence itself when it was small enough to keep. */
export interface DiffBase {
  hash: string;
  /** The essence last handled; absent when it was kept as a hash only. */
  essence?: Essence;
  /** Written by bosun 0.1, which hashed `spec` alone: compared with that hash, and rewritten. */
  legacy?: boolean;
}

/** Why handlers run. */
export type Cause =
  /** The object is being deleted. */
  | { type: 'delete' }
  /** The object has never been handled (no diff base). */
  | { type: 'create'; essence: Essence; hash: string }
  /** The essence differs from the diff base; `old` is undefined when the base was kept as a hash only. */
  | { type: 'update'; old: Essence | undefined; essence: Essence; hash: string }
  /** Handled before, unchanged, and not yet seen by this process: the operator (re)started. */
  | { type: 'resume'; essence: Essence; hash: string }
  /** Nothing to do for the object itself. */
  | { type: 'none'; essence: Essence; hash: string };

/** The essence of an object: every top-level field but apiVersion, kind, metadata and status. */
export function essenceOf(obj: KubeObject): Essence {
  const out: Essence = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'metadata' || k === 'status' || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** The sha256 of a value's stable JSON. */
export function hashOf(v: unknown): string {
  return createHash('sha256').update(stableJson(v)).digest('hex');
}

// What bosun 0.1 hashed: the spec alone.
function legacyHash(obj: KubeObject): string {
  return hashOf(obj.spec ?? null);
}

/**
 * Finds the cause of a run. `resumed` says whether this process has already handled the object
 * (a resume is due once per process, and again until its handlers succeed).
 */
export function detectCause(obj: KubeObject, base: DiffBase | undefined, opts: { resumed: boolean }): Cause {
  if (obj.metadata.deletionTimestamp) return { type: 'delete' };
  const essence = essenceOf(obj);
  const hash = hashOf(essence);
  if (!base) return { type: 'create', essence, hash };
  const same = base.legacy ? base.hash === legacyHash(obj) : base.hash === hash;
  if (!same) return { type: 'update', old: base.essence, essence, hash };
  return opts.resumed ? { type: 'none', essence, hash } : { type: 'resume', essence, hash };
}

/** The value at a dotted path such as 'spec.text' or 'data.key'. */
export function valueAt(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Whether an update changed the value at `field`. Without the old essence (a base kept as a hash
 * only) it cannot be told, and counts as changed so the handler is not skipped.
 */
export function fieldChanged(old: Essence | undefined, now: Essence, field: string): boolean {
  if (old === undefined) return true;
  return stableJson(valueAt(old, field)) !== stableJson(valueAt(now, field));
}

/** Whether an update event changed what the handlers look at, or began a deletion: the filter on the primary watch. */
export function essenceChanged(old: KubeObject, now: KubeObject): boolean {
  if (now.metadata.deletionTimestamp !== undefined && old.metadata.deletionTimestamp === undefined) return true;
  if (old.metadata.uid !== now.metadata.uid) return true;
  return stableJson(essenceOf(old)) !== stableJson(essenceOf(now));
}
