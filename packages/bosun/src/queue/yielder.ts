/** Longest stretch of continuous work, in milliseconds, before workers let the event loop run. */
export const YIELD_BUDGET_MS = 5;

/**
 * Bounds how long worker loops run without giving the event loop a turn. A reconcile that does no
 * I/O (a converged object read from the cache) resolves in a microtask, so a draining queue would
 * otherwise starve timers, socket reads, probes and Lease renewals until it is empty.
 *
 * Every worker sharing one yielder yields together: once the budget is spent, each caller awaits
 * the same `setImmediate`, so no worker keeps the microtask chain going while the others wait.
 */
export class Yielder {
  private sliceStart = performance.now();
  private pending: Promise<void> | undefined;

  constructor(private readonly budgetMs = YIELD_BUDGET_MS) {}

  /**
   * Undefined while the budget lasts (no await needed), else a promise that resolves after one
   * event-loop turn. `now` is a `performance.now()` the caller already took, to spare a second call.
   */
  maybeYield(now = performance.now()): Promise<void> | undefined {
    if (this.pending) return this.pending;
    if (now - this.sliceStart < this.budgetMs) return undefined;
    this.pending = new Promise<void>((resolve) =>
      setImmediate(() => {
        this.pending = undefined;
        this.sliceStart = performance.now();
        resolve();
      }),
    );
    return this.pending;
  }
}

/** The yielder every controller in the process shares, so several draining controllers yield in step. */
export const sharedYielder = new Yielder();
