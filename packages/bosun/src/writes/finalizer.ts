/**
 * Finalizers as one combinator, in the spirit of kube-rs's `finalizer(api, name, obj, apply | cleanup)`.
 *
 * The finalizer is written with server-side apply of `metadata.finalizers` alone, under a field
 * manager of its own (derived from the controller's and the finalizer's name). `finalizers` is a
 * set list, so each manager owns only its own entry: an add or a remove needs no precondition on
 * the rest of the list and cannot lose a race with another writer adding or removing theirs, and
 * the apply entry holds nothing else of the controller that removing the finalizer could drop.
 * `metadata.uid` in the apply body keeps an object that was deleted (or deleted and re-created)
 * since it was read from being created or touched: the API server refuses it, and the refusal is
 * reported as a 409 conflict so the controller retries quietly from a fresh cache.
 */
import { createHash } from 'node:crypto';
import type { KubeClient } from '../client/client.js';
import { ApiError } from '../client/errors.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import { bosunError } from '../errors.js';

/** The write access `withFinalizer` needs; a ReconcileContext fits. */
export interface FinalizerContext {
  /** The client the finalizer is written through. */
  readonly client: KubeClient;
  /** The controller's field manager; the finalizer's own manager is derived from it. */
  readonly fieldManager: string;
  /** Aborts the finalizer writes (shutdown, lost leadership). */
  readonly signal?: AbortSignal;
  /** Told of each finalizer write (the version it was made from, what it returned), so later reconciles wait until the cache shows it. */
  wrote?(base: KubeObject, written: KubeObject | undefined): void;
}

/** What `withFinalizer` runs: `apply` for a live object, `cleanup` for one being deleted. */
export interface FinalizerHandlers<T extends KubeObject, R> {
  /** Reconciles a live object; runs only once the finalizer is on it. */
  apply(obj: T): Promise<R> | R;
  /**
   * Releases what the object holds outside the cluster. The finalizer is removed once it returns;
   * throw (a TemporaryError to choose the delay) to keep the object and retry.
   */
  cleanup(obj: T): Promise<void> | void;
}

/** Whether the object carries the finalizer. */
export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/**
 * Runs `apply` or `cleanup` for `obj` with `finalizer` guarding its deletion: on a live object it
 * adds the finalizer first (so nothing `apply` creates can outlive the object) and returns what
 * `apply` returns; on an object being deleted it runs `cleanup` and removes the finalizer only
 * after `cleanup` succeeded. A deleted object without the finalizer needs nothing: undefined.
 */
export async function withFinalizer<T extends KubeObject, R>(
  ctx: FinalizerContext,
  type: ResourceType<T>,
  obj: T,
  finalizer: string,
  handlers: FinalizerHandlers<T, R>,
): Promise<R | undefined> {
  if (obj.metadata.deletionTimestamp) {
    if (!hasFinalizer(obj, finalizer)) return undefined;
    await handlers.cleanup(obj);
    await removeFinalizer(ctx, type, obj, finalizer);
    return undefined;
  }
  const live = hasFinalizer(obj, finalizer) ? obj : await addFinalizer(ctx, type, obj, finalizer);
  return handlers.apply(live);
}

/** Adds `finalizer` to the object (a no-op when it is there); returns the object as written. */
async function addFinalizer<T extends KubeObject>(ctx: FinalizerContext, type: ResourceType<T>, obj: T, finalizer: string): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  return applyFinalizers<T>(ctx, type, obj, finalizer, [finalizer]);
}

/**
 * Removes `finalizer`; the API server then completes a pending deletion. Applying without the
 * entry drops it when this finalizer's manager is its only owner. When another manager co-owns
 * it (an Update wrote the whole list: kubectl edit, or a finalizer added before bosun 0.2 or under
 * another field manager), the apply leaves it, and a merge patch of the list guarded by the
 * resourceVersion just returned removes it; a 409 there is a real race and is retried.
 */
async function removeFinalizer<T extends KubeObject>(ctx: FinalizerContext, type: ResourceType<T>, obj: T, finalizer: string): Promise<T> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  const after = await applyFinalizers<T>(ctx, type, obj, finalizer, []);
  if (!hasFinalizer(after, finalizer)) return after;
  const rest = (after.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  const patched = await ctx.client.patch<T>(
    type,
    after.metadata.namespace,
    after.metadata.name ?? '',
    { metadata: { resourceVersion: after.metadata.resourceVersion, finalizers: rest.length ? rest : null } },
    'merge',
    { fieldManager: ctx.fieldManager, signal: ctx.signal },
  );
  ctx.wrote?.(after, patched);
  return patched;
}

async function applyFinalizers<T extends KubeObject>(
  ctx: FinalizerContext,
  type: ResourceType<T>,
  obj: T,
  finalizer: string,
  finalizers: string[],
): Promise<T> {
  const { namespace, name, uid } = obj.metadata;
  if (!name || !uid)
    throw new FinalizerTargetError(
      `cannot write finalizer ${finalizer} on ${type.kind} ${namespace ? `${namespace}/` : ''}${name ?? '(unnamed)'}: metadata.name and metadata.uid are required; pass the object as read from the cache or the API`,
    );
  const body: KubeObject = { metadata: { name, namespace, uid, ...(finalizers.length ? { finalizers } : {}) } };
  try {
    const written = await ctx.client.apply<T>(type, body, {
      fieldManager: finalizerManager(ctx.fieldManager, finalizer),
      signal: ctx.signal,
    });
    ctx.wrote?.(obj, written);
    return written;
  } catch (err) {
    throw asConflict(err, type, obj, finalizer);
  }
}

/** Raised when `withFinalizer` is given an object that does not name itself fully. */
export class FinalizerTargetError extends bosunError('BOSUN_FINALIZER_TARGET') {
  override name = 'FinalizerTargetError';
}

// Field managers are at most 128 characters; a long finalizer name keeps a readable prefix and a hash.
const MAX_MANAGER = 128;

// The field manager that owns `finalizer`'s entry in `metadata.finalizers`: one per controller and finalizer.
function finalizerManager(fieldManager: string, finalizer: string): string {
  const full = `${fieldManager}/${finalizer}`;
  if (full.length <= MAX_MANAGER) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 16);
  return `${full.slice(0, MAX_MANAGER - hash.length - 1)}-${hash}`;
}

/**
 * Turns the API server's refusals that mean "the cached copy was stale" into a 409 conflict: the
 * object was deleted and re-created (the uid no longer matches: 422 on metadata.uid), or it began
 * deleting (no new finalizer may be added: 422 Forbidden on metadata.finalizers). An object gone
 * altogether is already a 409 (uid mismatch).
 */
function asConflict(err: unknown, type: ResourceType, obj: KubeObject, finalizer: string): unknown {
  if (!(err instanceof ApiError) || err.status !== 422) return err;
  const causes = err.body?.details?.causes ?? [];
  const replaced = causes.some((c) => c.field === 'metadata.uid');
  const deleting = causes.some((c) => c.field === 'metadata.finalizers' && c.reason === 'FieldValueForbidden');
  if (!replaced && !deleting) return err;
  const what = replaced ? 'was deleted and re-created since it was read' : 'started deleting since it was read';
  const conflict = new ApiError(err.target, 409, {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    reason: 'Conflict',
    code: 409,
    message: `${type.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name ?? ''} ${what}, so finalizer ${finalizer} was not written; retry from a fresh read (${err.body?.message ?? err.message})`,
    details: err.body?.details,
  });
  return conflict;
}
