import { type Clock, realClock } from './clock.js';
import { type RateLimiter, defaultControllerRateLimiter } from './ratelimiter.js';

/**
 * The longest delay one timer can wait: Node's setTimeout treats anything above 2^31-1 ms as 1 ms,
 * so longer delays are waited in steps of at most this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Optional observers a metrics layer plugs into a queue; every callback is synchronous and must not throw. */
export interface QueueMetrics {
  /** A key became pending (not counted when it was already pending: that add coalesced). */
  onAdd?(key: string): void;
  /** A worker took `key` after it waited `waitMs` in the queue. */
  onGet?(key: string, waitMs: number): void;
  /** A worker finished `key` after working on it for `workMs`. */
  onDone?(key: string, workMs: number): void;
  /** `key` was scheduled for a rate-limited retry. */
  onRetry?(key: string): void;
  /** The number of keys ready to be taken changed. */
  onDepth?(depth: number): void;
}

/** Options of a work queue. */
export interface WorkQueueOptions {
  /** Backoff for `addRateLimited` (default: `defaultControllerRateLimiter()`). */
  rateLimiter?: RateLimiter;
  /** Time source, injectable for tests. */
  clock?: Clock;
  /** Metrics observers. */
  metrics?: QueueMetrics;
}

/** A FIFO of keys with O(1) push and shift (Array#shift is O(n)). */
class Fifo {
  private items: (string | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(key: string): void {
    this.items.push(key);
  }

  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const key = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    // Compact once the dead prefix dominates, keeping memory proportional to the live queue.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

interface Delayed {
  key: string;
  readyAt: number;
  seq: number;
}

/** Binary min-heap on (readyAt, seq) so equal deadlines keep insertion order. */
class DelayHeap {
  private heap: Delayed[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): Delayed | undefined {
    return this.heap[0];
  }

  push(d: Delayed): void {
    const h = this.heap;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): Delayed | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.heap = [];
  }
}

function less(a: Delayed, b: Delayed): boolean {
  return a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq);
}

/**
 * The controller work queue with client-go semantics: keys are deduplicated while pending, a key is
 * never handed to two workers at once, and a key added while being processed is re-queued on `done`.
 */
export class WorkQueue {
  private readonly queue = new Fifo();
  /** Keys that need processing: queued, or added again while processing. */
  private readonly dirty = new Set<string>();
  /** Keys a worker holds; they wait in `dirty` instead of the FIFO. */
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  /** Earliest ready time per delayed key; heap entries that disagree are stale. */
  private readonly delayedAt = new Map<string, number>();
  private readonly delayHeap = new DelayHeap();
  /** Keys the server asked to come back later (a Retry-After): not run before this time, whatever adds them. */
  private readonly holdUntil = new Map<string, number>();
  private delaySeq = 0;
  private delayTimer: unknown = undefined;
  private delayTimerAt = Infinity;
  private shuttingDown = false;
  private drainWaiters: (() => void)[] = [];

