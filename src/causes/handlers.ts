/**
 * The kopf style on the bosun core: `onCreate`, `onUpdate` (optionally for one field), `onDelete`,
 * `onResume` and `onOwned` handlers, run by the same controller, queue and cache as a reconcile
 * function. The cause of each run is found by comparing the object with the "diff base", the
 * essence of the object last handled, kept in an annotation on the object (as kopf does).
 */
import { createHash } from 'node:crypto';
import type { KubeObject, ResourceType } from '../client/types.js';
import { controller, type ControllerSpec, type Reconciler, type SecondaryWatch } from '../controller/builder.js';
import type { ReconcileContext } from '../controller/context.js';
import { withFinalizer } from '../finalizer/finalizer.js';
import type { Logger } from '../log/logger.js';
import { generationChanged } from '../predicate/predicate.js';
import { requestFor, type Request } from '../reconcile/types.js';

/** The annotation holding the diff base. */
export const DIFF_BASE_ANNOTATION = 'bosun.dev/last-handled-configuration';
/**
 * Largest diff base stored whole. Annotations of one object share 256 KiB; above this the base
 * is stored as a hash only, and update handlers run without a field-level diff.
 */
export const MAX_DIFF_BASE_BYTES = 64 * 1024;

/** What every handler receives. */
export interface HandlerArgs<T extends KubeObject> {
  /** The object as cached now. */
  obj: T;
  /** Its spec. */
  spec: T['spec'];
  name: string;
  namespace: string | undefined;
  /** A logger carrying the object's namespace and name. */
  log: Logger;
  /** Cache, client, events and write helpers. */
  ctx: ReconcileContext;
}

/** What update handlers receive besides the common arguments. */
export interface UpdateArgs<T extends KubeObject> extends HandlerArgs<T> {
  /** The spec last handled, or undefined when the base was too large to keep whole. */
  old: unknown;
  /** The spec now. */
  new: unknown;
}

/** What owned-object handlers receive. */
export interface OwnedArgs<T extends KubeObject, C extends KubeObject> extends HandlerArgs<T> {
  /** The child as cached now, or undefined when it was deleted. */
  child: C | undefined;
  /** The child's name (useful when it was deleted). */
  childName: string;
}

/** A handler; throw PermanentError for failures retrying cannot fix, anything else is retried with backoff. */
export type Handler<A> = (args: A) => Promise<void> | void;

interface UpdateHandler<T extends KubeObject> {
  field?: string;
  fn: Handler<UpdateArgs<T>>;
}

interface OwnedHandler<T extends KubeObject> {
  type: ResourceType;
  labels?: Record<string, string>;
  fn: Handler<OwnedArgs<T, KubeObject>>;
}

interface DiffBase {
  /** The spec last handled, when small enough. */
  spec?: unknown;
  /** sha256 of the spec's JSON. */
  hash: string;
}

function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function readBase(obj: KubeObject): DiffBase | undefined {
  const raw = obj.metadata.annotations?.[DIFF_BASE_ANNOTATION];
  if (!raw) return undefined;
  try {
    const b = JSON.parse(raw) as DiffBase;
    return typeof b.hash === 'string' ? b : undefined;
  } catch {
    return undefined;
  }
}

/** Declares kopf-style handlers for one resource type; `build()` gives a controller the manager runs. */
export class HandlersBuilder<T extends KubeObject> {
  private readonly create: Handler<HandlerArgs<T>>[] = [];
  private readonly update: UpdateHandler<T>[] = [];
  private readonly del: Handler<HandlerArgs<T>>[] = [];
  private readonly resume: Handler<HandlerArgs<T>>[] = [];
  private readonly owned: OwnedHandler<T>[] = [];
  private workerCount: number | undefined;

  constructor(
    private readonly name: string,
    private readonly type: ResourceType<T>,
  ) {}

  /** Runs when an object is seen for the first time (no diff base yet). */
  onCreate(fn: Handler<HandlerArgs<T>>): this {
    this.create.push(fn);
    return this;
  }

  /** Runs when the spec changed since last handled; with `field`, only when that dotted path changed. */
  onUpdate(fnOrOpts: Handler<UpdateArgs<T>> | { field: string }, maybeFn?: Handler<UpdateArgs<T>>): this {
    if (typeof fnOrOpts === 'function') this.update.push({ fn: fnOrOpts });
    else if (maybeFn) this.update.push({ field: fnOrOpts.field, fn: maybeFn });
    return this;
  }

  /** Runs when the object is being deleted; a finalizer keeps it until the handlers succeed. */
  onDelete(fn: Handler<HandlerArgs<T>>): this {
    this.del.push(fn);
    return this;
  }

  /** Runs for every existing, already-handled object when the operator starts. */
  onResume(fn: Handler<HandlerArgs<T>>): this {
    this.resume.push(fn);
    return this;
  }

  /** Runs when a child of `type` controlled by an object changes or is deleted. */
  onOwned<C extends KubeObject>(type: ResourceType<C>, fn: Handler<OwnedArgs<T, C>>, opts: { labels?: Record<string, string> } = {}): this {
    this.owned.push({ type, labels: opts.labels, fn: fn as Handler<OwnedArgs<T, KubeObject>> });
    return this;
  }

  /** Concurrent objects handled at once (never two for one object). */
  workers(n: number): this {
    this.workerCount = n;
    return this;
  }

