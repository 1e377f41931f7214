import { ApiError, DeadConnectionError, RequestTimeoutError, TransportError } from '../client/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { KubeObject } from '../client/types.js';
import type { EnqueueFn } from './enqueue.js';
import type { Predicate, WatchChange } from './predicate.js';
import { type Clock, realClock } from '../queue/clock.js';
import { WorkQueue, type QueueMetrics } from '../queue/workqueue.js';
import type { RateLimiter } from '../queue/ratelimiter.js';
import { sharedYielder } from '../queue/yielder.js';
import { PermanentError, TemporaryError, requestFromKey, type Request, type Result } from './request.js';

/** Workers per controller by default: reconciles wait on the API server, so several run at once. */
export const DEFAULT_WORKERS = 16;

/** The part of the one `Logger` type a controller uses, so tests can pass a four-method object. */
export type ControllerLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** A stream of watch changes with a sync barrier: what a shared informer offers a controller. */
export interface ChangeSource {
  /** Human-readable name for logs, e.g. the resource's plural. */
  readonly name: string;
  /** Calls `fn` for every change after the store is updated. */
  subscribe(fn: (change: WatchChange) => void): void;
  /** Resolves once the initial list has been stored (an informer resolves true, or false if `signal` fired first). */
  waitForSync(signal?: AbortSignal): Promise<unknown>;
  /**
   * Whether the cache is known to be missing changes: its watch broke and has not relisted or
   * resumed yet (an informer's `isBehind`). Absent: the source is never known to be behind.
   */
  isBehind?(): boolean;
  /** Calls `fn` whenever `isBehind()` changes. */
  onFreshness?(fn: () => void): unknown;
  /** Why the source is behind: the error of its last failed list or watch, if any. */
  lastError?(): unknown;
}

/** How long a controller holds its reconciles for a cache that is behind, by default: see `ControllerOptions.maxHoldMs`. */
export const DEFAULT_MAX_HOLD_MS = 30_000;

/** Receives the outcome of every reconcile and the number running, for metrics. */
export interface ReconcileObserver {
  reconcileDone?(controller: string, result: Decision['result'], seconds: number): void;
  /** Called whenever the number of running reconciles changes, with the new number. */
  workersActive?(controller: string, n: number): void;
  /**
   * Called when the controller starts holding its reconciles because `behind` (source names) are
   * behind, and again with an empty list when it stops (they caught up, or the hold outlasted `maxHoldMs`).
   */
  reconcilesHeld?(controller: string, behind: string[]): void;
}

/** What a controller runs for each request; the manager wraps a `Reconciler` (req, ctx) into one. */
export type RequestFn = (req: Request, signal: AbortSignal) => Promise<Result | void>;

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
  /** Time source of the queue's delays and backoff, and of the hold bound; injectable for tests. */
  clock?: Clock;
  /**
   * The longest a cache that is behind holds this controller's reconciles, in ms, counted from when it
   * fell behind (default DEFAULT_MAX_HOLD_MS). A watch that stays broken longer is not about to
   * recover (the API server is gone, or the watch is refused): reconciles then run on what the cache
   * has, as they would without the hold, and a warning says which cache is behind and why.
   */
  maxHoldMs?: number;
  /**
   * Runs before each reconcile of `key`, once the caches are current, and delays it until it resolves:
   * the manager passes the wait until the cache shows this controller's own last write to the object.
   * The wait counts neither in the reconcile's duration nor in the active workers, and the key stays
   * taken meanwhile.
   */
  beforeReconcile?: (key: string, signal: AbortSignal) => Promise<void>;
}

