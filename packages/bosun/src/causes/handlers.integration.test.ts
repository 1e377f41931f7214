// The kopf-style handlers on a real control plane: progress records, diff-base writes and owned
// children all go through the API server, whose limits (annotation sizes) and scoping
// (cluster-scoped owners of namespaced children) only it shows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { ConfigMap } from '../client/resources.js';
import type { KubeObject, OwnerReference, ResourceType } from '../client/types.js';
import { eventually, runControllers, startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { DIFF_BASE_ANNOTATION, handlers } from './handlers.js';

const Gadget: ResourceType = { group: 'causes.bosun.dev', version: 'v1', kind: 'Gadget', plural: 'gadgets', namespaced: true };
const Cog: ResourceType = { group: 'causes.bosun.dev', version: 'v1', kind: 'Cog', plural: 'cogs', namespaced: false };

let env: TestEnv;
let client: KubeClient;

before(async () => {
  env = await startTestEnv({ crds: ['packages/bosun/src/causes/testdata/crds.yaml'] });
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  client?.close();
  await env?.cleanup();
});

function ownerRef(type: ResourceType, owner: KubeObject): OwnerReference {
  return {
    apiVersion: `${type.group}/${type.version}`,
    kind: type.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
  };
}

async function diffBase(type: ResourceType, ns: string | undefined, name: string): Promise<Record<string, unknown> | undefined> {
  const raw = (await client.get(type, ns, name)).metadata.annotations?.[DIFF_BASE_ANNOTATION];
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
}

const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 15_000) =>
  eventually(what, async () => ((await cond()) ? true : undefined), ms);

void test('handlers: a failing owned-child handler does not drop the children after it', async () => {
  const ns = await env.namespace('owned');
  const owner = await client.create<KubeObject>(Gadget, { metadata: { name: 'owner', namespace: ns }, spec: { a: 1 } });
  for (const name of ['a', 'b'])
    await client.create(ConfigMap, { metadata: { name, namespace: ns, ownerReferences: [ownerRef(Gadget, owner)] } });
  const handled = new Set<string>();
  let failed = false;
  const spec = handlers<KubeObject>('owned-not-dropped', Gadget)
    .onOwned(ConfigMap, ({ child, childName }) => {
      if (childName === 'a' && !failed) {
        failed = true;
        throw new Error('the handler of child a fails once');
      }
      if (child) handled.add(childName);
    })
    .build();
  const op = runControllers(env, [spec], { namespaces: [ns] });
  try {
    await until('both children handled', () => handled.has('a') && handled.has('b'));
    assert.ok(failed);
  } finally {
    await op.stop();
  }
});

void test('handlers: a failed resume handler is retried', async () => {
  const ns = await env.namespace('resume');
  await client.create(Gadget, { metadata: { name: 'g', namespace: ns }, spec: { a: 1 } });
  const first = runControllers(
    env,
    [
      handlers<KubeObject>('resume-retried', Gadget)
        .onCreate(() => {})
        .build(),
    ],
    { namespaces: [ns] },
  );
  try {
    await until('the create was handled', async () => (await diffBase(Gadget, ns, 'g')) !== undefined);
  } finally {
    await first.stop();
  }
  let calls = 0;
  const second = runControllers(
    env,
    [
      handlers<KubeObject>('resume-retried', Gadget)
        .onResume(() => {
          calls++;
          if (calls === 1) throw new Error('the resume handler fails once');
        })
        .build(),
    ],
    { namespaces: [ns] },
  );
  try {
    await until('the resume handler ran again after failing', () => calls >= 2);
  } finally {
    await second.stop();
  }
});

void test('handlers: handlers before a failing one do not run again on the retry', async () => {
  const ns = await env.namespace('progress');
  await client.create(Gadget, { metadata: { name: 'g', namespace: ns }, spec: { a: 1 } });
  let h1 = 0;
  let h2 = 0;
  const spec = handlers<KubeObject>('progress', Gadget)
    .onCreate(() => {
      h1++;
    })
    .onCreate(() => {
      h2++;
      if (h2 === 1) throw new Error('the second create handler fails once');
    })
    .build();
  const op = runControllers(env, [spec], { namespaces: [ns] });
  try {
    await until('the create completed', async () => h2 >= 2 && (await diffBase(Gadget, ns, 'g')) !== undefined);
    assert.equal(h1, 1, 'the first handler succeeded once and must not run again');
  } finally {
    await op.stop();
  }
});

void test('handlers: progress survives a restart of the operator', async () => {
  const ns = await env.namespace('progress-restart');
  await client.create(Gadget, { metadata: { name: 'g', namespace: ns }, spec: { a: 1 } });
  let h2Failures = 0;
  const failing = handlers<KubeObject>('progress-restart', Gadget)
    .onCreate(() => {})
    .onCreate(() => {
      h2Failures++;
      throw new Error('the second create handler fails until the restart');
    })
    .build();
  const first = runControllers(env, [failing], { namespaces: [ns] });
  try {
    await until('the second handler failed', () => h2Failures >= 1);
  } finally {
    await first.stop();
  }
  let h1 = 0;
  let h2 = 0;
  const fixed = handlers<KubeObject>('progress-restart', Gadget)
    .onCreate(() => {
      h1++;
    })
    .onCreate(() => {
      h2++;
    })
    .build();
  const second = runControllers(env, [fixed], { namespaces: [ns] });
  try {
    await until('the create completed', async () => h2 >= 1 && (await diffBase(Gadget, ns, 'g')) !== undefined);
    assert.equal(h1, 0, 'the first handler had succeeded before the restart');
  } finally {
    await second.stop();
  }
});

