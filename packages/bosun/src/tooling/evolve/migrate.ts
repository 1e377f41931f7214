// Storage-version migration: after a CRD's storage version changes, objects written before stay encoded
// at the old version in etcd until something writes them again, and status.storedVersions keeps listing
// the old version, so it can never be removed from the CRD. This rewrites each object once and then
// records that only the storage version is left.
import { createHash } from 'node:crypto';
import { bosunError } from '../../errors.js';
import type { KubeClient } from '../../client/client.js';
import { resourcePath } from '../../client/client.js';
import { isConflict, isGone, isNotFound } from '../../client/errors.js';
import { CustomResourceDefinition } from '../../client/resources.js';
import type { KubeObject, ResourceType } from '../../client/types.js';

/** The migration cannot finish: no such CRD, an object the API server refuses to rewrite, or the storage version changed meanwhile. */
export class CrdMigrationError extends bosunError('BOSUN_CRD_MIGRATION') {
  override name = 'CrdMigrationError';
}

/** The migration was stopped before every object was rewritten; status.storedVersions was left as it was. */
export class MigrationInterruptedError extends bosunError('BOSUN_MIGRATION_INTERRUPTED') {
  override name = 'MigrationInterruptedError';
  constructor(
    message: string,
    /** Objects rewritten (or found deleted) before the stop. */
    readonly done: number,
  ) {
    super(message);
  }
}

/** Where a migration is, reported after each page. */
export interface MigrationProgress {
  crd: string;
  /** The storage version objects are rewritten at. */
  version: string;
  /** Objects rewritten (or found deleted) so far in this run. */
  done: number;
  /** Objects the listing holds, as the API server estimated on its first page (at least `done`). */
  total: number;
  /** Objects per second over this run. */
  perSecond: number;
  elapsedMs: number;
}

/** Options of `migrateStorageVersion`. */
export interface MigrateOptions {
  client: KubeClient;
  /** The CRD name, `<plural>.<group>`. */
  crd: string;
  /** Objects per list page (default 500). */
  pageSize?: number;
  /** Rewrites in flight at once (default 8). */
  concurrency?: number;
  /** Stops the migration: the objects in flight finish, storedVersions stays as it was, MigrationInterruptedError is thrown. */
  signal?: AbortSignal;
  progress?: (p: MigrationProgress) => void;
  /** The field manager of the rewrites (default `bosun-crd-migrate`). */
  fieldManager?: string;
  /** How long to wait for the API server's discovery to show the storage version (default 30 s). */
  storageWaitMs?: number;
}

/** What a migration did. */
export interface MigrationResult {
  crd: string;
  storageVersion: string;
  /** status.storedVersions before. */
  storedVersionsBefore: string[];
  /** status.storedVersions after: `[storageVersion]`. */
  storedVersions: string[];
  /** Objects rewritten. */
  rewritten: number;
  /** Objects deleted between the listing and their rewrite. */
  gone: number;
  /** Rewrites that met a newer version (409) and were retried on it. */
  conflicts: number;
  /** Listings restarted because the continue token expired (410). */
  restarts: number;
  elapsedMs: number;
}

const MAX_CONFLICT_RETRIES = 5;

/**
 * The storageVersionHash discovery shows for a resource stored at group/version/kind (as the API server
 * computes it): it lets the migration wait until the API server really writes at the new storage version.
 */
export function storageVersionHash(group: string, version: string, kind: string): string {
  return createHash('sha256').update(`${group}/${version}/${kind}`).digest().subarray(0, 8).toString('base64');
}

interface ListPage {
  metadata?: { continue?: string; remainingItemCount?: number };
  items?: KubeObject[];
}

/**
 * Rewrites every object of a CRD at its storage version (a no-op PUT of each object as read: the API
 * server re-encodes it at the storage version), then sets status.storedVersions to the storage version
 * alone. Interrupted (signal) or failed, it leaves storedVersions untouched; run again, it completes.
 */
