import type { KubeClient } from '../client/client.js';
import { isNotFound } from '../client/errors.js';
import { apiVersionOf, type KubeObject, type ResourceType } from '../client/types.js';
import type { Logger } from '../log/logger.js';
import { setCondition, type ConditionInput } from '../status/conditions.js';
import { jsonContains, jsonSubsetEqual } from '../status/equal.js';
import type { Condition } from '../crd/conditions.js';
import { controllerRef, isControlledBy } from './owner.js';

/**
 * Read access to the shared caches; reconcilers read here, never from the API server.
 * The object type comes from the handle: `get(Pod, ns, name)` is a `Pod | undefined`.
 */
export interface CacheReader {
  /** The cached object, or undefined when it does not exist (or is not watched). */
  get<T extends KubeObject>(type: ResourceType<T>, namespace: string | undefined, name: string): T | undefined;
  /** Cached objects of a type, optionally in one namespace and with all given labels. */
  list<T extends KubeObject>(type: ResourceType<T>, opts?: { namespace?: string; labels?: Record<string, string> }): T[];
  /** Cached objects of a type whose controller owner is `owner`. */
  ownedBy<T extends KubeObject>(type: ResourceType<T>, owner: KubeObject): T[];
}

/** Records Kubernetes Events about objects; best effort, never throws. */
export interface EventSink {
  normal(obj: KubeObject, reason: string, message: string): void;
  warning(obj: KubeObject, reason: string, message: string): void;
}

/** Status fields a reconciler may set with the standard ones filled in. */
export interface StatusUpdate {
  /** Fields to set on status (others are left as they are). */
  fields?: Record<string, unknown>;
  /** Conditions to set (by type); transition times are kept when the status does not change. */
  conditions?: ConditionInput[];
}

/**
 * What a reconcile gets: the cache to read, the client to write, a logger and an event sink
 * bound to the object, and helpers for the writes every operator makes.
 */
export class ReconcileContext {
  constructor(
    /** The controller's name. */
    readonly controller: string,
    /** The API client, for writes. */
    readonly client: KubeClient,
    /** The shared caches, for reads. */
    readonly cache: CacheReader,
    /** A logger carrying the object's namespace and name. */
    readonly log: Logger,
    /** Kubernetes Events. */
    readonly events: EventSink,
    /** The server-side-apply field manager of this operator. */
    readonly fieldManager: string,
    /** Aborted when the manager shuts down. */
    readonly signal: AbortSignal,
  ) {}

  /**
   * Creates or updates a child with server-side apply under this operator's field manager,
   * controller-owned by `owner` so it is garbage-collected with it.
   */
  async applyOwned<T extends KubeObject>(childType: ResourceType, ownerType: ResourceType, owner: KubeObject, child: KubeObject): Promise<T> {
    const desired: KubeObject = {
      ...child,
      apiVersion: apiVersionOf(childType),
      kind: childType.kind,
      metadata: {
        ...child.metadata,
        namespace: childType.namespaced ? (child.metadata.namespace ?? owner.metadata.namespace) : undefined,
        ownerReferences: [controllerRef(ownerType, owner)],
      },
    };
    return this.client.apply<T>(childType, desired, { fieldManager: this.fieldManager, force: true });
  }

  /**
   * Makes a child match `desired`, writing only when it must: when the cached child is missing,
   * not controlled by `owner`, or lacks any field `desired` sets (a hand edit, an older version).
   * Returns true when it wrote. Converged children cost no request, so restarts make no writes.
   */
  async ensureOwned(childType: ResourceType, ownerType: ResourceType, owner: KubeObject, desired: KubeObject): Promise<boolean> {
    const namespace = childType.namespaced ? (desired.metadata.namespace ?? owner.metadata.namespace) : undefined;
    const current = this.cache.get(childType, namespace, desired.metadata.name ?? '');
    if (current && isControlledBy(current, owner) && jsonContains({ ...desired, metadata: { labels: desired.metadata.labels, annotations: desired.metadata.annotations } }, current)) {
      return false;
    }
    await this.applyOwned(childType, ownerType, owner, desired);
    return true;
  }

  /** Deletes an object; an object already gone is success (deletes are idempotent). */
  async deleteIfExists(type: ResourceType, obj: KubeObject, opts: { preconditionUid?: boolean } = {}): Promise<void> {
    try {
      await this.client.delete(type, obj.metadata.namespace, obj.metadata.name ?? '', {
        ...(opts.preconditionUid && obj.metadata.uid ? { preconditions: { uid: obj.metadata.uid } } : {}),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Writes status through the status subresource: the given fields, conditions and
   * `observedGeneration`. Skips the write when the cached status already says the same, so a
   * converged object costs nothing to reconcile again.
   */
  async updateStatus(type: ResourceType, obj: KubeObject, update: StatusUpdate): Promise<boolean> {
    const have = (obj.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
    const generation = obj.metadata.generation;
    let conditions = have.conditions;
    for (const c of update.conditions ?? []) conditions = setCondition(conditions, c, generation);
    const want: Record<string, unknown> = { ...update.fields, observedGeneration: generation, ...(update.conditions?.length ? { conditions } : {}) };
    if (jsonSubsetEqual(want, have)) return false;
    // A merge patch of the changed fields: a whole-status replace would need the latest resourceVersion.
    await this.client.patch(type, obj.metadata.namespace, obj.metadata.name ?? '', { status: want }, 'merge', {
      subresource: 'status',
      fieldManager: this.fieldManager,
    });
    return true;
  }
}