  /** The controller that runs these handlers. */
  build(): ControllerSpec {
    const first = this.instance();
    const b = controller(this.name).for(this.type, { predicates: [generationChanged()] });
    if (this.workerCount !== undefined) b.workers(this.workerCount);
    for (const w of first.watches) b.watches(w.type, w.map!, { labels: w.labels, predicates: w.predicates });
    return { ...b.reconcile(first.reconcile), instantiate: () => this.instance() };
  }

  // Each manager gets its own diff-base memory and pending-children map.
  private instance(): { reconcile: Reconciler; watches: SecondaryWatch[] } {
    const type = this.type;
    const finalizer = `bosun.dev/${this.name}`;
    // Diff-base hashes written by this process, by key (with the uid, since a name can be reused):
    // the cache may lag behind our own annotation patch. Entries go when the object goes.
    const handled = new Map<string, { uid: string; hash: string }>();
    // Objects seen since this process started, by key: the first sight of a handled object is a resume.
    const seen = new Map<string, string>();
    // Children that changed since their owner was last handled, by owner key (events turned into levels).
    const changedChildren = new Map<string, Map<string, { type: ResourceType; handler: OwnedHandler<T> }>>();

    const watches: SecondaryWatch[] = this.owned.map((h) => ({
      type: h.type,
      labels: h.labels,
      predicates: [],
      map: (child: KubeObject) => {
          const ref = child.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === type.kind);
          if (!ref) return [];
          const owner = { namespace: type.namespaced ? child.metadata.namespace : undefined, name: ref.name };
          const key = requestFor({ metadata: owner }).key;
          let m = changedChildren.get(key);
          if (!m) changedChildren.set(key, (m = new Map()));
          m.set(`${h.type.plural}/${child.metadata.namespace ?? ''}/${child.metadata.name ?? ''}`, { type: h.type, handler: h });
          return [owner];
      },
    }));

    const run = async (req: Request, ctx: ReconcileContext): Promise<void> => {
      const obj = ctx.cache.get<T>(type, req.namespace, req.name);
      if (!obj) {
        changedChildren.delete(req.key);
        handled.delete(req.key);
        seen.delete(req.key);
        return;
      }
      const args = (o: T): HandlerArgs<T> => ({ obj: o, spec: o.spec, name: req.name, namespace: req.namespace, log: ctx.log, ctx });

      if (obj.metadata.deletionTimestamp) changedChildren.delete(req.key);
      if (this.del.length > 0) {
        await withFinalizer(ctx, type, obj, finalizer, {
          apply: (live) => handleLive(live, req, ctx),
          cleanup: async (deleted) => {
            for (const fn of this.del) await fn(args(deleted));
          },
        });
        return;
      }
      if (!obj.metadata.deletionTimestamp) await handleLive(obj, req, ctx);
    };

    const handleLive = async (obj: T, req: Request, ctx: ReconcileContext): Promise<void> => {
      const uid = obj.metadata.uid ?? '';
      const args = (o: T): HandlerArgs<T> => ({ obj: o, spec: o.spec, name: req.name, namespace: req.namespace, log: ctx.log, ctx });
      const specJson = stableJson(obj.spec ?? null);
      const hash = createHash('sha256').update(specJson).digest('hex');
      const base = readBase(obj);
      const mine = handled.get(req.key);
      const baseHash = (mine?.uid === uid ? mine.hash : undefined) ?? base?.hash;
      const firstSight = seen.get(req.key) !== uid;
      seen.set(req.key, uid);

      if (baseHash === undefined) {
        for (const fn of this.create) await fn(args(obj));
      } else if (baseHash !== hash) {
        const old = base?.hash === baseHash ? base.spec : undefined;
        for (const h of this.update) {
          // Without the old spec (size-guarded base) a field filter cannot be evaluated: run the handler.
          if (h.field && old !== undefined && stableJson(getPath({ spec: old }, h.field)) === stableJson(getPath(obj, h.field))) continue;
          await h.fn({ ...args(obj), old, new: obj.spec });
        }
      } else if (firstSight) {
        for (const fn of this.resume) await fn(args(obj));
      }

      const children = changedChildren.get(req.key);
      if (children) {
        changedChildren.delete(req.key);
        for (const [id, { type: childType, handler }] of children) {
          const childName = id.slice(id.lastIndexOf('/') + 1);
          const child = ctx.cache.get(childType, childType.namespaced ? req.namespace : undefined, childName);
          const owned = child && child.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === uid) ? child : undefined;
          try {
            await handler.fn({ ...args(obj), child: owned, childName });
          } catch (err) {
            // Keep the child pending so the retry runs its handler again.
            const again = changedChildren.get(req.key) ?? new Map();
            again.set(id, { type: childType, handler });
            changedChildren.set(req.key, again);
            throw err;
          }
        }
      }

      if (baseHash !== hash) {
        const stored: DiffBase = specJson.length <= MAX_DIFF_BASE_BYTES ? { spec: JSON.parse(specJson), hash } : { hash };
        if (!stored.spec) ctx.log.warn({ bytes: specJson.length }, 'spec too large for a whole diff base; keeping its hash only');
        await ctx.client.patch(type, obj.metadata.namespace, req.name, { metadata: { annotations: { [DIFF_BASE_ANNOTATION]: JSON.stringify(stored) } } }, 'merge', {
          fieldManager: ctx.fieldManager,
        });
        handled.set(req.key, { uid, hash });
      }
    };
    return { reconcile: async (req, ctx) => run(req, ctx), watches };
  }
}

/** Starts declaring kopf-style handlers named `name` for `type`. */
export function handlers<T extends KubeObject>(name: string, type: ResourceType<T>): HandlersBuilder<T> {
  return new HandlersBuilder<T>(name, type);
}
