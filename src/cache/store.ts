import { type KubeObject, keyOf } from '../client/types.js';

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
export class UnknownIndexError extends Error {
  override readonly name = 'UnknownIndexError';
}

/** An indexer was registered under a name already taken. */
export class IndexConflictError extends Error {
  override readonly name = 'IndexConflictError';
}

const builtinIndexers: Record<string, IndexFunc> = {
  [OWNER_INDEX]: (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid),
  [CONTROLLER_INDEX]: (o) => (o.metadata.ownerReferences ?? []).filter((r) => r.controller).map((r) => r.uid),
  [LABEL_INDEX]: (o) => Object.entries(o.metadata.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  [NAMESPACE_INDEX]: (o) => [o.metadata.namespace ?? ''],
};

interface Index<T extends KubeObject> {
  fn: IndexFunc<T>;
  values: Map<string, Set<string>>;
}

/**
 * An in-memory map of objects by 'namespace/name' with secondary indexes; every lookup is O(1) in the
 * number of objects. Objects handed out are the stored instances: treat them as read-only.
 */
export class Store<T extends KubeObject = KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();

  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    for (const [name, fn] of Object.entries(builtinIndexers)) this.addIndexer(name, fn as IndexFunc<T>);
    for (const [name, fn] of Object.entries(indexers)) this.addIndexer(name, fn);
  }

  /** Registers an index; existing objects are indexed at once. */
  addIndexer(name: string, fn: IndexFunc<T>): void {
    const existing = this.indexes.get(name);
    if (existing) {
      // Re-registering the same function (two controllers sharing a cache) is harmless.
      if (existing.fn === fn) return;
      throw new IndexConflictError(`index '${name}' is already registered with another function; pick a unique index name`);
    }
    const idx: Index<T> = { fn, values: new Map() };
    this.indexes.set(name, idx);
    for (const [key, obj] of this.items) addToIndex(idx, key, obj);
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
      throw new UnknownIndexError(`no index '${name}'; register it with addIndexer before querying (known: ${[...this.indexes.keys()].join(', ')})`);
    }
    const keys = idx.values.get(value);
    return keys ? [...keys] : [];
  }

  /** Inserts or replaces an object under its key; returns the previous object. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.items.get(key);
    for (const idx of this.indexes.values()) {
      if (old) removeFromIndex(idx, key, old);
      addToIndex(idx, key, obj);
    }
    this.items.set(key, obj);
    return old;
  }

  /** Removes the object under `key`; returns it. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    for (const idx of this.indexes.values()) removeFromIndex(idx, key, old);
    this.items.delete(key);
    return old;
  }
}

function addToIndex<T extends KubeObject>(idx: Index<T>, key: string, obj: T): void {
  for (const v of idx.fn(obj)) {
    let set = idx.values.get(v);
    if (!set) idx.values.set(v, (set = new Set()));
    set.add(key);
  }
}

function removeFromIndex<T extends KubeObject>(idx: Index<T>, key: string, obj: T): void {
  for (const v of idx.fn(obj)) {
    const set = idx.values.get(v);
    if (!set) continue;
    set.delete(key);
    // Empty sets would leak one entry per label value or owner ever seen.
    if (set.size === 0) idx.values.delete(v);
  }
}

/** Removes `metadata.managedFields` in place: it is often most of an object's size and no controller reads it. */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return obj;
}
