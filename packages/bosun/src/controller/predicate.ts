import type { KubeObject } from '../client/types.js';
import type { WatchChange } from '../cache/change.js';

export type { WatchChange } from '../cache/change.js';

/** Decides whether a change should enqueue work; all predicates of a watch must agree. */
export type Predicate<T extends KubeObject = KubeObject> = (change: WatchChange<T>) => boolean;

/**
 * Passes adds, deletes and updates that changed `metadata.generation` (spec changes, when the
 * status subresource is on) or started a deletion, so a controller's own status writes do not
 * wake it again.
 */
export function generationChanged<T extends KubeObject>(): Predicate<T> {
  return (c) =>
    c.type !== 'update' ||
    c.old.metadata.generation !== c.object.metadata.generation ||
    (c.object.metadata.deletionTimestamp !== undefined && c.old.metadata.deletionTimestamp === undefined);
}

/** Passes objects whose labels include every given key=value pair. */
export function hasLabels<T extends KubeObject>(labels: Record<string, string>): Predicate<T> {
  const entries = Object.entries(labels);
  return (c) => entries.every(([k, v]) => c.object.metadata.labels?.[k] === v);
}

/** Passes changes that `fn` accepts: the escape hatch for anything else. */
export function custom<T extends KubeObject>(fn: (change: WatchChange<T>) => boolean): Predicate<T> {
  return fn;
}