void test('handlers: a cluster-scoped owner sees its namespaced children', async () => {
  const ns = await env.namespace('cluster-owner');
  const cog = await client.create<KubeObject>(Cog, { metadata: { name: `cog-${ns}` }, spec: { a: 1 } });
  await client.create(ConfigMap, { metadata: { name: 'child', namespace: ns, ownerReferences: [ownerRef(Cog, cog)] } });
  const calls: { present: boolean; namespace: string | undefined }[] = [];
  const spec = handlers<KubeObject>('cluster-owner', Cog)
    .onOwned(ConfigMap, ({ obj, child, childName }) => {
      if (obj.metadata.name === cog.metadata.name && childName === 'child')
        calls.push({ present: child !== undefined, namespace: child?.metadata.namespace });
    })
    .build();
  const op = runControllers(env, [spec], { namespaces: [ns] });
  try {
    await until('the owned handler ran', () => calls.length > 0);
    assert.deepEqual(calls[0], { present: true, namespace: ns });
  } finally {
    await op.stop();
    await client.delete(Cog, undefined, cog.metadata.name!);
  }
});

void test('handlers: onUpdate fires for a kind without metadata.generation (ConfigMap)', async () => {
  const ns = await env.namespace('cm-update');
  await client.create(ConfigMap, { metadata: { name: 'cm', namespace: ns }, data: { k: '1' } });
  const updates: { old: unknown; new: unknown }[] = [];
  const spec = handlers<KubeObject>('cm-update', ConfigMap)
    .onUpdate((args) => {
      if (args.name === 'cm') updates.push({ old: args.old, new: args.new });
    })
    .build();
  const op = runControllers(env, [spec], { namespaces: [ns] });
  try {
    await until(
      'the create was handled',
      async () => (await client.get(ConfigMap, ns, 'cm')).metadata.annotations?.[DIFF_BASE_ANNOTATION] !== undefined,
    );
    await client.patch(ConfigMap, ns, 'cm', { data: { k: '2' } }, 'merge');
    await until('the update handler ran', () => updates.length > 0);
    assert.deepEqual(updates[0], { old: { data: { k: '1' } }, new: { data: { k: '2' } } });
  } finally {
    await op.stop();
  }
});

void test('handlers: the diff-base size guard counts bytes, not UTF-16 units', async () => {
  const ns = await env.namespace('base-bytes');
  // 30,000 UTF-16 units, 90,000 bytes: over the whole-base limit only when counted in bytes.
  await client.create(Gadget, { metadata: { name: 'g', namespace: ns }, spec: { text: '€'.repeat(30_000) } });
  const op = runControllers(
    env,
    [
      handlers<KubeObject>('base-bytes', Gadget)
        .onCreate(() => {})
        .build(),
    ],
    { namespaces: [ns] },
  );
  try {
    const base = await eventually('the diff base', () => diffBase(Gadget, ns, 'g'));
    assert.equal(typeof base.hash, 'string');
    assert.ok(!('spec' in base) && !('essence' in base), 'a spec over the limit in bytes is kept as a hash only');
  } finally {
    await op.stop();
  }
});

void test("handlers: the diff-base size guard leaves room for the object's other annotations", async () => {
  const ns = await env.namespace('base-total');
  // Each fits alone; together with a whole diff base they pass the API server's 256 KiB for all annotations.
  await client.create(Gadget, {
    metadata: { name: 'g', namespace: ns, annotations: { 'example.com/big': 'x'.repeat(200 * 1024) } },
    spec: { text: 'y'.repeat(60 * 1024) },
  });
  let creates = 0;
  const op = runControllers(
    env,
    [
      handlers<KubeObject>('base-total', Gadget)
        .onCreate(() => {
          creates++;
        })
        .build(),
    ],
    { namespaces: [ns] },
  );
  try {
    const base = await eventually('the diff base', () => diffBase(Gadget, ns, 'g'));
    assert.ok(!('spec' in base) && !('essence' in base), 'the base is kept as a hash only');
    assert.equal(creates, 1);
  } finally {
    await op.stop();
  }
});

void test('handlers: onDelete keeps the object until its handlers succeed, without repeating those that did', async () => {
  const ns = await env.namespace('delete');
  await client.create(Gadget, { metadata: { name: 'g', namespace: ns }, spec: { a: 1 } });
  let h1 = 0;
  let h2 = 0;
  const spec = handlers<KubeObject>('delete-progress', Gadget)
    .onDelete(() => {
      h1++;
    })
    .onDelete(() => {
      h2++;
      if (h2 === 1) throw new Error('the second delete handler fails once');
    })
    .build();
  const op = runControllers(env, [spec], { namespaces: [ns] });
  try {
    await until(
      'the finalizer is on',
      async () => (await client.get(Gadget, ns, 'g')).metadata.finalizers?.includes('bosun.dev/delete-progress') === true,
    );
    await client.delete(Gadget, ns, 'g');
    await until(
      'the object is gone',
      async () =>
        await client.get(Gadget, ns, 'g').then(
          () => false,
          () => true,
        ),
    );
    assert.deepEqual([h1, h2], [1, 2]);
  } finally {
    await op.stop();
  }
});
