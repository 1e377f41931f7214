// The storage-version migration on the real control plane: 1,000 objects stored at v1, the storage
// version switched to v2, a run interrupted after some pages and a rerun whose continue token expires
// once, then storedVersions pruned and v1 removed from the CRD, which the API server would refuse to
// serve objects still encoded at v1 through (strategy None converts only between versions the CRD lists).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, type RawRequest } from '../../client/client.js';
import { CustomResourceDefinition } from '../../client/resources.js';
import { isNotFound } from '../../client/errors.js';
import type { KubeObject, ResourceType } from '../../client/types.js';
import { eventually, startTestEnv } from '../envtest/testenv.js';
import { program } from '../cli/main.js';
import { MigrationInterruptedError, migrateStorageVersion, storageVersionHash, type MigrationProgress } from './migrate.js';

const OBJECTS = 1000;

function crdObject(group: string, storage: 'v1' | 'v2', versions: Array<'v1' | 'v2'> = ['v1', 'v2']): CustomResourceDefinition {
  const schema = {
    openAPIV3Schema: {
      type: 'object' as const,
      properties: { spec: { type: 'object' as const, properties: { size: { type: 'integer' as const } } } },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `gadgets.${group}` },
    spec: {
      group,
      names: { kind: 'Gadget', plural: 'gadgets', singular: 'gadget', listKind: 'GadgetList' },
      scope: 'Namespaced',
      versions: versions.map((name) => ({ name, served: true, storage: name === storage, schema })),
      conversion: { strategy: 'None' },
    },
  };
}