/**
 * Drains a work queue into a reconcile function with parallel workers. Watches feed the queue;
 * what each reconcile's result or error means for its key is decided by `decide`.
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
  private readonly clock: Clock;
  private readonly maxHoldMs: number;
  private readonly beforeReconcile: ControllerOptions['beforeReconcile'];
  /** Sources known to be behind, with the time (this controller's clock) each fell behind. */
  private readonly behindSince = new Map<ChangeSource, number>();
  /** Sources behind for longer than `maxHoldMs`: no longer held for, already warned about. */
  private readonly overdue = new Set<ChangeSource>();
  /** Workers waiting, each with the key it took, for the caches to catch up. */
  private heldWorkers: (() => void)[] = [];
  private holdStartedAt: number | undefined;
  private holdTimer: unknown;

  constructor(
    opts: ControllerOptions,
    private readonly reconcile: RequestFn,
  ) {
    this.name = opts.name;
    this.workers = Math.max(1, opts.workers ?? DEFAULT_WORKERS);
    this.log = opts.logger;
    this.observer = opts.observer;
    this.clock = opts.clock ?? realClock;
    this.maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.beforeReconcile = opts.beforeReconcile;
    this.queue = new WorkQueue({ rateLimiter: opts.rateLimiter, metrics: opts.queueMetrics, clock: opts.clock });
  }

  /**
   * Routes changes from `source` that pass every predicate through `enqueue` into the queue. The
   * source is one of the caches this controller reads: while it is behind, reconciles are held.
   */
  watch(source: ChangeSource, enqueue: EnqueueFn, predicates: Predicate[] = []): this {
    if (!this.sources.includes(source)) {
      source.onFreshness?.(() => this.freshnessChanged(source));
      this.freshnessChanged(source);
    }
    this.sources.push(source);
    source.subscribe((change) => {
      for (const p of predicates) if (!p(change as WatchChange<KubeObject>)) return;
      for (const req of enqueue(change)) this.queue.add(req.key);
    });
    return this;
  }

  /** Reconciles currently running. */
  get active(): number {
    return this.inFlight;
  }

  /** The names of the sources reconciles are held for now (behind, within `maxHoldMs`); empty when none. */
  get holdingFor(): string[] {
    return [...this.behindSince.keys()].filter((s) => !this.overdue.has(s)).map((s) => s.name);
  }

  /*
   * Why reconciles are held while a cache is behind: the caches of one controller are fed by
   * independent watches that catch up after a gap in no fixed order. After a watch gap past etcd
   * compaction, the Pod watch resumes and replays the garbage collector's deletions of the Pods of
   * Messages deleted in the gap while the Message watch is still relisting after its 410: each
   * deletion wakes a Message the stale Message cache still has, and its reconcile makes the Pod
   * again. Holding (taking no new work, keeping the queue and its keys) until every cache is current
   * lets those reconciles find the Message gone. Keys already running are not interrupted.
   */
  private freshnessChanged(source: ChangeSource): void {
    if (source.isBehind?.()) {
      if (!this.behindSince.has(source)) this.behindSince.set(source, this.clock.now());
    } else {
      this.behindSince.delete(source);
      this.overdue.delete(source);
    }
    this.reviewHold();
  }

  /** Whether a worker must wait before starting a reconcile now. */
  private mustHold(): boolean {
    const now = this.clock.now();
    for (const [source, since] of this.behindSince) {
      if (this.overdue.has(source)) continue;
      if (now - since < this.maxHoldMs) return true;
      this.overdue.add(source);
      const err = source.lastError?.();
      this.log.warn(
        {
          controller: this.name,
          cache: source.name,
          behindMs: now - since,
          maxHoldMs: this.maxHoldMs,
          err: err instanceof Error ? err.message : err === undefined ? undefined : String(err),
        },
        'a cache this controller reads is still behind after maxHoldMs; reconciling on what it has until its watch recovers',
      );
    }
    return false;
  }

  /** Releases held workers once nothing needs holding; otherwise arms the timer of the next bound. */
  private reviewHold(): void {
    if (this.holdTimer !== undefined) this.clock.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.mustHold()) {
      if (this.heldWorkers.length === 0) return;
      let next = Infinity;
      for (const [source, since] of this.behindSince) if (!this.overdue.has(source)) next = Math.min(next, since + this.maxHoldMs);
      this.holdTimer = this.clock.setTimeout(() => this.reviewHold(), next - this.clock.now());
      (this.holdTimer as { unref?: () => void } | undefined)?.unref?.();
      return;
    }
    if (this.holdStartedAt !== undefined) {
      this.log.info(
        { controller: this.name, heldMs: Math.round(this.clock.now() - this.holdStartedAt), waiting: this.heldWorkers.length },
        'caches caught up; resuming reconciles',
      );
      this.holdStartedAt = undefined;
      this.observer?.reconcilesHeld?.(this.name, []);
    }
    for (const release of this.heldWorkers.splice(0)) release();
  }

  /** Waits until no source needs holding, or `stopped` aborts; true when the worker may go on. */
  private async waitUntilCurrent(stopped: AbortSignal): Promise<boolean> {
    if (!this.mustHold()) return true;
    if (stopped.aborted) return false;
    if (this.holdStartedAt === undefined) {
      this.holdStartedAt = this.clock.now();
      this.log.info({ controller: this.name, behind: this.holdingFor }, 'holding reconciles until the caches catch up after a watch gap');
      this.observer?.reconcilesHeld?.(this.name, this.holdingFor);
    }
    await new Promise<void>((resolve) => {
      const release = (): void => {
        stopped.removeEventListener('abort', onStop);
        resolve();
      };
      const onStop = (): void => {
        this.heldWorkers = this.heldWorkers.filter((w) => w !== release);
        resolve();
      };
      stopped.addEventListener('abort', onStop, { once: true });
      this.heldWorkers.push(release);
      this.reviewHold();
    });
    return !stopped.aborted;
  }

  /**
   * Waits until every source has synced, then runs the workers. The two signals are the stop contract:
   * - `drain` aborted: take no more work; resolves once the in-flight reconciles have finished, and
   *   their signals stay untouched so a graceful stop lets their writes complete;
   * - `kill` aborted (lost leadership, shutdown timeout): take no more work, abort the signal of every
   *   in-flight reconcile, and resolve at once without waiting for them.
   * Reconciles receive a signal derived from `kill` only, never from `drain`.
   */
  async start(drain: AbortSignal, kill?: AbortSignal): Promise<void> {
    const stopped = kill ? AbortSignal.any([drain, kill]) : drain;
    await Promise.all(this.sources.map((s) => s.waitForSync(stopped)));
    if (stopped.aborted) return;
    this.log.info({ controller: this.name, workers: this.workers }, 'starting workers');
    const reconciles = new AbortController();
    let killed!: () => void;
    const whenKilled = new Promise<'killed'>((resolve) => (killed = () => resolve('killed')));
    const onDrain = () => this.queue.shutdown();
    const onKill = () => {
      this.queue.shutdown();
      reconciles.abort(kill?.reason);
      killed();
    };
    drain.addEventListener('abort', onDrain, { once: true });
    kill?.addEventListener('abort', onKill, { once: true });
    try {
      const workers = Promise.all(Array.from({ length: this.workers }, () => this.worker(reconciles.signal, stopped))).then(
        () => 'drained' as const,
      );
      const how = await Promise.race([workers, whenKilled]);
      if (how === 'killed') {
        // Abandoned reconciles still settle later; a failure then has nobody left to report to but the log.
        workers.catch((err: unknown) =>
          this.log.error({ controller: this.name, err: (err as Error).message }, 'worker failed after the controller was killed'),
        );
        this.log.warn(
          { controller: this.name, abandoned: this.inFlight },
          'workers killed; in-flight reconciles were aborted and not waited for',
        );
      } else {
        this.log.info({ controller: this.name }, 'workers stopped');
      }
    } finally {
      drain.removeEventListener('abort', onDrain);
      kill?.removeEventListener('abort', onKill);
    }
  }

  private async worker(signal: AbortSignal, stopped: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      // The key stays taken while held: added again meanwhile, it is queued once after this reconcile.
      if (!(await this.waitUntilCurrent(stopped))) {
        this.queue.done(key);
        return;
      }
      if (this.beforeReconcile) {
        // A wait that fails delays nothing more: the reconcile runs on what the cache has.
        await this.beforeReconcile(key, signal).catch((err: unknown) =>
          this.log.warn({ controller: this.name, key, err: (err as Error).message }, 'the wait before a reconcile failed; reconciling'),
        );
      }
      this.setActive(this.inFlight + 1);
      let finishedAt: number | undefined;
      try {
        finishedAt = await this.process(key, signal);
      } finally {
        this.setActive(this.inFlight - 1);
        this.queue.done(key);
      }
      // Reconciles that do no I/O settle in microtasks; without this a long drain never lets timers or sockets run.
      const turn = sharedYielder.maybeYield(finishedAt);
      if (turn) await turn;
    }
  }

  private setActive(n: number): void {
    this.inFlight = n;
    this.observer?.workersActive?.(this.name, n);
  }

  /** Reconciles `key` and acts on the outcome; returns the time it finished (performance.now()). */
  private async process(key: string, signal: AbortSignal): Promise<number> {
    const req = requestFromKey(key);
    const t0 = performance.now();
    let outcome: ReconcileOutcome;
    try {
      outcome = { ok: true, result: await this.reconcile(req, signal) };
    } catch (error) {
      outcome = { ok: false, error, aborted: signal.aborted };
    }
    const t1 = performance.now();
    const decision = decide(outcome);
    this.observer?.reconcileDone?.(this.name, decision.result, (t1 - t0) / 1000);
    const next = decision.next;
    switch (next.then) {
      case 'wait-for-change':
        this.queue.forget(key);
        break;
      case 'requeue-after':
        this.queue.forget(key);
        this.queue.addAfter(key, next.delayMs);
        break;
      case 'backoff':
        this.queue.addRateLimited(key, next.minDelayMs, { unanswered: next.unanswered === true, hold: next.hold === true });
        break;
    }
    if (decision.log) {
      const fields = { controller: this.name, namespace: req.namespace, name: req.name, ...decision.log.fields };
      if (next.then === 'backoff') Object.assign(fields, { retries: this.queue.numRequeues(key) });
      this.log[decision.log.level](fields, decision.log.msg);
    }
    return t1;
  }
}

