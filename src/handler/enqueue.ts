import type { KubeObject, ResourceType } from '../client/types.js';
import type { WatchChange } from '../predicate/predicate.js';
import { requestFor, type Request } from '../reconcile/types.js';

/** Turns a change of a watched object into the requests it should cause. */
export type EventHandler = (change: WatchChange) => Request[];

/** Enqueues the changed object itself: what `for(kind)` uses. */
export function enqueueObject(): EventHandler {
  return (c) => [requestFor(c.object)];
}

/**
 * Enqueues the controller owner of the changed object when it is of `owner`'s group and kind:
 * what `owns(kind)` uses, so a change to a Pod wakes the Message that owns it.
 */
export function enqueueOwner(owner: ResourceType): EventHandler {
  return (c) => {
    const ref = c.object.metadata.ownerReferences?.find((r) => r.controller === true);
    if (!ref || ref.kind !== owner.kind || groupOf(ref.apiVersion) !== owner.group) return [];
    const namespace = owner.namespaced ? c.object.metadata.namespace : undefined;
    return [requestFor({ metadata: { namespace, name: ref.name } })];
  };
}

/** Enqueues whatever `map` returns for the changed object: what `watches(kind, map)` uses. */
export function enqueueMapped<T extends KubeObject>(map: (obj: T) => Request[] | { namespace?: string; name: string }[]): EventHandler {
  return (c) => map(c.object as T).map((r) => ('key' in r ? (r as Request) : requestFor({ metadata: r })));
}

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}
