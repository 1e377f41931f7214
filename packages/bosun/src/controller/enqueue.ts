import type { KubeObject, ResourceType } from '../client/types.js';
import type { WatchChange } from '../cache/change.js';
import { requestFor, type Request } from './request.js';

/** Turns a change of a watched object into the requests (queue keys) it should cause. */
export type EnqueueFn = (change: WatchChange) => Request[];

/** Enqueues the changed object itself: what `for(kind)` uses. */
export function enqueueObject(): EnqueueFn {
  return (c) => [requestFor(c.object)];
}

/**
 * Enqueues the controller owner of the changed object when it is of `owner`'s group and kind:
 * what `owns(kind)` uses, so a change to a Pod wakes the Message that owns it. On an update the
 * owner before the change is enqueued too, so a child whose controller reference moved also
 * wakes the owner it left.
 */
export function enqueueOwner(owner: ResourceType): EnqueueFn {
  const ownerOf = (obj: KubeObject): Request[] => {
    const ref = obj.metadata.ownerReferences?.find((r) => r.controller === true);
    if (!ref || ref.kind !== owner.kind || groupOf(ref.apiVersion) !== owner.group) return [];
    const namespace = owner.namespaced ? obj.metadata.namespace : undefined;
    return [requestFor({ metadata: { namespace, name: ref.name } })];
  };
  return (c) => (c.type === 'update' ? union(ownerOf(c.old), ownerOf(c.object)) : ownerOf(c.object));
}

/**
 * Enqueues whatever `map` returns for the changed object: what `watches(kind, map)` uses. On an
 * update `map` sees the object before and after the change, so a label edit that re-targets
 * the mapping wakes the object it no longer points at as well as the new one.
 */
export function enqueueMapped<T extends KubeObject>(map: (obj: T) => Request[] | { namespace?: string; name: string }[]): EnqueueFn {
  const mapped = (obj: KubeObject): Request[] => map(obj as T).map((r) => ('key' in r ? (r as Request) : requestFor({ metadata: r })));
  return (c) => (c.type === 'update' ? union(mapped(c.old), mapped(c.object)) : mapped(c.object));
}

// One request per key: the queue would merge duplicates anyway, but a mapper's side effects and
// the enqueue count should not depend on that.
function union(a: Request[], b: Request[]): Request[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const seen = new Set<string>();
  const out: Request[] = [];
  for (const r of [...a, ...b]) {
    if (seen.has(r.key)) continue;
    seen.add(r.key);
    out.push(r);
  }
  return out;
}

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}