/** How a reconcile ended: the Result it returned, or what it threw (and whether its signal had aborted by then). */
export type ReconcileOutcome = { ok: true; result: Result | void } | { ok: false; error: unknown; aborted: boolean };

/** What the controller does after a reconcile: the metric label, what becomes of the key, and the log line. */
export interface Decision {
  /** The `controller_runtime_reconcile_total` result label. */
  result: 'success' | 'requeue_after' | 'error';
  /**
   * `wait-for-change`: clear the key's backoff and wait for the next change to enqueue it;
   * `requeue-after`: clear the backoff and run again after `delayMs`;
   * `backoff`: retry after the key's next backoff step, but not sooner than `minDelayMs`; `unanswered`
   *   when the server never answered, so the step is the queue limiter's `whenUnanswered`; `hold` when
   *   the server set `minDelayMs` (Retry-After), so no watch event runs the key sooner.
   */
  next:
    | { then: 'wait-for-change' }
    | { then: 'requeue-after'; delayMs: number }
    | { then: 'backoff'; minDelayMs: number; unanswered?: true; hold?: true };
  /** The line to log, if the outcome deserves one. */
  log?: { level: keyof ControllerLogger; msg: string; fields: Record<string, unknown> };
}

/**
 * The one place that gives a reconcile's outcome its meaning; the worker loop only carries the
 * decision out. In order:
 * - returned `{ requeueAfterMs: n }` with n > 0 (finite): run again after n ms, backoff reset;
 * - returned anything else (nothing, `{}`, n <= 0): success, wait for the next change;
 * - threw after its signal aborted (shutdown or lost leadership): interrupted, nothing to retry here;
 * - PermanentError: retrying cannot help; logged and left until the object changes;
 * - TemporaryError: retried after its `delayMs` (or the backoff, when that is longer);
 * - ApiError 409: a stale read lost an optimistic-concurrency race; retried with backoff, quietly;
 * - ApiError with Retry-After (429, 503): retried no sooner than the server asked;
 * - no answer from the server (a TransportError other than a timeout: connection refused or reset,
 *   a dead connection; found through `cause`): retried with per-key backoff only, without the shared bucket, so recovery after an
 *   outage does not wait for the bucket to pay back every failure of the outage;
 * - anything else: retried with per-key exponential backoff and logged as an error.
 */
