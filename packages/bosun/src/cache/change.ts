import type { KubeObject } from '../client/types.js';

/**
 * One change to a cached object, the single type that flows from an informer through predicates
 * and mappers to a controller's queue. Emitted after the store holds the new state; the objects
 * are the cache's frozen instances.
 */
export type WatchChange<T extends KubeObject = KubeObject> =
  /** A new object (also the replay of cached objects to a late subscriber). */
  | { type: 'add'; object: T }
  /** An object changed: its resourceVersion differs from the cached `old`. */
  | { type: 'update'; old: T; object: T }
  /** An object was deleted, or vanished between two lists; `object` is its last known state. */
  | { type: 'delete'; object: T };
