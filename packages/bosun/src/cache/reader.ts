import { type KubeObject, type ResourceType, keyOf } from '../client/types.js';
import type { Informer } from './informer.js';
import { CONTROLLER_INDEX, LABEL_INDEX, NAMESPACE_INDEX } from './store.js';
import { bosunError } from '../errors.js';

/** Read access to the shared caches; reconcilers read here (`ctx.cache`), never from the API server. */
export interface CacheReader {
  /** The cached object, or undefined when it does not exist (or is not in the watched scope). */
  get<T extends KubeObject>(type: ResourceType<T>, namespace: string | undefined, name: string): T | undefined;
  /** Cached objects of a type, optionally in one namespace and with all given labels. */
  list<T extends KubeObject>(type: ResourceType<T>, opts?: { namespace?: string; labels?: Record<string, string> }): T[];
  /** Cached objects of a type whose controller owner is `owner`. */
  ownedBy<T extends KubeObject>(type: ResourceType<T>, owner: KubeObject): T[];
}

/** One informer a reader reads from, with the type it caches. */
export interface ReadSource {
  type: ResourceType;
  informer: Informer;
}

/** A reader was asked for a kind none of its watches caches. */
export class NotCachedError extends bosunError('BOSUN_NOT_CACHED') {
  override readonly name = 'NotCachedError';
}

/** The key kinds are matched by: a group and kind, whatever the version and however the handle was made. */
export function kindKey(type: Pick<ResourceType, 'group' | 'kind'>): string {
  return `${type.group}/${type.kind}`;
}

/**
 * A reader over exactly `sources`: a controller's reader gets the informers its own watches declared,
 * so its reads never land in another controller's label-filtered or namespace-limited cache. When
 * several informers cache one kind (two scopes), reads see their union. `reader` names who reads,
 * for errors. Indexes the queries need (controller owner, namespace, label) are built on first use.
 */
export function cacheReader(sources: readonly ReadSource[], reader = 'this reader'): CacheReader {
  const byKind = new Map<string, Informer[]>();
  for (const { type, informer } of sources) {
    const list = byKind.get(kindKey(type)) ?? [];
    if (!list.includes(informer)) list.push(informer);
    byKind.set(kindKey(type), list);
  }
  const informersOf = (type: ResourceType): Informer[] => {
    const found = byKind.get(kindKey(type));
    if (found) return found;
    const cached = [...new Set(sources.map((s) => s.type.kind))].join(', ') || 'none';
    throw new NotCachedError(
      `${type.kind} is not cached for ${reader}: it reads only the kinds it watches (${cached}); add .owns(${type.kind}) or .watches(${type.kind}, …) to the controller, or read it from the API with ctx.client`,
    );
  };
  const union = (parts: KubeObject[][]): KubeObject[] => {
    if (parts.length === 1) return parts[0]!;
    const seen = new Map<string, KubeObject>();
    for (const part of parts) for (const o of part) if (!seen.has(keyOf(o))) seen.set(keyOf(o), o);
    return [...seen.values()];
  };
  const listOne = (inf: Informer, namespace: string | undefined, labels: [string, string][]): KubeObject[] => {
    const store = inf.store;
    let items: KubeObject[];
    if (namespace !== undefined && inf.namespaces.length !== 1) {
      store.ensureIndex(NAMESPACE_INDEX);
      items = store.byIndex(NAMESPACE_INDEX, namespace);
    } else if (namespace !== undefined) {
      items = inf.namespaces[0] === namespace ? store.list() : [];
    } else if (labels.length > 0) {
      store.ensureIndex(LABEL_INDEX);
      items = store.byIndex(LABEL_INDEX, `${labels[0]![0]}=${labels[0]![1]}`);
    } else items = store.list();
    return labels.length ? items.filter((x) => labels.every(([k, v]) => x.metadata.labels?.[k] === v)) : items;
  };
  return {
    get: <T extends KubeObject>(type: ResourceType<T>, namespace: string | undefined, name: string): T | undefined => {
      const key = namespace ? `${namespace}/${name}` : name;
      for (const inf of informersOf(type)) {
        const obj = inf.store.get(key);
        if (obj) return obj as T;
      }
      return undefined;
    },
    list: <T extends KubeObject>(type: ResourceType<T>, o: { namespace?: string; labels?: Record<string, string> } = {}): T[] => {
      const labels = Object.entries(o.labels ?? {});
      return union(informersOf(type).map((inf) => listOne(inf, o.namespace, labels))) as T[];
    },
    ownedBy: <T extends KubeObject>(type: ResourceType<T>, owner: KubeObject): T[] => {
      const uid = owner.metadata.uid;
      const informers = informersOf(type);
      if (!uid) return [];
      return union(
        informers.map((inf) => {
          inf.store.ensureIndex(CONTROLLER_INDEX);
          return inf.store.byIndex(CONTROLLER_INDEX, uid);
        }),
      ) as T[];
    },
  };
}
