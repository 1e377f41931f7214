// The ctx write helpers against a real API server: what survives a write, what a write removes.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { KubeClient } from '../client/client.js';
import { isConflict, isNotFound } from '../client/errors.js';
import { ConfigMap } from '../client/resources.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import type { Condition } from '../resource/conditions.js';
import { eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from '../tooling/envtest/testenv.js';
import { createLogger } from '../telemetry/logger.js';
import { controller } from '../controller/builder.js';
import { ReconcileContext, type CacheReader } from './context.js';

// The Message CRD of operators/message serves as a plain owner with a status subresource.
const Message: ResourceType<Msg> = { group: 'myorg.dev', version: 'v1', kind: 'Message', plural: 'messages', namespaced: true };
type Msg = KubeObject<{ text: string }, { conditions?: Condition[]; phase?: string }>;
type CM = KubeObject & { data?: Record<string, string> };
const LABELS = { 'app.kubernetes.io/managed-by': 'bosun-context-test' };

function messageYaml(name: string): string {
  return `apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: ${name}\nspec:\n  text: hi\n`;
}

const noCache = { get: () => undefined, list: () => [], ownedBy: () => [] } as unknown as CacheReader;

describe('ReconcileContext writes', () => {
  let env: TestEnv;
  let ns: string;
  let client: KubeClient;

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('ctx');
    client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  });
  after(async () => {
    client?.close();
    await env?.cleanup();
  });

  const getCM = async (name: string) => {
    try {
      return await client.get<CM>(ConfigMap, ns, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  test('applyChild removes a field the desired state no longer sets', async () => {
    let withX = true;
    const spec = controller('prune')
      .for(Message)
      .owns(ConfigMap, { labels: LABELS })
      .reconcile(async (req, ctx) => {
        if (!ctx.owner) return;
        await ctx.applyChild(ConfigMap, {
          metadata: { name: `${req.name}-cm`, labels: LABELS },
          data: withX ? { keep: '1', x: 'old' } : { keep: '1' },
        });
      });
    const op: RunningControllers = runControllers(env, [spec], { namespaces: [ns] });
    try {
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('prune'));
      await eventually('the child with x', async () => ((await getCM('prune-cm'))?.data?.x === 'old' ? true : undefined));
      withX = false;
      // Any change to the owner reconciles it again with the new desired state.
      await env.kubectlOk(['annotate', '-n', ns, 'message', 'prune', 'touch=1']);
      const cm = await eventually(
        'x to be gone from the child',
        async () => {
          const c = await getCM('prune-cm');
          return c && c.data?.x === undefined ? c : undefined;
        },
        15_000,
      );
      assert.deepEqual(cm.data, { keep: '1' });
    } finally {
      await op.stop();
    }
  });

  test('two controllers applying one child each keep their own fields (one field manager per controller)', async () => {
    const writer = (name: string, key: string) =>
      controller(name)
        .for(Message)
        .owns(ConfigMap, { labels: LABELS })
        .reconcile(async (req, ctx) => {
          if (!ctx.owner) return;
          await ctx.applyChild(ConfigMap, { metadata: { name: `${req.name}-shared`, labels: LABELS }, data: { [key]: name } });
        });
    const op = runControllers(env, [writer('writer-a', 'a'), writer('writer-b', 'b')], { namespaces: [ns] });
    try {
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('shared'));
      const cm = await eventually(
        "both controllers' fields on the child",
        async () => {
          const c = await getCM('shared-shared');
          return c?.data?.a === 'writer-a' && c.data.b === 'writer-b' ? c : undefined;
        },
        10_000,
      );
      const managers = await env.kubectlOk([
        'get',
        'configmap',
        '-n',
        ns,
        'shared-shared',
        '--show-managed-fields',
        '-o',
        'jsonpath={.metadata.managedFields[*].manager}',
      ]);
      assert.match(managers, /bosun\/writer-a/);
      assert.match(managers, /bosun\/writer-b/);
      assert.ok(cm.metadata.resourceVersion);
    } finally {
      await op.stop();
    }
  });

  test('updateStatus keeps a condition another writer set after the object was read', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('status'));
    const ctx = new ReconcileContext(
      'status-test',
      client,
      noCache,
      createLogger({ level: 'silent' }),
      { normal() {}, warning() {} },
      'bosun/status-test',
      new AbortController().signal,
      { type: Message, namespace: ns, name: 'status' },
    );
    const read = await client.get<Msg>(Message, ns, 'status');
    // Another writer adds a condition of its own type: the object read above no longer has the latest status.
    await client.applyStatus(
      Message,
      {
        metadata: { namespace: ns, name: 'status' },
        status: {
          conditions: [
            { type: 'Audited', status: 'True', reason: 'Checked', message: 'by the auditor', lastTransitionTime: '2026-01-01T00:00:00Z' },
          ],
        },
      },
      { fieldManager: 'auditor', force: true },
    );
    const write = (m: Msg) =>
      ctx.updateStatus(Message, m, {
        fields: { phase: 'Pending' },
        conditions: [{ type: 'Ready', status: 'False', reason: 'Waiting', message: 'waiting' }],
      });
    // As the controller does: a write from a stale read may be refused as a conflict; the retry reads again.
    try {
      await write(read);
    } catch (err) {
      if (!isConflict(err)) throw err;
      await write(await client.get<Msg>(Message, ns, 'status'));
    }
    const now = await client.get<Msg>(Message, ns, 'status');
    const types = (now.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).sort();
    assert.deepEqual(types, ['Audited=True', 'Ready=False'], "the other writer's condition survives the operator's write");
    assert.equal(now.status?.phase, 'Pending');
  });

  test('with an aborted signal the helpers reject and write nothing', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('aborted'));
    const owner = await client.get<Msg>(Message, ns, 'aborted');
    const cache = {
      get: (t: ResourceType) => (t === Message ? owner : undefined),
      list: () => [],
      ownedBy: () => [],
    } as unknown as CacheReader;
    const ac = new AbortController();
    ac.abort(new Error('leadership lost'));
    const ctx = new ReconcileContext(
      'abort-test',
      client,
      cache,
      createLogger({ level: 'silent' }),
      { normal() {}, warning() {} },
      'bosun/abort-test',
      ac.signal,
      { type: Message, namespace: ns, name: 'aborted' },
    );
    await assert.rejects(ctx.applyChild(ConfigMap, { metadata: { name: 'aborted-cm' }, data: { a: '1' } }));
    await assert.rejects(ctx.updateStatus(Message, owner, { fields: { phase: 'Aborted' } }));
    await assert.rejects(ctx.deleteIfExists(Message, owner));
    assert.equal(await getCM('aborted-cm'), undefined, 'no child was created');
    const after = await client.get<Msg>(Message, ns, 'aborted');
    assert.equal(after.metadata.resourceVersion, owner.metadata.resourceVersion, 'the owner was neither patched nor deleted');
  });
});
