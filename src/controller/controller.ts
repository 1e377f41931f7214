import { ApiError } from '../client/errors.js';
import type { KubeObject } from '../client/types.js';
import type { EnqueueFn as EventHandler } from '../handler/enqueue.js';
import type { Predicate, WatchChange } from '../predicate/predicate.js';
import { WorkQueue, type QueueMetrics } from '../queue/workqueue.js';
import type { RateLimiter } from '../queue/ratelimiter.js';
import { sharedYielder } from '../queue/yielder.js';
import { PermanentError, TemporaryError, requestFromKey, type Request, type Result } from '../reconcile/types.js';

/** Workers per controller by default: reconciles wait on the API server, so several run at once. */
export const DEFAULT_WORKERS = 16;

/** The logging a controller needs; a pino logger fits. */
export interface ControllerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A stream of watch changes with a sync barrier: what a shared informer offers a controller. */
export interface ChangeSource {
  /** Human-readable name for logs, e.g. the resource's plural. */
  readonly name: string;
  /** Calls `fn` for every change after the store is updated. */
  subscribe(fn: (change: WatchChange) => void): void;
  /** Resolves once the initial list has been stored. */
  waitForSync(signal?: AbortSignal): Promise<void>;
}

/** Receives the outcome of every reconcile, for metrics. */
export interface ReconcileObserver {
  reconcileDone?(controller: string, result: 'success' | 'error' | 'requeue' | 'requeue_after', seconds: number): void;
}

/** The function a controller runs for each request. */
export type ReconcileFn = (req: Request, signal: AbortSignal) => Promise<Result | void>;

/** Options of a controller. */
export interface ControllerOptions {
  /** Unique name, used in logs and metrics. */
  name: string;
  /** Concurrent reconciles (never two for one key); default DEFAULT_WORKERS. */
  workers?: number;
  /** Backoff for retries; default client-go's (5 ms doubling to 1000 s, and 10 qps / burst 100 overall). */
  rateLimiter?: RateLimiter;
  logger: ControllerLogger;
  queueMetrics?: QueueMetrics;
  observer?: ReconcileObserver;
}

/**
 * Drains a work queue into a reconcile function with parallel workers. Watches feed the queue;
 * errors are retried with per-key backoff; a PermanentError is recorded and not retried until the
 * object changes again.
 */
export class Controller {
  /** The controller's name. */
  readonly name: string;
  /** The queue of keys waiting for reconcile. */
  readonly queue: WorkQueue;
  private readonly workers: number;
  private readonly sources: ChangeSource[] = [];
  private readonly log: ControllerLogger;
  private readonly observer: ReconcileObserver | undefined;
  private inFlight = 0;

  constructor(
    opts: ControllerOptions,
    private readonly reconcile: ReconcileFn,
  ) {
    this.name = opts.name;
    this.workers = Math.max(1, opts.workers ?? DEFAULT_WORKERS);
    this.log = opts.logger;
    this.observer = opts.observer;
    this.queue = new WorkQueue({ rateLimiter: opts.rateLimiter, metrics: opts.queueMetrics });
  }

  /** Routes changes from `source` that pass every predicate through `handler` into the queue. */
  watch(source: ChangeSource, handler: EventHandler, predicates: Predicate[] = []): this {
    this.sources.push(source);
    source.subscribe((change) => {
      for (const p of predicates) if (!p(change as WatchChange<KubeObject>)) return;
      for (const req of handler(change)) this.queue.add(req.key);
    });
    return this;
  }

  /** Reconciles currently running. */
  get active(): number {
    return this.inFlight;
  }

  /**
   * Waits until every source has synced, then runs the workers until `signal` aborts; then stops
   * taking new work and resolves once in-flight reconciles have finished.
   */
  async start(signal: AbortSignal): Promise<void> {
    await Promise.all(this.sources.map((s) => s.waitForSync(signal)));
    if (signal.aborted) return;
    this.log.info({ controller: this.name, workers: this.workers }, 'starting workers');
    const stop = () => this.queue.shutdown();
    signal.addEventListener('abort', stop, { once: true });
    await Promise.all(Array.from({ length: this.workers }, () => this.worker(signal)));
    this.log.info({ controller: this.name }, 'workers stopped');
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.inFlight++;
      let finishedAt: number | undefined;
      try {
        finishedAt = await this.process(key, signal);
      } finally {
        this.inFlight--;
        this.queue.done(key);
      }
      // Reconciles that do no I/O settle in microtasks; without this a long drain never lets timers or sockets run.
      const turn = sharedYielder.maybeYield(finishedAt);
      if (turn) await turn;
    }
  }

  /** Reconciles `key` and acts on the outcome; returns the time it finished (performance.now()). */
  private async process(key: string, signal: AbortSignal): Promise<number> {
    const req = requestFromKey(key);
    const t0 = performance.now();
    let t1 = t0;
    const seconds = () => ((t1 = performance.now()) - t0) / 1000;
    try {
      const res = (await this.reconcile(req, signal)) ?? {};
      // Zero or less means no timed requeue: an immediate requeue would be an unthrottled loop.
      if (res.requeueAfterMs !== undefined && res.requeueAfterMs > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, res.requeueAfterMs);
        this.observer?.reconcileDone?.(this.name, 'requeue_after', seconds());
      } else if (res.requeue) {
        this.queue.addRateLimited(key);
        this.observer?.reconcileDone?.(this.name, 'requeue', seconds());
      } else {
        this.queue.forget(key);
        this.observer?.reconcileDone?.(this.name, 'success', seconds());
      }
    } catch (err) {
      this.observer?.reconcileDone?.(this.name, 'error', seconds());
      this.handleError(key, req, err);
    }
    return t1;
  }

  private handleError(key: string, req: Request, err: unknown): void {
    const ctx = { controller: this.name, namespace: req.namespace, name: req.name };
    if (err instanceof PermanentError) {
      // Retrying cannot help; the next change to the object enqueues it again.
      this.queue.forget(key);
      this.log.warn({ ...ctx, reason: err.reason, err: err.message }, 'reconcile failed permanently; not retrying until the object changes');
      return;
    }
    if (err instanceof TemporaryError) {
      this.queue.addRateLimited(key, err.delayMs);
      this.log.info({ ...ctx, err: err.message, retryInMs: err.delayMs }, 'reconcile will be retried');
      return;
    }
    if (err instanceof ApiError && err.status === 409) {
      // A stale read lost an optimistic-concurrency race: normal, retried quietly.
      this.queue.addRateLimited(key);
      this.log.debug({ ...ctx, err: err.message }, 'conflict; retrying');
      return;
    }
    const retryAfterMs = err instanceof ApiError && err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : 0;
    this.queue.addRateLimited(key, retryAfterMs);
    this.log.error({ ...ctx, err: err instanceof Error ? err.message : String(err), retries: this.queue.numRequeues(key) }, 'reconcile failed; retrying with backoff');
  }
}
