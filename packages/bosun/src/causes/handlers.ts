/**
 * The kopf style on the bosun core: `onCreate`, `onUpdate` (optionally for one field), `onDelete`,
 * `onResume` and `onOwned` handlers, run by the same controller, queue and cache as a reconcile
 * function. Three parts: the cause detector (./cause.ts, pure), the execution with per-handler
 * progress (./execute.ts), and the diff base and progress kept on the object (./diffbase.ts);
 * this file declares handlers and wires the three together.
 */
import { randomBytes } from 'node:crypto';
import type { KubeObject, ResourceType } from '../client/types.js';
import { controller, type ControllerSpec, type Reconciler } from '../controller/builder.js';
import type { ReconcileContext } from '../writes/context.js';
import { withFinalizer } from '../writes/finalizer.js';
import type { Logger } from '../telemetry/logger.js';
import type { Predicate } from '../controller/predicate.js';
import type { Request } from '../controller/request.js';
import { detectCause, essenceChanged, fieldChanged, type DiffBase, type Essence } from './cause.js';
import { encodeDiffBase, persist, readDiffBase, readProgress, type Progress } from './diffbase.js';
import { executeCause, type HandlerStep } from './execute.js';

export { DIFF_BASE_ANNOTATION, MAX_DIFF_BASE_BYTES, PROGRESS_ANNOTATION } from './diffbase.js';

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
  /**
   * The essence last handled (the object without apiVersion, kind, metadata and status: `{ spec }`
   * for a custom resource, `{ data }` for a ConfigMap), or undefined when it was too large to keep.
   */
  old: Essence | undefined;
  /** The essence now. */
  new: Essence;
}

/** What owned-object handlers receive. */
export interface OwnedArgs<T extends KubeObject, C extends KubeObject> extends HandlerArgs<T> {
  /** The child as cached now, or undefined when it was deleted (or is no longer controlled by the object). */
  child: C | undefined;
  /** The child's name (useful when it was deleted). */
  childName: string;
  /** The child's namespace; undefined for a cluster-scoped child. */
  childNamespace: string | undefined;
}

/** A handler; throw PermanentError for failures retrying cannot fix, anything else is retried with backoff. */
export type Handler<A> = (args: A) => Promise<void> | void;

interface Step<A> {
  id: string;
  fn: Handler<A>;
}

interface UpdateStep<T extends KubeObject> extends Step<UpdateArgs<T>> {
  field?: string;
}

interface OwnedHandler<T extends KubeObject> {
  type: ResourceType;
  labels?: Record<string, string>;
  fn: Handler<OwnedArgs<T, KubeObject>>;
}

// Passes what can give handlers work: a changed essence, a deletion, a replaced object. Our own
// diff-base and progress writes, status writes and resyncs do not wake the controller.
const essencePredicate: Predicate = (c) => c.type !== 'update' || essenceChanged(c.old, c.object);

function stepId(fn: { name: string }, index: number): string {
  return `${index}:${fn.name || 'handler'}`;
}

function labelsMatch(obj: KubeObject, labels: Record<string, string> | undefined): boolean {
  return Object.entries(labels ?? {}).every(([k, v]) => obj.metadata.labels?.[k] === v);
}

/** Declares kopf-style handlers for one resource type; `build()` gives a controller the manager runs. */
export class HandlersBuilder<T extends KubeObject> {
  private readonly create: Step<HandlerArgs<T>>[] = [];
  private readonly update: UpdateStep<T>[] = [];
  private readonly del: Step<HandlerArgs<T>>[] = [];
  private readonly resume: Step<HandlerArgs<T>>[] = [];
  private readonly owned: OwnedHandler<T>[] = [];
  private workerCount: number | undefined;

  constructor(
    private readonly name: string,
    private readonly type: ResourceType<T>,
  ) {}

  /** Runs when an object is seen for the first time (no diff base yet). */
  onCreate(fn: Handler<HandlerArgs<T>>): this {
    this.create.push({ id: stepId(fn, this.create.length), fn });
    return this;
  }

