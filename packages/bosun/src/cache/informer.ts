import type { KubeClient } from '../client/client.js';
import { type KubeObject, type ResourceType, keyOf } from '../client/types.js';
import { type ListWatcher, type WatcherEvent, type WatcherOptions, clientListWatcher, runWatcher } from '../watch/watcher.js';
import type { WatchChange } from './change.js';
import { type CacheReader, cacheReader } from './reader.js';
import { type IndexFunc, Store, deepFreeze, stripForCache } from './store.js';
import { bosunError } from '../errors.js';

/** Builds the list/watch source of one namespace (undefined: all namespaces or cluster-scoped). */
export type ListWatcherFactory<T extends KubeObject = KubeObject> = (namespace: string | undefined) => ListWatcher<T>;

/** Options of an informer. */
export interface InformerOptions<T extends KubeObject = KubeObject> {
  /** Name for logs, e.g. the resource's plural (default 'objects'). */
  name?: string;
  /** Namespaces to watch, one watcher each; absent or empty for all namespaces. */
  namespaces?: string[];
  /** Applied to every object before it is stored (default `stripForCache`: managedFields and the last-applied annotation go). */
  transform?: (obj: T) => T;
  /** Named indexes to keep from the start; the built-in ones are otherwise added on first query (`store.ensureIndex`). */
  indexers?: Record<string, IndexFunc<T>>;
  /** Options passed to each watcher (hooks for restart metrics go here). */
  watcher?: WatcherOptions;
  /** Called when a subscriber throws; the informer and the other subscribers keep going. */
  onSubscriberError?(err: unknown, change: WatchChange<T>): void;
  /**
   * Called when the transform or an indexer throws for an object (as received from the API): the
   * object is skipped, as if that event never came, and counted in `droppedObjects`.
   */
  onObjectError?(err: unknown, obj: T): void;
}

/**
 * A store kept current by one watcher per namespace (a shared informer). Subscribers get every
 * change as a WatchChange after the store holds it; it is the `ChangeSource` a controller watches.
 */
export class Informer<T extends KubeObject = KubeObject> {
  /** The cached objects; read-only for callers. */
  readonly store: Store<T>;
  /** Name for logs, e.g. the resource's plural. */
  readonly name: string;
  /** The namespaces watched, one watcher each; empty for all namespaces (or a cluster-scoped kind). */
  readonly namespaces: readonly string[];
  private readonly subscribers = new Set<(change: WatchChange<T>) => void>();
  private readonly scopes: (string | undefined)[];
  private readonly synced = new Set<string | undefined>();
  private syncWaiters: (() => void)[] = [];
  private readonly transform: (obj: T) => T;
  private running: Promise<void> | undefined;
  private dropped = 0;
  /** Keys seen so far by the list in progress, per namespace scope. */
  private readonly listing = new Map<string | undefined, Set<string>>();
  private error: unknown;
  /** Namespace scopes whose watch broke and has not relisted or resumed since. */
  private readonly behindScopes = new Set<string | undefined>();
  private readonly freshnessListeners = new Set<() => void>();

  constructor(
    private readonly sourceFor: ListWatcherFactory<T>,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.name = opts.name ?? 'objects';
    this.store = new Store<T>(opts.indexers);
    this.namespaces = [...new Set(opts.namespaces ?? [])];
    this.scopes = this.namespaces.length > 0 ? [...this.namespaces] : [undefined];
    this.transform = opts.transform ?? stripForCache;
  }

  /** An informer for `type` through a KubeClient, optionally filtered by label/field selector. */
  static forType<T extends KubeObject = KubeObject>(
    client: KubeClient,
    type: ResourceType<T>,
    opts: InformerOptions<T> & { labelSelector?: string; fieldSelector?: string } = {},
  ): Informer<T> {
    const { labelSelector, fieldSelector } = opts;
    const namespaces = type.namespaced ? opts.namespaces : undefined;
    return new Informer<T>((namespace) => clientListWatcher<T>(client, type, { namespace, labelSelector, fieldSelector }), {
      name: type.plural,
      ...opts,
      namespaces,
    });
  }

  /**
   * Calls `fn` with every change from now on, after the store holds it; objects already cached are
   * replayed to it at once as adds. Synchronous: a slow subscriber delays the cache. Returns a
   * function that unsubscribes.
   */
  subscribe(fn: (change: WatchChange<T>) => void): () => void {
    this.subscribers.add(fn);
    for (const object of this.store.list()) this.deliver(fn, { type: 'add', object });
    return () => {
      this.subscribers.delete(fn);
    };
  }

