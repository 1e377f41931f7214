// The one concurrency limit of the benchmarks, so every contender's creates and the floors' writes
// are bounded alike.

/**
 * Runs `fn` over `items` with at most `limit` in flight, each started as soon as a slot is free;
 * `items` may be an async stream, taken from as the items arrive. Rejects with the first failure.
 */
export async function pool<T>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  const it: Iterator<T> | AsyncIterator<T> = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let r = await it.next(); !r.done; r = await it.next()) await fn(r.value);
    }),
  );
}

/** A bound of `limit` tasks in flight, for work that arrives as events rather than as a list (see `pool`). */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
