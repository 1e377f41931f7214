// The ctx write helpers without an API server: what they send, what they refuse, and when.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { KubeClient } from '../client/client.js';
import { ConfigMap, Namespace } from '../client/resources.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import { createLogger } from '../telemetry/logger.js';
import { ReconcileContext, type CacheReader, type PrimaryRef } from './context.js';
import { OwnerScopeError } from './owner.js';

const Owner: ResourceType = { group: 'example.dev', version: 'v1', kind: 'Owner', plural: 'owners', namespaced: true };
const ClusterOwner: ResourceType = {
  group: 'example.dev',
  version: 'v1',
  kind: 'ClusterOwner',
  plural: 'clusterowners',
  namespaced: false,
};

/** A client that records every call and its options instead of sending it. */
function recordingClient() {
  const calls: { verb: string; opts: { signal?: AbortSignal } | undefined }[] = [];
  const record = (verb: string, opts: unknown, result: unknown = {}) => {
    const o = opts as { signal?: AbortSignal } | undefined;
    calls.push({ verb, opts: o });
    if (o?.signal?.aborted) return Promise.reject(o.signal.reason as Error);
    return Promise.resolve(result);
  };
  const client = {
    apply: (_t: ResourceType, obj: KubeObject, opts: unknown) => record('apply', opts, obj),
    applyStatus: (_t: ResourceType, obj: KubeObject, opts: unknown) => record('applyStatus', opts, obj),
    patch: (_t: ResourceType, _ns: string | undefined, name: string, _p: unknown, _pt: string, opts: unknown) =>
      record('patch', opts, { metadata: { name, resourceVersion: '2' } }),
    delete: (_t: ResourceType, _ns: string | undefined, _name: string, opts: unknown) => record('delete', opts),
  };
  return { client: client as unknown as KubeClient, calls };
}

/** A cache holding exactly the given objects. */
function cacheOf(objs: { type: ResourceType; obj: KubeObject }[]): CacheReader {
  const find = (type: ResourceType, ns: string | undefined, name: string) =>
    objs.find((o) => o.type === type && o.obj.metadata.namespace === ns && o.obj.metadata.name === name)?.obj;
  return {
    get: <T extends KubeObject>(type: ResourceType, ns: string | undefined, name: string) => find(type, ns, name) as T | undefined,
    list: () => [],
    ownedBy: () => [],
  } as unknown as CacheReader;
}

const owner: KubeObject = { metadata: { namespace: 'team-a', name: 'o', uid: 'uid-o', resourceVersion: '1', generation: 1 }, status: {} };
const clusterOwner: KubeObject = { metadata: { name: 'co', uid: 'uid-co', resourceVersion: '1', generation: 1 } };

function contextFor(primary: PrimaryRef, obj: KubeObject, signal = new AbortController().signal) {
  const { client, calls } = recordingClient();
  const sink = { normal() {}, warning() {} };
  const ctx = new ReconcileContext(
    'test',
    client,
    cacheOf([{ type: primary.type, obj }]),
    createLogger({ level: 'silent' }),
    sink,
    'bosun/test',
    signal,
    primary,
  );
  return { ctx, calls };
}

test('applyChild refuses a child in another namespace than its owner, naming both and the fix, without a request', async () => {
  const { ctx, calls } = contextFor({ type: Owner, namespace: 'team-a', name: 'o' }, owner);
  await assert.rejects(ctx.applyChild(ConfigMap, { metadata: { name: 'c', namespace: 'team-b' }, data: {} }), (err: unknown) => {
    assert.ok(err instanceof OwnerScopeError, `an OwnerScopeError, got ${String(err)}`);
    assert.match(err.message, /ConfigMap team-b\/c/);
    assert.match(err.message, /Owner team-a\/o/);
    assert.match(err.message, /namespace team-a/);
    return true;
  });
  assert.deepEqual(calls, []);
});

test('applyChild refuses a cluster-scoped child of a namespaced owner', async () => {
  const { ctx, calls } = contextFor({ type: Owner, namespace: 'team-a', name: 'o' }, owner);
  await assert.rejects(ctx.applyChild(Namespace, { metadata: { name: 'child-ns' } }), (err: unknown) => {
    assert.ok(err instanceof OwnerScopeError, `an OwnerScopeError, got ${String(err)}`);
    assert.match(err.message, /Namespace child-ns/);
    assert.match(err.message, /cluster-scoped/);
    return true;
  });
  assert.deepEqual(calls, []);
});

test("applyChild accepts a namespaced child of a cluster-scoped owner, and a child in its owner's namespace", async () => {
  const c = contextFor({ type: ClusterOwner, name: 'co' }, clusterOwner);
  assert.equal(await c.ctx.applyChild(ConfigMap, { metadata: { name: 'c', namespace: 'anywhere' }, data: {} }), true);
  assert.deepEqual(
    c.calls.map((x) => x.verb),
    ['apply'],
  );
  const n = contextFor({ type: Owner, namespace: 'team-a', name: 'o' }, owner);
  assert.equal(await n.ctx.applyChild(ConfigMap, { metadata: { name: 'c' }, data: {} }), true);
  assert.deepEqual(
    n.calls.map((x) => x.verb),
    ['apply'],
  );
});