  /** Registers an extra index (before or after start). */
  addIndexer(name: string, fn: IndexFunc<T>): void {
    this.store.addIndexer(name, fn);
  }

  /** Starts the watchers; resolves when `signal` fires and they have stopped. Calling it again returns the same run. */
  start(signal: AbortSignal): Promise<void> {
    this.running ??= Promise.all(
      this.scopes.map((ns) => runWatcher<T>(this.sourceFor(ns), (ev) => this.apply(ns, ev), signal, this.watcherOptions(ns))),
    ).then(() => undefined);
    return this.running;
  }

  /** Whether every namespace's first list has been stored. */
  hasSynced(): boolean {
    return this.synced.size === this.scopes.length;
  }

  /** Resolves true once synced, or false if `signal` fires first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      });
    });
  }

  /**
   * The error of the last failed list or watch request (an ApiError for HTTP failures), or
   * undefined once a later list completed or a watch delivered an event: why a kind has not synced.
   */
  lastError(): unknown {
    return this.error;
  }

  /**
   * Whether the store is known to be missing changes: a namespace's watch broke (an error, 410 Gone,
   * a silent or short-lived stream) and has neither relisted nor resumed since. A controller reading
   * this cache holds its reconciles meanwhile, so a change seen in another, fresher cache does not
   * act on state this one has not caught up with. Before the first sync it is false: nothing reads
   * a cache that has not synced.
   */
  isBehind(): boolean {
    return this.behindScopes.size > 0;
  }

  /** Calls `fn` whenever `isBehind()` changes (synchronous, must not throw); returns a function that unsubscribes. */
  onFreshness(fn: () => void): () => void {
    this.freshnessListeners.add(fn);
    return () => {
      this.freshnessListeners.delete(fn);
    };
  }

  /** Objects skipped because the transform or an indexer threw for them. */
  get droppedObjects(): number {
    return this.dropped;
  }

  private setBehind(ns: string | undefined, behind: boolean): void {
    const was = this.isBehind();
    if (behind) this.behindScopes.add(ns);
    else this.behindScopes.delete(ns);
    if (was === this.isBehind()) return;
    for (const fn of this.freshnessListeners) fn();
  }

  /** The caller's watcher options, for namespace scope `ns`, with hooks that also track `lastError` and freshness. */
  private watcherOptions(ns: string | undefined): WatcherOptions {
    const base = this.opts.watcher ?? {};
    const hooks = base.hooks ?? {};
    return {
      ...base,
      hooks: {
        ...hooks,
        onRestart: (reason, info) => {
          if (info.error !== undefined) this.error = info.error;
          hooks.onRestart?.(reason, info);
        },
        onList: (count, durationMs) => {
          this.error = undefined;
          hooks.onList?.(count, durationMs);
        },
        onBehind: (reason) => {
          // A scope that never synced is not behind: it is not read yet, and its sync is awaited anyway.
          if (this.synced.has(ns)) this.setBehind(ns, true);
          hooks.onBehind?.(reason);
        },
        onCaughtUp: () => {
          this.setBehind(ns, false);
          hooks.onCaughtUp?.();
        },
      },
    };
  }

  /** Applies one watcher event for namespace scope `ns` to the store, then notifies subscribers. */
  private apply(ns: string | undefined, ev: WatcherEvent<T>): void {
    switch (ev.type) {
      case 'page':
        if (ev.last) this.error = undefined;
        this.replacePage(ns, ev.objects, ev.first, ev.last);
        if (ev.last && !this.synced.has(ns)) {
          this.synced.add(ns);
          if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
        }
        return;
      case 'applied':
        this.error = undefined;
        this.isolated(ev.object, () => this.applyOne(this.transform(ev.object)));
        return;
      case 'deleted': {
        this.error = undefined;
        let obj: T | undefined;
        // Frozen like stored objects: subscribers share it.
        this.isolated(ev.object, () => (obj = deepFreeze(this.transform(ev.object))));
        // Removal needs no transform or indexer, so a bad object still leaves the cache.
        const old = this.store.remove(keyOf(ev.object));
        // The API's final state (deletionTimestamp, last status) is more useful than the cached one.
        const last = obj ?? old;
        if (last) this.emit({ type: 'delete', object: last });
        return;
      }
    }
  }

