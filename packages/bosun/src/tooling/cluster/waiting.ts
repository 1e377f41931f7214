// A wait of minutes without a line looks like a hang: the person at the terminal is told what is
// awaited, and for how long, now and then.

/** Options of `stillWaiting`. */
export interface StillWaitingOptions {
  /** The first line comes after this long (default 5 s): short waits stay silent. */
  afterMs?: number;
  /** Then one line per this long (default 15 s). */
  everyMs?: number;
  /** The clock (ms); tests pass a fake one. */
  now?: () => number;
}

/**
 * A function a polling loop calls on each turn: it writes `bosun:   still waiting for <what> (N s)`
 * to `progress` once the wait is `afterMs` old, then every `everyMs`.
 */
export function stillWaiting(progress: (line: string) => void, what: string, opts: StillWaitingOptions = {}): () => void {
  const now = opts.now ?? Date.now;
  const started = now();
  const everyMs = opts.everyMs ?? 15_000;
  let next = started + (opts.afterMs ?? 5_000);
  return () => {
    const t = now();
    if (t < next) return;
    progress(`bosun:   still waiting for ${what} (${Math.round((t - started) / 1000)} s)`);
    while (next <= t) next += everyMs;
  };
}