test('applyChild refuses a namespaced child of a cluster-scoped owner that names no namespace', async () => {
  const { ctx, calls } = contextFor({ type: ClusterOwner, name: 'co' }, clusterOwner);
  await assert.rejects(ctx.applyChild(ConfigMap, { metadata: { name: 'c' }, data: {} }), OwnerScopeError);
  assert.deepEqual(calls, []);
});

test('every write helper passes ctx.signal to the client', async () => {
  const { ctx, calls } = contextFor({ type: Owner, namespace: 'team-a', name: 'o' }, owner);
  await ctx.applyChild(ConfigMap, { metadata: { name: 'c' }, data: { a: '1' } });
  await ctx.updateStatus(Owner, owner, { fields: { phase: 'Ready' } });
  await ctx.deleteIfExists(ConfigMap, { metadata: { namespace: 'team-a', name: 'c' } });
  assert.equal(calls.length, 3);
  for (const c of calls) assert.equal(c.opts?.signal, ctx.signal, `${c.verb} carries ctx.signal`);
});

test('with an aborted signal every write helper rejects without sending anything', async () => {
  const ac = new AbortController();
  ac.abort(new Error('leadership lost'));
  const { ctx, calls } = contextFor({ type: Owner, namespace: 'team-a', name: 'o' }, owner, ac.signal);
  await assert.rejects(ctx.applyChild(ConfigMap, { metadata: { name: 'c' }, data: { a: '1' } }), /leadership lost/);
  await assert.rejects(ctx.updateStatus(Owner, owner, { fields: { phase: 'Ready' } }), /leadership lost/);
  await assert.rejects(ctx.deleteIfExists(ConfigMap, { metadata: { namespace: 'team-a', name: 'c' } }), /leadership lost/);
  assert.deepEqual(calls, [], 'no request was made');
});

