// Progress of the first list of large kinds: a cache of tens of thousands of objects takes a while to
// sync, and a silent operator in that time looks hung.
import type { ResourceType } from '../../client/types.js';
import type { Logger } from '../../telemetry/logger.js';

/** What the reporter reads of a manager's caches (a CacheSet fits). */
export interface SyncingCaches {
  entries(): { type: Pick<ResourceType, 'kind' | 'group' | 'plural'>; informer: { hasSynced(): boolean; store: { size: number } } }[];
  hasSynced(): boolean;
}

/** Options of `reportCacheSync`. */
export interface CacheSyncProgressOptions {
  /** Between two reports; the first comes after one interval, so kinds that sync sooner are never reported. */
  intervalMs: number;
  /** Stops reporting (the manager stopped). */
  signal?: AbortSignal;
}

/**
 * Logs, every `intervalMs` until the caches have synced, one line per kind still listing:
 * 'synced N objects of kind X so far'. Returns the function that stops it.
 */
export function reportCacheSync(caches: SyncingCaches, log: Logger, opts: CacheSyncProgressOptions): () => void {
  const started = Date.now();
  const timer = setInterval(() => {
    if (caches.hasSynced()) {
      stop();
      return;
    }
    const byKind = new Map<string, { kind: string; resource: string; objects: number }>();
    for (const { type, informer } of caches.entries()) {
      if (informer.hasSynced()) continue;
      const resource = type.group ? `${type.plural}.${type.group}` : type.plural;
      const k = byKind.get(resource) ?? { kind: type.kind, resource, objects: 0 };
      // Informers of one kind with other label scopes hold some objects twice: an estimate, said as one.
      k.objects += informer.store.size;
      byKind.set(resource, k);
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    for (const k of byKind.values()) {
      log.info({ resource: k.resource, objects: k.objects, seconds }, `synced ${k.objects} objects of kind ${k.kind} so far`);
    }
  }, opts.intervalMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    opts.signal?.removeEventListener('abort', stop);
  };
  opts.signal?.addEventListener('abort', stop, { once: true });
  return stop;
}
