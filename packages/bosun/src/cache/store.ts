import { type KubeObject, keyOf } from '../client/types.js';
import { bosunError } from '../errors.js';

/** Computes the index values of an object; an object may sit under several values or none. */
export type IndexFunc<T extends KubeObject = KubeObject> = (obj: T) => string[];

/** Built-in index: the uid of every owner in `metadata.ownerReferences`. */
export const OWNER_INDEX = 'owner';
/** Built-in index: the uid of the controlling owner (`controller: true`) only. */
export const CONTROLLER_INDEX = 'controller';
/** Built-in index: every label as `key=value`. */
export const LABEL_INDEX = 'label';
/** Built-in index: the object's namespace ('' for cluster-scoped objects). */
export const NAMESPACE_INDEX = 'namespace';

/** `byIndex` was called with a name no indexer was registered under. */
export class UnknownIndexError extends bosunError('BOSUN_UNKNOWN_INDEX') {
  override readonly name = 'UnknownIndexError';
}

/** An index function threw for an object; the store was left unchanged. */
export class IndexerError extends bosunError('BOSUN_INDEXER') {
  override readonly name = 'IndexerError';
}

/** An indexer was registered under a name already taken. */
export class IndexConflictError extends bosunError('BOSUN_INDEX_CONFLICT') {
  override readonly name = 'IndexConflictError';
}