  private applyOne(obj: T): void {
    const key = keyOf(obj);
    const old = this.store.get(key);
    // Same resourceVersion means no change (a relist or replayed event): no store write, no update event.
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.store.upsert(obj);
    if (!old) this.emit({ type: 'add', object: obj });
    else if (old.metadata.uid && obj.metadata.uid && old.metadata.uid !== obj.metadata.uid) {
      // Deleted and re-created under the same name while we were not watching: another object, not
      // an update (a generation-based handler would see 1 → 1 and drop the creation).
      this.emit({ type: 'delete', object: old });
      this.emit({ type: 'add', object: obj });
    } else this.emit({ type: 'update', old, object: obj });
  }

  /**
   * Applies one page of a list for scope `ns`; the last page removes what no page of the list had.
   * Only the keys seen are kept between pages, never a second copy of the objects.
   */
  private replacePage(ns: string | undefined, objects: T[], first: boolean, last: boolean): void {
    let seen = this.listing.get(ns);
    if (first || !seen) this.listing.set(ns, (seen = new Set()));
    for (const raw of objects) {
      // A skipped object counts as seen: the store keeps its last good version rather than deleting it.
      seen.add(keyOf(raw));
      this.isolated(raw, () => this.applyOne(this.transform(raw)));
    }
    if (!last) return;
    this.listing.delete(ns);
    // Anything in this scope the list no longer has was deleted while we were not watching.
    const prefix = ns === undefined ? '' : `${ns}/`;
    for (const key of this.store.keys()) {
      if (seen.has(key) || !key.startsWith(prefix)) continue;
      const old = this.store.remove(key);
      if (old) this.emit({ type: 'delete', object: old });
    }
  }

  /**
   * Runs `fn` for one object; if the transform or an indexer throws, the object is reported and
   * skipped. Thrown on to the watcher, the error would replay the same event forever.
   */
  private isolated(raw: T, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.dropped++;
      this.opts.onObjectError?.(err, raw);
    }
  }

  private emit(change: WatchChange<T>): void {
    for (const fn of this.subscribers) this.deliver(fn, change);
  }

  private deliver(fn: (change: WatchChange<T>) => void, change: WatchChange<T>): void {
    try {
      fn(change);
    } catch (err) {
      // One faulty subscriber must not stop the store from tracking the cluster.
      this.opts.onSubscriberError?.(err, change);
    }
  }
}

/**
 * What a controller keeps of each object it caches: called on every object as received (after
 * `stripForCache`), it returns the object to store, for example with the fields the controller never
 * reads dropped. It must keep what the reconcile reads and, for owned children, every field
 * `applyChild` sets (the converged check compares them), or the child is applied again on every reconcile.
 */
export type CacheTransform = (obj: KubeObject) => KubeObject;

/** Which objects a shared informer covers; two requests with equal scopes share one informer. */
export interface CacheScope {
  namespaces?: string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Applied to every object before it is stored; watches with another transform (or none) get an informer of their own. */
  transform?: CacheTransform;
}

/** One watched kind and the scope it is watched in, as a controller declares it. */
export interface WatchScope {
  type: ResourceType;
  scope?: CacheScope;
}