  /** Runs when the essence changed since last handled; with `field`, only when that dotted path (e.g. 'spec.text', 'data.key') changed. */
  onUpdate(fnOrOpts: Handler<UpdateArgs<T>> | { field: string }, maybeFn?: Handler<UpdateArgs<T>>): this {
    const fn = typeof fnOrOpts === 'function' ? fnOrOpts : maybeFn;
    if (!fn) return this;
    this.update.push({ id: stepId(fn, this.update.length), fn, field: typeof fnOrOpts === 'function' ? undefined : fnOrOpts.field });
    return this;
  }

  /** Runs when the object is being deleted; a finalizer keeps it until the handlers succeed. */
  onDelete(fn: Handler<HandlerArgs<T>>): this {
    this.del.push({ id: stepId(fn, this.del.length), fn });
    return this;
  }

  /** Runs for every existing, already-handled object when the operator starts. */
  onResume(fn: Handler<HandlerArgs<T>>): this {
    this.resume.push({ id: stepId(fn, this.resume.length), fn });
    return this;
  }

  /** Runs when a child of `type` controlled by an object appears, changes or goes. */
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
    const b = controller(this.name).for(this.type, { predicates: [essencePredicate] });
    if (this.workerCount !== undefined) b.workers(this.workerCount);
    // Children are owned: their changes enqueue the controlling object, and RBAC grants owner verbs.
    const ownedWatches = new Map<string, OwnedHandler<T>>();
    for (const h of this.owned) ownedWatches.set(JSON.stringify([h.type.group, h.type.plural, h.labels ?? {}]), h);
    for (const h of ownedWatches.values()) b.owns(h.type, { labels: h.labels });
    return b.setup(() => this.instance());
  }

  // Each manager gets its own memory: what this process wrote (the cache may lag behind it), which
  // objects it resumed, and which children it has handled.
  private instance(): Reconciler {
    const type = this.type;
    const controllerName = this.name;
    const finalizer = `bosun.dev/${this.name}`;
    const run = randomBytes(6).toString('hex');
    const bases = new Map<string, { uid: string; base: DiffBase }>();
    const progresses = new Map<string, { uid: string; progress: Progress | undefined }>();
    const resumed = new Map<string, string>();
    // Per owner key: each handled child's uid@resourceVersion, by handler index and child key.
    const children = new Map<string, { uid: string; seen: Map<string, string> }>();

    const forget = (key: string) => {
      bases.delete(key);
      progresses.delete(key);
      resumed.delete(key);
      children.delete(key);
    };
    const mine = <V>(m: Map<string, { uid: string } & V>, key: string, uid: string): V | undefined => {
      const e = m.get(key);
      return e?.uid === uid ? e : undefined;
    };
    const argsOf = (o: T, req: Request, ctx: ReconcileContext): HandlerArgs<T> => ({
      obj: o,
      spec: o.spec,
      name: req.name,
      namespace: req.namespace,
      log: ctx.log,
      ctx,
    });

    const progressOf = (obj: T, key: string): Progress | undefined => {
      const m = mine(progresses, key, obj.metadata.uid ?? '');
      return m ? m.progress : readProgress(obj, controllerName);
    };
    const saveProgress = (ctx: ReconcileContext, obj: T, key: string) => async (p: Progress) => {
      progresses.set(key, { uid: obj.metadata.uid ?? '', progress: p });
      await persist(ctx, type, obj, { progress: p }).catch((err: unknown) =>
        ctx.log.warn({ err: (err as Error).message }, 'could not record handler progress; handlers that succeeded may run again'),
      );
    };

    const handleLive = async (obj: T, req: Request, ctx: ReconcileContext): Promise<void> => {
      const uid = obj.metadata.uid ?? '';
      const args = argsOf(obj, req, ctx);
      const base = mine(bases, req.key, uid)?.base ?? readDiffBase(obj);
      const cause = detectCause(obj, base, { resumed: resumed.get(req.key) === uid });
      if (cause.type === 'create' || cause.type === 'update' || cause.type === 'resume') {
        let steps: HandlerStep[];
        if (cause.type === 'create') steps = this.create.map((s) => ({ id: s.id, call: () => s.fn(args) }));
        else if (cause.type === 'resume') steps = this.resume.map((s) => ({ id: s.id, call: () => s.fn(args) }));
        else {
          const { old, essence } = cause;
          steps = this.update
            .filter((s) => !s.field || fieldChanged(old, essence, s.field))
            .map((s) => ({ id: s.id, call: () => s.fn({ ...args, old, new: essence }) }));
        }
        const previous = progressOf(obj, req.key);
        await executeCause({
          controller: controllerName,
          cause: cause.type,
          hash: cause.hash,
          ...(cause.type === 'resume' ? { run } : {}),
          previous,
          steps,
          save: saveProgress(ctx, obj, req.key),
        });
        // The base is written before owned children run, so a failing child never repeats the cause.
        const newBase = cause.type !== 'resume' || base?.legacy;
        if (newBase || previous) {
          const encoded = newBase ? encodeDiffBase(cause.essence, cause.hash, obj.metadata.annotations) : undefined;
          if (encoded && !encoded.whole)
            ctx.log.warn(
              { bytes: encoded.bytes },
              'essence too large for a whole diff base beside the other annotations; keeping its hash only',
            );
          await persist(ctx, type, obj, { base: encoded?.value, progress: previous ? null : undefined });
          if (encoded) bases.set(req.key, { uid, base: { hash: cause.hash, essence: encoded.whole ? cause.essence : undefined } });
          progresses.set(req.key, { uid, progress: undefined });
        }
        resumed.set(req.key, uid);
      }
      await handleChildren(obj, req, ctx);
    };

    // Level-based: compares the children in the cache with those last handled, so a child that
    // failed stays pending and no child after it is lost.
    const handleChildren = async (obj: T, req: Request, ctx: ReconcileContext): Promise<void> => {
      if (this.owned.length === 0) return;
      const uid = obj.metadata.uid ?? '';
      const entry = mine(children, req.key, uid) ?? { uid, seen: new Map<string, string>() };
      children.set(req.key, { uid, seen: entry.seen });
      const args = argsOf(obj, req, ctx);
      let failure: unknown;
      const call = async (
        h: OwnedHandler<T>,
        id: string,
        child: KubeObject | undefined,
        childNamespace: string | undefined,
        childName: string,
        fingerprint: string | undefined,
      ) => {
        try {
          await h.fn({ ...args, child, childName, childNamespace });
          if (fingerprint) entry.seen.set(id, fingerprint);
          else entry.seen.delete(id);
        } catch (err) {
          failure ??= err;
        }
      };
      for (const [i, h] of this.owned.entries()) {
        const now = new Set<string>();
        for (const child of ctx.cache.ownedBy(h.type, obj)) {
          if (!labelsMatch(child, h.labels)) continue;
          const id = JSON.stringify([i, child.metadata.namespace ?? '', child.metadata.name ?? '']);
          now.add(id);
          const fingerprint = `${child.metadata.uid ?? ''}@${child.metadata.resourceVersion ?? ''}`;
          if (entry.seen.get(id) !== fingerprint)
            await call(h, id, child, child.metadata.namespace, child.metadata.name ?? '', fingerprint);
        }
        for (const id of [...entry.seen.keys()]) {
          const [index, childNamespace, childName] = JSON.parse(id) as [number, string, string];
          if (index === i && !now.has(id)) await call(h, id, undefined, childNamespace || undefined, childName, undefined);
        }
      }
      if (failure !== undefined) throw failure;
    };

    return async (req, ctx) => {
      const obj = ctx.cache.get(type, req.namespace, req.name);
      if (!obj) {
        forget(req.key);
        return;
      }
      if (this.del.length === 0) {
        if (obj.metadata.deletionTimestamp) children.delete(req.key);
        else await handleLive(obj, req, ctx);
        return;
      }
      await withFinalizer(ctx, type, obj, finalizer, {
        apply: (live) => handleLive(live, req, ctx),
        cleanup: async (deleted) => {
          children.delete(req.key);
          const args = argsOf(deleted, req, ctx);
          await executeCause({
            controller: controllerName,
            cause: 'delete',
            hash: '',
            previous: progressOf(deleted, req.key),
            steps: this.del.map((s) => ({ id: s.id, call: () => s.fn(args) })),
            save: saveProgress(ctx, deleted, req.key),
          });
        },
      });
    };
  }
}

/** Starts declaring kopf-style handlers named `name` for `type` (its object type is the handlers' `obj`). */
export function handlers<T extends KubeObject>(name: string, type: ResourceType<T>): HandlersBuilder<T> {
  return new HandlersBuilder<T>(name, type);
}