async function inPool<T>(items: T[], limit: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * The client, except that its first continue token is made to name revision 1 and etcd is compacted past it first,
 * so that token has really expired and the API server answers 410, as for a listing that outlived the compaction
 * interval. Both are needed: the watch cache serves continue tokens of revisions it still holds, and etcd serves
 * revision 1 until it is compacted (a young cluster's is not yet). etcd serves plain HTTP on loopback (its gRPC
 * gateway), as `bosun cluster up` starts it.
 */
function expiringOnce(client: KubeClient, clusterDir: string): { client: KubeClient; expired: () => boolean } {
  let expired = false;
  const request = client.request.bind(client);
  const wrapped = Object.create(client) as KubeClient;
  wrapped.request = async <T>(req: RawRequest): Promise<T> => {
    if (!expired && typeof req.query?.continue === 'string') {
      expired = true;
      const { etcdClient } = JSON.parse(readFileSync(join(clusterDir, 'ports.json'), 'utf8')) as { etcdClient: number };
      const etcd = (path: string, body: unknown) =>
        fetch(`http://127.0.0.1:${etcdClient}${path}`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => {
          const text = await r.text();
          assert.ok(r.ok, `etcd ${path}: ${r.status} ${text}`);
          return JSON.parse(text) as { header: { revision: string } };
        });
      const { header } = await etcd('/v3/kv/range', { key: Buffer.from('/bosun-none').toString('base64') });
      await etcd('/v3/kv/compaction', { revision: header.revision, physical: true });
      const decoded = JSON.parse(Buffer.from(req.query.continue, 'base64url').toString('utf8')) as { rv: number };
      decoded.rv = 1;
      req = { ...req, query: { ...req.query, continue: Buffer.from(JSON.stringify(decoded)).toString('base64url') } };
    }
    return request<T>(req);
  };
  return { client: wrapped, expired: () => expired };
}

void test(
  `bosun crd migrate: ${OBJECTS} objects from v1 to v2, interrupted once, rerun, storedVersions pruned`,
  { timeout: 600_000 },
  async () => {
    const env = await startTestEnv();
    const client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
    const group = `m${randomBytes(4).toString('hex')}.evolve.bosun.test`;
    const name = `gadgets.${group}`;
    const type = (version: string): ResourceType => ({ group, version, kind: 'Gadget', plural: 'gadgets', namespaced: true });
    const storedVersions = async () => (await client.get(CustomResourceDefinition, undefined, name)).status?.storedVersions;
    try {
      await client.create(CustomResourceDefinition, crdObject(group, 'v1'));
      await eventually(`CRD ${name} established`, async () => {
        const crd = await client.get(CustomResourceDefinition, undefined, name);
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      });
      const ns = await env.namespace('migrate');
      const indexes = Array.from({ length: OBJECTS }, (_, i) => i);
      // Discovery can lag the Established condition by a moment; the first creates are retried until it serves.
      await eventually('the v1 endpoint to serve', async () => (await client.list(type('v1'), { namespace: ns, limit: 1 })) && true);
      await inPool(indexes, 16, (i) =>
        client.create(type('v1'), { metadata: { name: `g-${i}`, namespace: ns }, spec: { size: i } } as KubeObject),
      );
      assert.deepEqual(await storedVersions(), ['v1']);

      const crd = await client.get(CustomResourceDefinition, undefined, name);
      for (const v of crd.spec!.versions) v.storage = v.name === 'v2';
      await client.update(CustomResourceDefinition, crd);
      assert.deepEqual(await storedVersions(), ['v1', 'v2']);
      // The hash the migration waits for is the one discovery publishes (else it would wait its 30 s and give up).
      await eventually('discovery to show the v2 storageVersionHash', async () => {
        const list = await client.request<{ resources: { name: string; storageVersionHash?: string }[] }>({
          method: 'GET',
          path: `/apis/${group}/v2`,
        });
        return list.resources.find((r) => r.name === 'gadgets')?.storageVersionHash === storageVersionHash(group, 'v2', 'Gadget')
          ? true
          : undefined;
      });

      // First run: stopped after two pages of 200.
      const stop = new AbortController();
      const firstProgress: MigrationProgress[] = [];
      await assert.rejects(
        migrateStorageVersion({
          client,
          crd: name,
          pageSize: 200,
          signal: stop.signal,
          progress: (p) => {
            firstProgress.push(p);
            if (firstProgress.length === 2) stop.abort();
          },
        }),
        (e: unknown) => e instanceof MigrationInterruptedError && e.done === 400 && /interrupted after 400 of 1000/.test(e.message),
      );
      assert.deepEqual(
        firstProgress.map((p) => [p.done, p.total]),
        [
          [200, OBJECTS],
          [400, OBJECTS],
        ],
      );
      assert.deepEqual(await storedVersions(), ['v1', 'v2'], 'an interrupted run leaves storedVersions as it was');

      // Rerun, with the first continue token expired: the listing restarts and completes.
      const expiring = expiringOnce(client, env.dir);
      const progress: MigrationProgress[] = [];
      const result = await migrateStorageVersion({ client: expiring.client, crd: name, progress: (p) => progress.push(p) });
      assert.ok(expiring.expired());
      assert.equal(result.restarts, 1);
      assert.equal(result.rewritten, OBJECTS);
      assert.equal(result.gone, 0);
      assert.deepEqual(result.storedVersionsBefore, ['v1', 'v2']);
      assert.deepEqual(await storedVersions(), ['v2']);
      assert.equal(progress.at(-1)!.done, OBJECTS);
      process.stderr.write(
        `migrated ${OBJECTS} objects in ${result.elapsedMs} ms (${Math.round((OBJECTS * 1000) / result.elapsedMs)}/s; ` +
          `the interrupted run had done 400 in ${firstProgress.at(-1)!.elapsedMs} ms)\n`,
      );

      // The CLI on a migrated CRD: nothing left to do.
      const out: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
      try {
        await program().parseAsync(['node', 'bosun', 'crd', 'migrate', name, '--kubeconfig', env.kubeconfig]);
      } finally {
        process.stdout.write = write;
      }
      assert.match(out.join(''), new RegExp(`${name.replace(/\./g, '\\.')}: status.storedVersions is already \\[v2\\]`));

      // v1 can now leave the CRD, and every object still reads: none was left encoded at v1.
      const pruned = await client.get(CustomResourceDefinition, undefined, name);
      pruned.spec!.versions = pruned.spec!.versions.filter((v) => v.name === 'v2');
      await client.update(CustomResourceDefinition, pruned);
      await eventually('v1 gone from discovery', async () =>
        (await client.request({ method: 'GET', path: `/apis/${group}/v1` }).then(
          () => false,
          () => true,
        ))
          ? true
          : undefined,
      );
      let read = 0;
      await inPool(indexes, 16, async (i) => {
        const got = await client.get(type('v2'), ns, `g-${i}`);
        assert.equal((got.spec as { size: number }).size, i);
        read++;
      });
      assert.equal(read, OBJECTS);
    } finally {
      await client.delete(CustomResourceDefinition, undefined, name).catch(() => undefined);
      // The API server deletes the objects before the CRD: waited for, so the shared cluster is left as found.
      await eventually(
        `CRD ${name} deleted`,
        () =>
          client.get(CustomResourceDefinition, undefined, name).then(
            () => undefined,
            (e: unknown) => (isNotFound(e) ? true : undefined),
          ),
        120_000,
        500,
      );
      await env.cleanup();
      client.close();
    }
  },
);
