import { type Clock, realClock } from './clock.js';

/** Decides how long a key waits before it is retried; the contract of client-go's workqueue.RateLimiter. */
export interface RateLimiter {
  /** Records one more retry of `key` and returns the delay in milliseconds before it may run. */
  when(key: string): number;
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
}

/** Per-key exponential backoff: base, 2×base, 4×base, … capped at max (client-go ItemExponentialFailureRateLimiter). */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly base: number;
  private readonly max: number;

  constructor(opts: ExponentialOptions = {}) {
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 1_000_000;
  }

  when(key: string): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    // 2**exp overflows to Infinity long before it matters; Math.min keeps the cap exact.
    return Math.min(this.base * 2 ** exp, this.max);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
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
