// The Message status is shared: a condition another writer sets survives the operator's own status writes.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { KubeClient } from 'bosun';
import { eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { messageController } from './reconciler.js';
import { MessageResource, type Message } from './resource.js';

describe('Message status with another writer', () => {
  let env: TestEnv;
  let ns: string;
  let op: RunningControllers;
  let client: KubeClient;

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('msg-status');
    client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
    op = runControllers(env, [messageController], { namespaces: [ns] });
  });
  after(async () => {
    await op?.stop();
    client?.close();
    await env?.cleanup();
  });

  test("a condition of another type set by another writer survives the operator's status writes", async () => {
    const yaml = (text: string) =>
      `apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: shared\nspec:\n  text: ${JSON.stringify(text)}\n`;
    const conditions = async () => (await client.get<Message>(MessageResource, ns, 'shared')).status?.conditions ?? [];
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], yaml('first'));
    await env.kubectlOk(['wait', '-n', ns, '--for=condition=Ready', 'message/shared', '--timeout=60s']);
    await client.applyStatus(
      MessageResource,
      {
        metadata: { namespace: ns, name: 'shared' },
        status: {
          conditions: [
            { type: 'Audited', status: 'True', reason: 'Checked', message: 'by the auditor', lastTransitionTime: '2026-01-01T00:00:00Z' },
          ],
        },
      },
      { fieldManager: 'auditor', force: true },
    );
    // A new text replaces the Pod: the operator writes PodReplacing, then Pending, then Running.
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], yaml('second'));
    await eventually(
      'Ready again for generation 2',
      async () => {
        const m = await client.get<Message>(MessageResource, ns, 'shared');
        const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
        return m.metadata.generation === 2 && m.status?.observedGeneration === 2 && ready?.status === 'True' ? m : undefined;
      },
      60_000,
    );
    const audited = (await conditions()).find((c) => c.type === 'Audited');
    assert.equal(audited?.status, 'True', "the auditor's condition is still there");
    assert.equal(audited?.message, 'by the auditor');
    assert.ok(
      op.logs.some((l) => l.includes('PodReplacing') || l.includes('ReplacingPod')),
      'the operator wrote status while the Pod was replaced',
    );
  });
});
