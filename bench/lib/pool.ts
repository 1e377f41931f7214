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