export function decide(outcome: ReconcileOutcome): Decision {
  if (outcome.ok) {
    const ms = outcome.result?.requeueAfterMs;
    if (ms !== undefined && Number.isFinite(ms) && ms > 0) return { result: 'requeue_after', next: { then: 'requeue-after', delayMs: ms } };
    return { result: 'success', next: { then: 'wait-for-change' } };
  }
  const err = outcome.error;
  const message = err instanceof Error ? err.message : String(err);
  if (outcome.aborted) {
    return {
      result: 'error',
      next: { then: 'wait-for-change' },
      log: { level: 'info', msg: 'reconcile interrupted by shutdown', fields: { err: message } },
    };
  }
  if (err instanceof PermanentError) {
    return {
      result: 'error',
      next: { then: 'wait-for-change' },
      log: {
        level: 'warn',
        msg: 'reconcile failed permanently; not retrying until the object changes',
        fields: { reason: err.reason, err: message },
      },
    };
  }
  if (err instanceof TemporaryError) {
    return {
      result: 'error',
      next: { then: 'backoff', minDelayMs: err.delayMs },
      log: { level: 'info', msg: 'reconcile will be retried', fields: { err: message, retryInMs: err.delayMs } },
    };
  }
  if (err instanceof ApiError && err.status === 409) {
    return {
      result: 'error',
      next: { then: 'backoff', minDelayMs: 0 },
      log: { level: 'debug', msg: 'conflict; retrying', fields: { err: message } },
    };
  }
  if (err instanceof ApiError && err.retryAfterSeconds !== undefined) {
    const retryAfterMs = err.retryAfterSeconds * 1000;
    return {
      result: 'error',
      // The server's own time: a watch event for the object must not send the same request sooner.
      next: { then: 'backoff', minDelayMs: retryAfterMs, hold: true },
      log: {
        level: 'warn',
        msg: 'the API server asked to retry later; retrying after its Retry-After',
        fields: { err: message, status: err.status, retryAfterMs },
      },
    };
  }
  if (unanswered(err)) {
    return {
      result: 'error',
      next: { then: 'backoff', minDelayMs: 0, unanswered: true },
      log: { level: 'warn', msg: 'reconcile failed: the API server did not answer; retrying with backoff', fields: { err: message } },
    };
  }
  return {
    result: 'error',
    next: { then: 'backoff', minDelayMs: 0 },
    log: { level: 'error', msg: 'reconcile failed; retrying with backoff', fields: { err: message } },
  };
}

/**
 * Whether `err` (or an error in its `cause` chain) is a request the server gave no answer to: a
 * TransportError (connection refused, reset, a stream closed before its response, a dead
 * connection). A timeout is not counted: a slow server may be working on the request.
 */
function unanswered(err: unknown): boolean {
  let transport = false;
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof ApiError || e instanceof RequestTimeoutError) return false;
    if (e instanceof TransportError || e instanceof DeadConnectionError) transport = true;
  }
  return transport;
}