/** The index functions behind the built-in index names, registered on a store when asked for (`ensureIndex`). */
export const builtinIndexers: Readonly<Record<string, IndexFunc>> = {
  [OWNER_INDEX]: (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid),
  [CONTROLLER_INDEX]: (o) => (o.metadata.ownerReferences ?? []).filter((r) => r.controller).map((r) => r.uid),
  [LABEL_INDEX]: (o) => Object.entries(o.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  [NAMESPACE_INDEX]: (o) => [o.metadata.namespace ?? ''],
};

/**
 * The keys indexed under one value; buckets are shared by reference, so a key's entries cost a
 * pointer each. Most values (an owner's uid) index one key: it is held as a string, a Set only from
 * the second key on, which saves about 100 bytes per object.
 */
interface Bucket {
  readonly value: string;
  keys: string | Set<string>;
}

function bucketHas(b: Bucket, key: string): boolean {
  return typeof b.keys === 'string' ? b.keys === key : b.keys.has(key);
}

function bucketKeys(b: Bucket): string[] {
  return typeof b.keys === 'string' ? [b.keys] : [...b.keys];
}

interface Index<T extends KubeObject> {
  fn: IndexFunc<T>;
  values: Map<string, Bucket>;
  /** The buckets each key was added to (one bucket directly, the common case), so removal never recomputes values. */
  byKey: Map<string, Bucket | Bucket[]>;
}

/**
 * An in-memory map of objects by 'namespace/name' with secondary indexes; every lookup is O(1) in the
 * number of objects. Stored objects are deep-frozen, so the instances handed out (shared by every
 * reader) cannot be changed under the cache or its indexes: copy before changing.
 */
export class Store<T extends KubeObject = KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();

  /**
   * A store with exactly these indexes: each costs memory for every object, so the built-in ones
   * are added only when asked for (`ensureIndex`), as a reader's query first needs one.
   */
  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    for (const [name, fn] of Object.entries(indexers)) this.addIndexer(name, fn);
  }

  /** Registers an index; existing objects are indexed at once (an IndexerError if the function throws on one). */
  addIndexer(name: string, fn: IndexFunc<T>): void {
    const existing = this.indexes.get(name);
    if (existing) {
      // Re-registering the same function (two controllers sharing a cache) is harmless.
      if (existing.fn === fn) return;
      throw new IndexConflictError(`index '${name}' is already registered with another function; pick a unique index name`);
    }
    const idx: Index<T> = { fn, values: new Map(), byKey: new Map() };
    // All values first: an indexer that throws on a cached object registers nothing.
    const computed = [...this.items].map(([key, obj]) => [key, indexValues(name, idx, key, obj)] as const);
    this.indexes.set(name, idx);
    for (const [key, values] of computed) addToIndex(idx, key, values);
  }

  /** Registers the built-in index `name` (owner, controller, label, namespace) unless it exists already. */
  ensureIndex(name: string): void {
    if (this.indexes.has(name)) return;
    const fn = builtinIndexers[name];
    if (!fn)
      throw new UnknownIndexError(
        `no built-in index '${name}' (built-in: ${Object.keys(builtinIndexers).join(', ')}); register it with addIndexer`,
      );
    this.addIndexer(name, fn as IndexFunc<T>);
  }

  /** Whether an index of that name exists. */
  hasIndex(name: string): boolean {
    return this.indexes.has(name);
  }

  /** The object under 'namespace/name' (or 'name' if cluster-scoped). */
  get(key: string): T | undefined {
    return this.items.get(key);
  }

  /** The object with this namespace and name. */
  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  /** All objects (a new array). */
  list(): T[] {
    return [...this.items.values()];
  }

  /** All keys (a new array). */
  keys(): string[] {
    return [...this.items.keys()];
  }

  /** Number of objects stored. */
  get size(): number {
    return this.items.size;
  }

  /** The objects indexed under `value` in index `name`. */
  byIndex(name: string, value: string): T[] {
    const out: T[] = [];
    for (const key of this.indexKeys(name, value)) {
      const obj = this.items.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** The keys indexed under `value` in index `name`. */
  indexKeys(name: string, value: string): string[] {
    const idx = this.indexes.get(name);
    if (!idx) {
      throw new UnknownIndexError(
        `no index '${name}'; register it with addIndexer before querying (known: ${[...this.indexes.keys()].join(', ')})`,
      );
    }
    const b = idx.values.get(value);
    return b ? bucketKeys(b) : [];
  }

  /**
   * Inserts or replaces an object under its key, deep-freezing it; returns the previous object.
   * Every index value is computed before anything changes, so an indexer that throws (an
   * IndexerError) leaves the store and all its indexes as they were.
   */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    deepFreeze(obj);
    const computed: (readonly string[])[] = [];
    for (const [name, idx] of this.indexes) computed.push(indexValues(name, idx, key, obj));
    const old = this.items.get(key);
    let i = 0;
    for (const idx of this.indexes.values()) {
      if (old) removeFromIndex(idx, key);
      addToIndex(idx, key, computed[i++]!);
    }
    this.items.set(key, obj);
    return old;
  }

  /** Removes the object under `key`; returns it. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    for (const idx of this.indexes.values()) removeFromIndex(idx, key);
    this.items.delete(key);
    return old;
  }
}

function indexValues<T extends KubeObject>(name: string, idx: Index<T>, key: string, obj: T): readonly string[] {
  try {
    return idx.fn(obj);
  } catch (err) {
    throw new IndexerError(
      `index '${name}' threw for ${obj.kind ?? 'object'} ${key}: ${(err as Error)?.message ?? String(err)}; fix the index function so it returns [] for objects it cannot index`,
      { cause: err },
    );
  }
}

function addToIndex<T extends KubeObject>(idx: Index<T>, key: string, values: readonly string[]): void {
  if (values.length === 0) return;
  const buckets: Bucket[] = [];
  for (const value of values) {
    const b = idx.values.get(value);
    if (!b) {
      const fresh: Bucket = { value, keys: key };
      idx.values.set(value, fresh);
      buckets.push(fresh);
      continue;
    }
    if (bucketHas(b, key)) continue;
    if (typeof b.keys === 'string') b.keys = new Set([b.keys, key]);
    else b.keys.add(key);
    buckets.push(b);
  }
  idx.byKey.set(key, buckets.length === 1 ? buckets[0]! : buckets);
}

function removeFromIndex<T extends KubeObject>(idx: Index<T>, key: string): void {
  const held = idx.byKey.get(key);
  if (!held) return;
  idx.byKey.delete(key);
  for (const b of Array.isArray(held) ? held : [held]) {
    // Empty buckets would leak one entry per label value or owner ever seen.
    if (typeof b.keys === 'string') {
      if (b.keys === key) idx.values.delete(b.value);
      continue;
    }
    b.keys.delete(key);
    if (b.keys.size === 0) idx.values.delete(b.value);
  }
}

/**
 * Freezes `value` and everything reachable from it, in place, and returns it. Stored objects are
 * shared by every reader; in strict-mode code (every ES module) a write to one then throws a
 * TypeError at the faulty line instead of silently corrupting the cache.
 */
export function deepFreeze<T>(value: T): T {
  // Already-frozen parts were frozen deeply by this function; skipping them also ends any cycle.
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  else for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}

/** Removes `metadata.managedFields` in place: it is often most of an object's size and no controller reads it. */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

/** The annotation `kubectl apply` writes: a full copy of the applied object, which no controller reads. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The informers' default transform: drops what no controller reads and what can be most of an
 * object's size, `metadata.managedFields` and kubectl's last-applied-configuration annotation.
 * It builds `metadata` (and `annotations`) afresh rather than deleting keys: V8 turns an object
 * that loses a middle property into a slower, larger dictionary (measured: ~340 bytes per Pod).
 */
export function stripForCache<T extends KubeObject>(obj: T): T {
  const meta = obj.metadata;
  if (!meta) return obj;
  const annotations = meta.annotations;
  const lastApplied = annotations !== undefined && LAST_APPLIED_ANNOTATION in annotations;
  if (!('managedFields' in meta) && !lastApplied) return obj;
  const next: Record<string, unknown> = {};
  for (const k in meta) {
    if (k === 'managedFields') continue;
    if (k === 'annotations' && lastApplied) {
      const kept: Record<string, string> = {};
      let n = 0;
      for (const a in annotations) {
        if (a === LAST_APPLIED_ANNOTATION) continue;
        kept[a] = annotations[a]!;
        n++;
      }
      if (n > 0) next.annotations = kept;
      continue;
    }
    next[k] = (meta as Record<string, unknown>)[k];
  }
  obj.metadata = next as T['metadata'];
  return obj;
}
