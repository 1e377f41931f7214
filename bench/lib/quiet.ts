// When a control plane counts as idle for the benchmark's request counters (see requestCounts in run.ts).

/**
 * Whether anything moved between two readings of the counters: a request other than opening a watch
 * (a watch stays open and counts once), or bytes answered or sent as watch events. An operator that
 * streams its initial state through a watch (WatchList, `sendInitialEvents`) makes no list request,
 * so only the watch-event bytes show it still syncing.
 */
export function countersMoved(last: ReadonlyMap<string, number>, now: ReadonlyMap<string, number>): boolean {
  for (const [k, v] of now) if (!k.startsWith('WATCH ') && v !== (last.get(k) ?? 0)) return true;
  return false;
}

/** How long a convergence of `n` Messages may take before the run is abandoned: 15 minutes, or 60 ms per Message above that. */
export function convergeLimitMs(n: number): number {
  return Math.max(900_000, n * 60);
}
