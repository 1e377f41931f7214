// One controller's own writes to the objects it reconciles, kept until its cache shows them.
import type { KubeObject } from '../client/types.js';

/** How long a reconcile waits for the cache to show the controller's own last write before it runs anyway. */
export const OWN_WRITE_WAIT_MS = 5_000;

/**
 * One controller's own writes to its primary objects (status, finalizers) whose watch events may not
 * have reached its cache yet, by uid. Two uses:
 * - a status write computed from the version such a write replaced builds on the written object, so it
 *   is conditional on the version the server has (no 409 for the operator's own write);
 * - a reconcile of the object waits (`untilSeen`) until the cache shows the write. A key added again
 *   while its reconcile runs is reconciled again the moment that one returns, microseconds after its last
 *   write and before the watch event of that write arrives: on the version the write replaced, it would
 *   act again on a state it already changed (a second call to an outside service, a finalizer applied twice).
 *
 * An entry goes once the cache shows another version.
 */
export class OwnWrites {
  private readonly byUid = new Map<string, { superseded: Set<string>; latest: KubeObject }>();
  private readonly waiting = new Map<string, () => void>();

  constructor(
    /** Entries kept at most (objects deleted before the cache caught up leave theirs): the oldest go first. */
    private readonly max = 4096,
  ) {}

  /** `obj`, or what this controller's own write made of it when `obj` is a version that write replaced. */
  latest(obj: KubeObject): KubeObject {
    const uid = obj.metadata.uid;
    const w = uid ? this.byUid.get(uid) : undefined;
    if (!uid || !w) return obj;
    const rv = obj.metadata.resourceVersion;
    if (rv && w.superseded.has(rv)) return w.latest;
    this.byUid.delete(uid);
    return obj;
  }

  /** Whether `cached` is a version this controller's own write replaced: the cache has not seen that write yet. */
  replaced(cached: KubeObject | undefined): boolean {
    const uid = cached?.metadata.uid;
    const rv = cached?.metadata.resourceVersion;
    return !!uid && !!rv && this.byUid.get(uid)?.superseded.has(rv) === true;
  }

  /** Records that a write based on `base` returned `written`. */
  remember(base: KubeObject, written: KubeObject | undefined): void {
    const uid = base.metadata.uid;
    if (!uid || !written?.metadata?.resourceVersion) return;
    const w = this.byUid.get(uid) ?? { superseded: new Set<string>(), latest: written };
    w.superseded.add(base.metadata.resourceVersion ?? '');
    w.latest = written;
    // Re-inserted, so the Map's first key is the least recently written.
    this.byUid.delete(uid);
    this.byUid.set(uid, w);
    if (this.byUid.size > this.max) this.byUid.delete(this.byUid.keys().next().value!);
  }

  /**
   * Resolves once `read()` (the cache's version of the object under queue key `key`) is not a version
   * this controller's own write replaced, after `maxWaitMs` at the latest, or when `signal` aborts.
   * `changed(key)` is what wakes it: call it for every change the cache of the primary type delivers.
   */
  async untilSeen(key: string, read: () => KubeObject | undefined, signal: AbortSignal, maxWaitMs = OWN_WRITE_WAIT_MS): Promise<void> {
    if (!this.replaced(read()) || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.waiting.get(key) === check) this.waiting.delete(key);
        resolve();
      };
      const check = (): void => {
        if (!this.replaced(read())) done();
      };
      const timer = setTimeout(done, maxWaitMs);
      signal.addEventListener('abort', done, { once: true });
      // One reconcile per key at a time, so one waiter per key.
      this.waiting.set(key, check);
    });
  }

  /** Tells a reconcile waiting in `untilSeen` for `key` that the cache's object under that key changed. */
  changed(key: string): void {
    this.waiting.get(key)?.();
  }

  /** How many objects have a write the cache may not show yet. */
  get size(): number {
    return this.byUid.size;
  }
}
