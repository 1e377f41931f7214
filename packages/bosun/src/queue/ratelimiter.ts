import { type Clock, realClock } from './clock.js';

/** Decides how long a key waits before it is retried; the contract of client-go's workqueue.RateLimiter. */
export interface RateLimiter {
  /** Records one more retry of `key` and returns the delay in milliseconds before it may run. */
  when(key: string): number;
  /**
   * Like `when`, for a failure the API server never answered (connection refused, reset, dead): see
   * `TokenBucketRateLimiter.whenUnanswered` for why it may be treated apart. Absent: `when` is used.
   */
  whenUnanswered?(key: string): number;
  /** Clears the retry history of `key`, typically after a successful reconcile. */
  forget(key: string): void;
  /** How many times `key` has been retried since it was last forgotten. */
  numRequeues(key: string): number;
}

/** Options of the per-item exponential limiter. */
export interface ExponentialOptions {
  /** First delay in ms (default 5). */
  baseDelayMs?: number;
  /** Ceiling of the delay in ms (default 1,000,000 = 1000 s). */
  maxDelayMs?: number;
  /**
   * Ceiling of the delay after a failure the server never answered (default 30 s, the watcher's
   * reconnect cap): once the server is back, no key waits longer than this for its retry.
   */
  maxUnansweredDelayMs?: number;
}

/** Per-key exponential backoff: base, 2×base, 4×base, … capped at max (client-go ItemExponentialFailureRateLimiter). */
export class ItemExponentialRateLimiter implements RateLimiter {
  /** Answered failures per key since its last forget: the exponent of its next delay. */
  private readonly failures = new Map<string, number>();
  /** Unanswered failures per key since the server last answered for it. */
  private readonly unanswered = new Map<string, number>();
  /** Every retry per key since its last forget, either kind. */
  private readonly requeues = new Map<string, number>();
  private readonly base: number;
  private readonly max: number;
  private readonly maxUnanswered: number;

  constructor(opts: ExponentialOptions = {}) {
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 1_000_000;
    this.maxUnanswered = Math.min(this.max, opts.maxUnansweredDelayMs ?? 30_000);
  }

  when(key: string): number {
    // The server answered, so it is back: failures while it was away were not this key's and set no pace.
    this.unanswered.delete(key);
    return this.step(this.failures, key, this.max);
  }

  /**
   * The same doubling on a count of its own, capped lower: a server that is away is retried every 30 s
   * at most per key, so a long outage does not leave keys 1000 s from their retry once the server is
   * back, and the first failure it answers afterwards starts at the base delay.
   */
  whenUnanswered(key: string): number {
    return this.step(this.unanswered, key, this.maxUnanswered);
  }

  forget(key: string): void {
    this.failures.delete(key);
    this.unanswered.delete(key);
    this.requeues.delete(key);
  }

  private step(counts: Map<string, number>, key: string, cap: number): number {
    const exp = counts.get(key) ?? 0;
    counts.set(key, exp + 1);
    this.requeues.set(key, (this.requeues.get(key) ?? 0) + 1);
    // 2**exp overflows to Infinity long before it matters; Math.min keeps the cap exact.
    return Math.min(this.base * 2 ** exp, cap);
  }

  numRequeues(key: string): number {
    return this.requeues.get(key) ?? 0;
  }
}

/** Options of the overall token bucket. */
export interface TokenBucketOptions {
  /** Sustained rate in tokens per second (default 10). */
  qps?: number;
  /** Bucket size: how many retries may go at once before the rate applies (default 100). */
  burst?: number;
  /** Time source, injectable for tests. */
  clock?: Clock;
}

/**
 * One bucket shared by all keys, bounding the overall retry rate (client-go BucketRateLimiter).
 * Each `when` reserves a token now or in the future, like golang.org/x/time/rate's Reserve.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(opts: TokenBucketOptions = {}) {
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.clock = opts.clock ?? realClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  when(_key: string): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    // A negative balance is debt: the reservation is due when the bucket refills to zero.
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  /*
   * A failure the server never answered takes no token. The bucket bounds the load that retries put
   * on a server that answers them (a webhook failing every request, a 500 on every write); booked at
   * failure time, it also turns an outage into a queue of debts: F reconciles failing while the
   * server is down are retried (F - burst) / qps s after the first, however soon the server is back
   * (921 failures in a 6 s outage: 77 s of recovery at 10/s). Those attempts cost the server nothing
   * (no connection, or one that broke), and their retries after it is back are bounded without the
   * bucket: each key waits its own doubling backoff, and a controller runs at most `workers`
   * reconciles at once. As soon as the server answers again, failures are answered ones and go
   * through the bucket as before, so a server that comes back overloaded (429, 5xx) is protected.
   */
  whenUnanswered(_key: string): number {
    return 0;
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** Combines limiters: the delay is the largest any of them asks for (client-go MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let delay = 0;
    // Every limiter must see the retry, so no short-circuit.
    for (const l of this.limiters) delay = Math.max(delay, l.when(key));
    return delay;
  }

  whenUnanswered(key: string): number {
    let delay = 0;
    for (const l of this.limiters) delay = Math.max(delay, l.whenUnanswered ? l.whenUnanswered(key) : l.when(key));
    return delay;
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    let n = 0;
    for (const l of this.limiters) n = Math.max(n, l.numRequeues(key));
    return n;
  }
}

/** client-go's default controller limiter: max of per-item 5 ms→1000 s exponential and a 10 qps/100 burst bucket. */
export function defaultControllerRateLimiter(clock: Clock = realClock): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000 }),
    new TokenBucketRateLimiter({ qps: 10, burst: 100, clock }),
  );
}