test('appliedAnnotation is a valid annotation name for any field manager', async () => {
  const { appliedAnnotation } = await import('./context.js');
  const valid = /^applied\.bosun\.dev\/([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
  assert.equal(appliedAnnotation('bosun/message'), 'applied.bosun.dev/bosun.message');
  for (const fm of ['bosun/message', 'x', '/weird name!/', 'a'.repeat(128), `bosun/${'c-'.repeat(50)}`])
    assert.match(appliedAnnotation(fm), valid, fm);
  assert.notEqual(appliedAnnotation(`m/${'a'.repeat(80)}1`), appliedAnnotation(`m/${'a'.repeat(80)}2`));
});

test('each controller of a manager gets its own field manager of at most 128 characters', () => {
  assert.equal(ReconcileContext.fieldManagerFor('bosun', 'message'), 'bosun/message');
  assert.notEqual(ReconcileContext.fieldManagerFor('bosun', 'writer-a'), ReconcileContext.fieldManagerFor('bosun', 'writer-b'));
  const long = (c: string) => ReconcileContext.fieldManagerFor('bosun', `${'x'.repeat(130)}${c}`);
  assert.ok(long('a').length <= 128);
  assert.notEqual(long('a'), long('b'));
});

test('updateStatus is conditional on the version it read, and a second write in one reconcile builds on the first', async () => {
  const bodies: { metadata: { resourceVersion?: string }; status: Record<string, unknown> }[] = [];
  let rv = 1;
  const client = {
    patch: (_t: ResourceType, _ns: string | undefined, name: string, body: (typeof bodies)[number]) => {
      bodies.push(body);
      return Promise.resolve({
        metadata: { name, namespace: 'team-a', uid: 'uid-o', generation: 1, resourceVersion: String(++rv) },
        status: body.status,
      });
    },
  } as unknown as KubeClient;
  const read: KubeObject = { metadata: { namespace: 'team-a', name: 'o', uid: 'uid-o', resourceVersion: '1', generation: 1 }, status: {} };
  const ctx = new ReconcileContext(
    'test',
    client,
    cacheOf([]),
    createLogger({ level: 'silent' }),
    { normal() {}, warning() {} },
    'bosun/test',
    new AbortController().signal,
  );
  assert.equal(
    await ctx.updateStatus(Owner, read, {
      fields: { phase: 'Pending' },
      conditions: [{ type: 'Ready', status: 'False', reason: 'Booking' }],
    }),
    true,
  );
  assert.equal(
    await ctx.updateStatus(Owner, read, {
      fields: { phase: 'Booked' },
      conditions: [{ type: 'Booked', status: 'True', reason: 'Booked' }],
    }),
    true,
  );
  // The same state again: no write.
  assert.equal(
    await ctx.updateStatus(Owner, read, {
      fields: { phase: 'Booked' },
      conditions: [{ type: 'Booked', status: 'True', reason: 'Booked' }],
    }),
    false,
  );
  assert.deepEqual(
    bodies.map((b) => b.metadata.resourceVersion),
    ['1', '2'],
  );
  assert.deepEqual(
    (bodies[1]!.status.conditions as { type: string }[]).map((c) => c.type),
    ['Ready', 'Booked'],
    "the second write keeps the first one's condition",
  );
  await assert.rejects(
    ctx.updateStatus(Owner, { metadata: { name: 'built' } }, { fields: { phase: 'x' } }),
    /no metadata\.resourceVersion/,
  );
});

test('assertMayAct throws what the client write gate answers for the action (a leader whose term ran out), and after an abort', async () => {
  const { KubeClient } = await import('../client/client.js');
  const client = KubeClient.fromClusterConfig({
    server: 'https://127.0.0.1:1',
    namespace: 'default',
    context: 't',
    authHeaders: () => Promise.resolve({}),
  });
  try {
    const primary: PrimaryRef = { type: Owner, namespace: 'team-a', name: 'o' };
    const ac = new AbortController();
    const ctx = new ReconcileContext(
      'test',
      client,
      cacheOf([]),
      createLogger({ level: 'silent' }),
      { normal() {}, warning() {} },
      'bosun/test',
      ac.signal,
      primary,
    );
    ctx.assertMayAct('book');
    const seen: unknown[] = [];
    let leading = true;
    client.setWriteGate(
      (target) => (
        seen.push(target),
        leading ? undefined : new Error(`refused to ${target.verb} ${target.kind} ${target.namespace}/${target.name}`)
      ),
    );
    ctx.assertMayAct('book');
    leading = false;
    assert.throws(() => ctx.assertMayAct('book'), /refused to book Owner team-a\/o/);
    assert.deepEqual(seen[0], { verb: 'book', kind: 'Owner', namespace: 'team-a', name: 'o' });
    leading = true;
    ac.abort(new Error('shutting down'));
    assert.throws(() => ctx.assertMayAct('book'), /shutting down/);
  } finally {
    client.close();
  }
});

test("a status write from a cache that has not yet seen the controller's own last write builds on that write: conditional on the version the server has, not a 409", async () => {
  const { OwnWrites } = await import('./own-writes.js');
  const sent: { resourceVersion?: string; status: unknown }[] = [];
  let rv = 1;
  const client = {
    patch: (_t: ResourceType, _ns: string | undefined, name: string, p: { metadata: { resourceVersion?: string }; status: unknown }) => {
      sent.push({ resourceVersion: p.metadata.resourceVersion, status: p.status });
      rv += 1;
      return Promise.resolve({
        metadata: { namespace: 'team-a', name, uid: 'uid-o', resourceVersion: String(rv), generation: 1 },
        status: p.status,
      });
    },
  } as unknown as KubeClient;
  const shared = new OwnWrites();
  const ctxFor = () =>
    new ReconcileContext(
      'test',
      client,
      cacheOf([]),
      createLogger({ level: 'silent' }),
      { normal() {}, warning() {} },
      'bosun/test',
      new AbortController().signal,
      { type: Owner, namespace: 'team-a', name: 'o' },
      shared,
    );
  const stale: KubeObject = { metadata: { namespace: 'team-a', name: 'o', uid: 'uid-o', resourceVersion: '1', generation: 1 }, status: {} };
  assert.equal(await ctxFor().updateStatus(Owner, stale, { fields: { phase: 'Pending' } }), true);
  // The next reconcile still reads version 1 from the cache: it builds on version 2, which it wrote.
  assert.equal(
    await ctxFor().updateStatus(Owner, stale, { fields: { phase: 'Pending' } }),
    false,
    'no write: version 2 already says Pending',
  );
  assert.equal(await ctxFor().updateStatus(Owner, stale, { fields: { phase: 'Running' } }), true);
  assert.deepEqual(
    sent.map((s) => s.resourceVersion),
    ['1', '2'],
  );
  // Once the cache shows another version (the write's event, or someone else's), it is read as it is.
  const fresh = { ...stale, metadata: { ...stale.metadata, resourceVersion: '7' }, status: { phase: 'Running', observedGeneration: 1 } };
  assert.equal(await ctxFor().updateStatus(Owner, fresh, { fields: { phase: 'Done' } }), true);
  assert.equal(sent.at(-1)?.resourceVersion, '7');
  assert.equal(shared.size, 1);
});

test('OwnWrites keeps at most max objects, dropping the least recently written', async () => {
  const { OwnWrites } = await import('./own-writes.js');
  const w = new OwnWrites(2);
  const obj = (uid: string, rv: string): KubeObject => ({ metadata: { uid, resourceVersion: rv } });
  w.remember(obj('a', '1'), obj('a', '2'));
  w.remember(obj('b', '1'), obj('b', '2'));
  w.remember(obj('c', '1'), obj('c', '2'));
  assert.equal(w.size, 2);
  assert.equal(w.latest(obj('a', '1')).metadata.resourceVersion, '1', 'a was dropped');
  assert.equal(w.latest(obj('c', '1')).metadata.resourceVersion, '2');
});
