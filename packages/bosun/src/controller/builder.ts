import type { KubeObject, ResourceType } from '../client/types.js';
import type { CacheTransform } from '../cache/informer.js';
import type { Predicate } from './predicate.js';
import type { Request, Result } from './request.js';
import type { ReconcileContext } from '../writes/context.js';
import { ControllerDeclarationError } from '../writes/errors.js';

/** A reconcile function in the controller-runtime style: level-based, given a request and a context. */
export type Reconciler = (req: Request, ctx: ReconcileContext) => Promise<Result | void>;

/** One watched type besides the primary one. */
export interface SecondaryWatch {
  type: ResourceType;
  /** Maps a changed object to requests; absent means "enqueue its controller owner" (owns). */
  map?: (obj: KubeObject) => { namespace?: string; name: string }[];
  predicates: Predicate[];
  /** Only objects with these labels are cached (a label selector on the watch). */
  labels?: Record<string, string>;
  /** What is kept of each cached object (see `OwnsOptions.transform`). */
  transform?: CacheTransform;
}

/**
 * A controller's declaration: what it watches, reads and writes, as plain data that tools such as
 * RBAC generation read without running anything, and `setup`, which a manager calls once to get
 * the reconcile function it runs.
 */
export interface ControllerSpec {
  name: string;
  forType: ResourceType;
  forPredicates: Predicate[];
  owns: SecondaryWatch[];
  watches: SecondaryWatch[];
  workers?: number;
  /** Types the controller writes besides those it watches (for RBAC generation). */
  writes: ResourceType[];
  /** Types the controller reads by name without watching them, e.g. a Secret holding a key (RBAC: get only). */
  reads?: ResourceType[];
  /**
   * Makes the reconcile function; called once by each manager that runs the controller, so state
   * a controller keeps between reconciles (the kopf style's) is never shared by two managers.
   */
  setup(): Reconciler;
}

/** Options of `owns`. */
export interface OwnsOptions {
  /** Changes must pass every predicate to enqueue work. */
  predicates?: Predicate[];
  /** Cache only objects with these labels: less memory when the cluster has many objects of the type. */
  labels?: Record<string, string>;
  /**
   * What to keep of each cached object, for less memory (and less garbage collection) per object:
   * a function of the object as received that returns what to store, e.g. without status fields the
   * reconcile never reads. Keep every field the reconcile reads, and for owned children every field
   * `applyChild` sets: its converged check compares them with the cache, so a child whose applied
   * fields were dropped is applied again on every reconcile. Pass one function (not a new closure per
   * call) so watches of one kind share a cache.
   */
  transform?(obj: KubeObject): KubeObject;
}

/** Options of `watches`: the same as those of `owns`. */
export type WatchesOptions = OwnsOptions;

/**
 * Declares a controller: `controller('message').for(Message).owns(Pod).reconcile(fn)`.
 * The shape of controller-runtime's builder, with the reconcile function last.
 */
export class ControllerBuilder {
  private forType: ResourceType | undefined;
  private forPredicates: Predicate[] = [];
  private readonly ownsList: SecondaryWatch[] = [];
  private readonly watchList: SecondaryWatch[] = [];
  private readonly writeList: ResourceType[] = [];
  private readonly readList: ResourceType[] = [];
  private workerCount: number | undefined;

  constructor(private readonly name: string) {}

  /** The primary type: its changes enqueue its own key. */
  for(type: ResourceType, opts: { predicates?: Predicate[] } = {}): this {
    this.forType = type;
    this.forPredicates = opts.predicates ?? [];
    return this;
  }

  /** A type this controller creates and controller-owns: its changes enqueue the owner. */
  owns(type: ResourceType, opts: OwnsOptions = {}): this {
    this.ownsList.push({ type, predicates: opts.predicates ?? [], labels: opts.labels, transform: opts.transform });
    return this;
  }

  /** Any other type: `map` says which primary objects a change concerns. */
  watches<T extends KubeObject>(
    type: ResourceType,
    map: (obj: T) => { namespace?: string; name: string }[],
    opts: WatchesOptions = {},
  ): this {
    this.watchList.push({
      type,
      map: map as (obj: KubeObject) => { namespace?: string; name: string }[],
      predicates: opts.predicates ?? [],
      labels: opts.labels,
      transform: opts.transform,
    });
    return this;
  }

  /** Types created or changed without being watched (for example ConfigMaps it writes), so RBAC can grant writes; for reads use `reads`. */
  writes(...types: ResourceType[]): this {
    this.writeList.push(...types);
    return this;
  }

  /** Types read by name without a watch (for example a Secret holding an API key): RBAC grants get, never writes. */
  reads(...types: ResourceType[]): this {
    this.readList.push(...types);
    return this;
  }

  /** Concurrent reconciles for this controller (default: the manager's). */
  workers(n: number): this {
    this.workerCount = n;
    return this;
  }

  /** Completes the declaration with the reconcile function. */
  reconcile(fn: Reconciler): ControllerSpec {
    return this.setup(() => fn);
  }

  /**
   * Completes the declaration with a factory of the reconcile function, for controllers that keep
   * state between reconciles: each manager calls it once and gets its own.
   */
  setup(factory: () => Reconciler): ControllerSpec {
    if (!this.forType)
      throw new ControllerDeclarationError(
        `controller '${this.name}': call .for(<type>) before .reconcile() or .setup(); it names the type this controller reconciles`,
      );
    return {
      name: this.name,
      forType: this.forType,
      forPredicates: this.forPredicates,
      owns: this.ownsList,
      watches: this.watchList,
      workers: this.workerCount,
      writes: this.writeList,
      reads: this.readList,
      setup: factory,
    };
  }
}

/** Starts declaring a controller named `name` (used in logs, metrics and as part of the field manager). */
export function controller(name: string): ControllerBuilder {
  return new ControllerBuilder(name);
}