  private readonly limiter: RateLimiter;
  private readonly clock: Clock;
  private readonly metrics: QueueMetrics;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.limiter = opts.rateLimiter ?? defaultControllerRateLimiter(this.clock);
    this.metrics = opts.metrics ?? {};
  }

  /** Marks `key` as needing processing; a no-op if it is already pending or the queue is shut down. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    if (this.heldFor(key) > 0) {
      this.addAfter(key, this.heldFor(key));
      return;
    }
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    this.metrics.onAdd?.(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds `key` after `delayMs`; if it is already waiting, the earlier deadline wins (client-go delaying queue). */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.now() + delayMs;
    const existing = this.delayedAt.get(key);
    if (existing !== undefined && existing <= readyAt) return;
    this.delayedAt.set(key, readyAt);
    this.delayHeap.push({ key, readyAt, seq: this.delaySeq++ });
    this.armDelayTimer();
  }

  /**
   * Re-adds `key` after its backoff; `minDelayMs` is a floor the caller knows (e.g. a 429's Retry-After),
   * so the wait is max(minDelayMs, limiter delay). `unanswered`: the failure got no answer from the
   * server, and the limiter's `whenUnanswered` decides (see TokenBucketRateLimiter). `hold`: the
   * server itself asked for `minDelayMs` (Retry-After), so no add runs the key sooner, not even a
   * watch event's (a client-chosen backoff, without it, gives way to events as in client-go).
   */
  addRateLimited(key: string, minDelayMs = 0, opts: { unanswered?: boolean; hold?: boolean } = {}): void {
    if (this.shuttingDown) return;
    this.metrics.onRetry?.(key);
    if (opts.hold && minDelayMs > 0) this.holdUntil.set(key, this.clock.now() + minDelayMs);
    const delay = opts.unanswered && this.limiter.whenUnanswered ? this.limiter.whenUnanswered(key) : this.limiter.when(key);
    this.addAfter(key, Math.max(minDelayMs, delay));
  }

  /** Clears `key`'s backoff history; call after it was processed successfully. */
  forget(key: string): void {
    this.limiter.forget(key);
    this.holdUntil.delete(key);
  }

  /** How many rate-limited retries `key` has had since it was last forgotten. */
  numRequeues(key: string): number {
    return this.limiter.numRequeues(key);
  }

  /** Waits for the next key and marks it processing; resolves undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Releases `key` from processing; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.metrics.onDone?.(key, this.clock.now() - started);
    if (this.shuttingDown) {
      if (this.processing.size === 0) this.resolveDrain();
      return;
    }
    if (!this.dirty.has(key)) return;
    if (this.heldFor(key) > 0) {
      this.dirty.delete(key);
      this.addedAt.delete(key);
      this.addAfter(key, this.heldFor(key));
      return;
    }
    this.enqueue(key);
  }

  /** The ms `key` must still wait for the server's Retry-After (0: none, or over). */
  private heldFor(key: string): number {
    const until = this.holdUntil.get(key);
    if (until === undefined) return 0;
    const left = until - this.clock.now();
    if (left <= 0) this.holdUntil.delete(key);
    return Math.max(0, left);
  }

  /** Number of keys ready to be taken (client-go Len: excludes keys being processed or delayed). */
  len(): number {
    return this.queue.length;
  }

  /** Number of keys workers currently hold. */
  processingCount(): number {
    return this.processing.size;
  }

  /** Number of keys waiting for a delay to expire. */
  delayedCount(): number {
    return this.delayedAt.size;
  }

  /** Whether `shutdown` or `shutDownWithDrain` has been called. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops the queue: adds are ignored, pending and delayed keys are dropped, blocked `get` calls resolve undefined. */
  shutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.delayTimer !== undefined) this.clock.clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    this.delayHeap.clear();
    this.delayedAt.clear();
    this.holdUntil.clear();
    this.queue.clear();
    // Dirty keys of in-flight items are dropped too; nothing will be requeued after shutdown.
    this.dirty.clear();
    this.addedAt.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.metrics.onDepth?.(0);
    if (this.processing.size === 0) this.resolveDrain();
  }

  /** Shuts down, then resolves once every key a worker holds has been marked `done`. */
  shutDownWithDrain(): Promise<void> {
    this.shutdown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private resolveDrain(): void {
    for (const r of this.drainWaiters.splice(0)) r();
  }

  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.metrics.onDepth?.(this.queue.length);
  }

  private take(key: string): string {
    this.processing.add(key);
    this.dirty.delete(key);
    const now = this.clock.now();
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    this.startedAt.set(key, now);
    this.metrics.onGet?.(key, added === undefined ? 0 : now - added);
    this.metrics.onDepth?.(this.queue.length);
    return key;
  }

  private armDelayTimer(): void {
    const next = this.delayHeap.peek();
    if (!next) return;
    if (this.delayTimer !== undefined && this.delayTimerAt <= next.readyAt) return;
    if (this.delayTimer !== undefined) this.clock.clearTimeout(this.delayTimer);
    const now = this.clock.now();
    // A deadline beyond one timer's reach is waited in steps; fireDelayed re-arms for the rest.
    const wait = Math.min(Math.max(0, next.readyAt - now), MAX_TIMER_MS);
    this.delayTimerAt = now + wait;
    this.delayTimer = this.clock.setTimeout(() => this.fireDelayed(), wait);
    // A pending retry must not keep the process alive on its own.
    (this.delayTimer as { unref?: () => void } | undefined)?.unref?.();
  }

  private fireDelayed(): void {
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    const now = this.clock.now();
    for (let d = this.delayHeap.peek(); d && d.readyAt <= now; d = this.delayHeap.peek()) {
      this.delayHeap.pop();
      if (this.delayedAt.get(d.key) !== d.readyAt) continue;
      this.delayedAt.delete(d.key);
      this.add(d.key);
    }
    this.armDelayTimer();
  }
}