export async function migrateStorageVersion(o: MigrateOptions): Promise<MigrationResult> {
  const { client, signal } = o;
  const started = Date.now();
  const fieldManager = o.fieldManager ?? 'bosun-crd-migrate';
  const crd = await readCrd(client, o.crd, signal);
  const storage = crd.spec?.versions.find((v) => v.storage);
  if (crd.spec === undefined || storage === undefined) {
    throw new CrdMigrationError(`CRD ${o.crd} has no storage version in spec.versions. Fix: mark one version storage: true`);
  }
  const storedVersionsBefore = [...(crd.status?.storedVersions ?? [])];
  // The API server's own record: every object is at the storage version already.
  if (storedVersionsBefore.length === 1 && storedVersionsBefore[0] === storage.name) {
    const none = { rewritten: 0, gone: 0, conflicts: 0, restarts: 0 };
    return { crd: o.crd, storageVersion: storage.name, storedVersionsBefore, storedVersions: storedVersionsBefore, ...none, elapsedMs: 0 };
  }
  const type: ResourceType = {
    group: crd.spec.group,
    version: storage.name,
    kind: crd.spec.names.kind,
    plural: crd.spec.names.plural,
    namespaced: crd.spec.scope === 'Namespaced',
  };
  await awaitStorageVersion(client, type, o.storageWaitMs ?? 30_000, signal);

  const pageSize = o.pageSize ?? 500;
  const concurrency = Math.max(1, o.concurrency ?? 8);
  const done = new Set<string>();
  const result = { rewritten: 0, gone: 0, conflicts: 0, restarts: 0 };
  let total = 0;
  const report = () => {
    const elapsedMs = Date.now() - started;
    o.progress?.({
      crd: o.crd,
      version: storage.name,
      done: done.size,
      total: Math.max(total, done.size),
      perSecond: elapsedMs > 0 ? (done.size * 1000) / elapsedMs : 0,
      elapsedMs,
    });
  };
  const interrupted = () =>
    new MigrationInterruptedError(
      `migration of ${o.crd} to ${storage.name} interrupted after ${done.size} of ${Math.max(total, done.size)} objects; ` +
        'status.storedVersions is unchanged. Fix: run bosun crd migrate again to finish',
      done.size,
    );

  let token: string | undefined;
  let first = true;
  for (;;) {
    if (signal?.aborted) throw interrupted();
    let page: ListPage;
    try {
      page = await client.request<ListPage>({
        method: 'GET',
        path: resourcePath(type),
        query: { limit: pageSize, continue: token },
        signal,
        target: { verb: 'list', kind: type.kind },
      });
    } catch (err) {
      if (signal?.aborted) throw interrupted();
      // An expired continue token: list again from the start; what is done is remembered and skipped.
      if (isGone(err) && token !== undefined) {
        result.restarts++;
        token = undefined;
        first = true;
        continue;
      }
      throw err;
    }
    const items = page.items ?? [];
    if (first) {
      total = items.length + (page.metadata?.remainingItemCount ?? 0);
      first = false;
    }
    const todo = items.filter((it) => !done.has(it.metadata.uid ?? keyOf(it)));
    await pool(todo, concurrency, signal, async (obj) => {
      const outcome = await rewrite(client, type, o.crd, obj, fieldManager, signal, result);
      if (outcome === 'aborted') return;
      result[outcome]++;
      done.add(obj.metadata.uid ?? keyOf(obj));
    });
    if (signal?.aborted) throw interrupted();
    report();
    token = page.metadata?.continue || undefined;
    if (token === undefined) break;
  }

  // Re-read: pruning must not drop a storage version someone switched to while this ran.
  const after = await readCrd(client, o.crd, signal);
  const storageNow = after.spec?.versions.find((v) => v.storage)?.name;
  if (storageNow !== storage.name) {
    throw new CrdMigrationError(
      `CRD ${o.crd}: the storage version changed from ${storage.name} to ${storageNow ?? 'none'} during the migration; ` +
        'status.storedVersions is unchanged. Fix: run bosun crd migrate again',
    );
  }
  const current = after.status?.storedVersions ?? [];
  if (!(current.length === 1 && current[0] === storage.name)) {
    if (signal?.aborted) throw interrupted();
    try {
      await client.patch(
        CustomResourceDefinition,
        undefined,
        o.crd,
        [
          // The test makes the write fail, rather than lose a version, if storedVersions changed since the read.
          { op: 'test', path: '/status/storedVersions', value: current },
          { op: 'replace', path: '/status/storedVersions', value: [storage.name] },
        ],
        'json',
        { subresource: 'status', fieldManager },
      );
    } catch (err) {
      throw new CrdMigrationError(
        `CRD ${o.crd}: every object is at ${storage.name}, but status.storedVersions could not be set to [${storage.name}] ` +
          `(${(err as Error).message}). Fix: run bosun crd migrate again`,
      );
    }
  }
  return {
    crd: o.crd,
    storageVersion: storage.name,
    storedVersionsBefore,
    storedVersions: [storage.name],
    ...result,
    elapsedMs: Date.now() - started,
  };
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

async function readCrd(client: KubeClient, name: string, signal: AbortSignal | undefined): Promise<CustomResourceDefinition> {
  try {
    return await client.get(CustomResourceDefinition, undefined, name, signal);
  } catch (err) {
    if (isNotFound(err)) {
      throw new CrdMigrationError(`CRD ${name} does not exist. Fix: name it as <plural>.<group> (kubectl get crd lists them)`);
    }
    throw err;
  }
}

// The API server starts encoding at a new storage version a moment after the CRD changes; a rewrite before
// that would be a no-op at the old version, and pruning storedVersions then would strand those objects.
async function awaitStorageVersion(client: KubeClient, type: ResourceType, waitMs: number, signal: AbortSignal | undefined): Promise<void> {
  const want = storageVersionHash(type.group, type.version, type.kind);
  const until = Date.now() + waitMs;
  let seen: string | undefined;
  for (;;) {
    const list = await client.request<{ resources?: { name: string; storageVersionHash?: string }[] }>({
      method: 'GET',
      path: `/apis/${type.group}/${type.version}`,
      signal,
      target: { verb: 'get', kind: 'APIResourceList', name: `${type.group}/${type.version}` },
    });
    seen = list.resources?.find((r) => r.name === type.plural)?.storageVersionHash;
    // An API server that publishes no hash cannot be checked; it is trusted.
    if (seen === undefined || seen === want) return;
    if (Date.now() > until) {
      throw new CrdMigrationError(
        `${type.plural}.${type.group}: the API server's discovery still shows storageVersionHash ${seen}, not ${want} of ${type.version}, ${waitMs} ms after the CRD changed. ` +
          'Fix: wait until every API server has the new CRD, then run bosun crd migrate again',
      );
    }
    await new Promise<void>((r) => setTimeout(r, 200));
  }
}

type Outcome = 'rewritten' | 'gone' | 'aborted';

async function rewrite(
  client: KubeClient,
  type: ResourceType,
  crd: string,
  obj: KubeObject,
  fieldManager: string,
  signal: AbortSignal | undefined,
  counts: { conflicts: number },
): Promise<Outcome> {
  const { namespace, name } = obj.metadata;
  let current = obj;
  for (let attempt = 0; ; attempt++) {
    try {
      await client.update(type, current, { fieldManager, signal });
      return 'rewritten';
    } catch (err) {
      if (signal?.aborted) return 'aborted';
      if (isNotFound(err)) return 'gone';
      if (isConflict(err) && attempt < MAX_CONFLICT_RETRIES) {
        counts.conflicts++;
        try {
          current = await client.get(type, namespace, name!, signal);
        } catch (getErr) {
          if (signal?.aborted) return 'aborted';
          if (isNotFound(getErr)) return 'gone';
          throw getErr;
        }
        continue;
      }
      throw new CrdMigrationError(
        `${crd} ${namespace ? `${namespace}/` : ''}${name}: the no-op rewrite at ${type.version} was refused (${(err as Error).message}); ` +
          'status.storedVersions is unchanged. Fix: make the object valid (or delete it), then run bosun crd migrate again',
      );
    }
  }
}

// At most `limit` calls in flight; after an abort no new call starts, and the ones in flight are awaited.
async function pool<T>(items: readonly T[], limit: number, signal: AbortSignal | undefined, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined && !signal?.aborted) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