/** The label selector (`k=v,k2=v2`) that caches only objects with all these labels; undefined for none. */
export function labelSelectorOf(labels: Record<string, string> | undefined): string | undefined {
  if (!labels) return undefined;
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Builds sources for a resource type and scope; the default goes through a KubeClient. */
export type TypedSourceFactory = (type: ResourceType, namespace: string | undefined, scope: CacheScope) => ListWatcher;

/** Options of a CacheSet. */
export interface CacheSetOptions {
  /** Namespaces used when `informerFor` is called without any (absent: all namespaces). */
  defaultNamespaces?: string[];
  /** Options passed to every informer's watchers. */
  watcher?: WatcherOptions;
  /** Per-type watcher options (e.g. hooks that label metrics by kind); overrides `watcher` when given. */
  watcherFor?(type: ResourceType): WatcherOptions;
  /** Called when a subscriber throws. */
  onSubscriberError?(err: unknown, type: ResourceType, change: WatchChange): void;
  /** Called when the transform or an indexer throws for an object, which is then skipped. */
  onObjectError?(err: unknown, type: ResourceType, obj: KubeObject): void;
}

/** The set of shared informers of a manager: one per (resource type, scope), started together. */
export class CacheSet {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly described = new Map<string, { type: ResourceType; scope: CacheScope }>();
  private readonly sourceFor: TypedSourceFactory;
  private signal: AbortSignal | undefined;
  private readonly runs: Promise<void>[] = [];
  /** A number per transform function, for the informer key: one informer per (type, scope, transform). */
  private readonly transformIds = new Map<CacheTransform, number>();

  constructor(
    clientOrFactory: KubeClient | TypedSourceFactory,
    private readonly opts: CacheSetOptions = {},
  ) {
    this.sourceFor =
      typeof clientOrFactory === 'function'
        ? clientOrFactory
        : (type, namespace, scope) =>
            clientListWatcher(clientOrFactory, type, { namespace, labelSelector: scope.labelSelector, fieldSelector: scope.fieldSelector });
  }

  /**
   * The shared informer of `type` for `scope`, created on first use and started at once if the set
   * runs. `indexes` names built-in indexes to register on it now rather than on first query.
   */
  informerFor<T extends KubeObject = KubeObject>(
    type: ResourceType,
    scope: CacheScope = {},
    opts: { indexes?: string[] } = {},
  ): Informer<T> {
    const namespaces = type.namespaced ? [...new Set(scope.namespaces ?? this.opts.defaultNamespaces ?? [])].sort() : [];
    const norm: CacheScope = { namespaces, labelSelector: scope.labelSelector ?? '', fieldSelector: scope.fieldSelector ?? '' };
    const transform = scope.transform;
    let transformId = '';
    if (transform) {
      if (!this.transformIds.has(transform)) this.transformIds.set(transform, this.transformIds.size + 1);
      transformId = `t${this.transformIds.get(transform)}`;
      norm.transform = transform;
    }
    const key = [type.group, type.version, type.plural, namespaces.join(','), norm.labelSelector, norm.fieldSelector, transformId].join(
      '|',
    );
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer<KubeObject>((ns) => this.sourceFor(type, ns, norm), {
        ...(transform ? { transform: (obj: KubeObject) => transform(stripForCache(obj)) } : {}),
        namespaces,
        watcher: this.opts.watcherFor?.(type) ?? this.opts.watcher,
        name: type.group ? `${type.plural}.${type.group}` : type.plural,
        onSubscriberError: (err, change) => this.opts.onSubscriberError?.(err, type, change),
        onObjectError: (err, obj) => this.opts.onObjectError?.(err, type, obj),
      });
      this.informers.set(key, inf);
      this.described.set(key, { type, scope: norm });
      if (this.signal) this.runs.push(inf.start(this.signal));
    }
    for (const name of opts.indexes ?? []) inf.store.ensureIndex(name);
    return inf as unknown as Informer<T>;
  }

  /**
   * A reader over the informers of exactly these watches (created if needed): give each controller
   * the watches it declared, so its reads come from its own scopes. `reader` names it in errors.
   */
  reader(watches: readonly WatchScope[], reader?: string): CacheReader {
    return cacheReader(
      watches.map((w) => ({ type: w.type, informer: this.informerFor(w.type, w.scope) })),
      reader,
    );
  }

  /** Starts every informer, and any created later; resolves when `signal` fires and all have stopped. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.signal) throw new CacheStartedError('CacheSet.start was called twice; start it once per manager');
    this.signal = signal;
    for (const inf of this.informers.values()) this.runs.push(inf.start(signal));
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // Informers created during the run appended themselves; wait for every one.
    await Promise.all(this.runs);
  }

  /** Resolves true once every informer created so far has synced, false if `signal` fires first. */
  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const results = await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
    return results.every((r) => r);
  }

  /** Whether every informer created so far has synced. */
  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  /** Every informer created so far with the type and scope it serves, for diagnostics and metrics. */
  entries(): { type: ResourceType; scope: CacheScope; informer: Informer<KubeObject> }[] {
    return [...this.informers].map(([key, informer]) => ({ ...this.described.get(key)!, informer }));
  }
}

/** `CacheSet.start` was called more than once. */
export class CacheStartedError extends bosunError('BOSUN_CACHE_STARTED') {
  override readonly name = 'CacheStartedError';
}
