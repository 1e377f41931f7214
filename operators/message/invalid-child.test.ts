// A Message whose Pod the API server refuses: the refusal shows on the Message, and nothing retries it.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { ControllerSpec, KubeObject } from 'bosun';
import { eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { messageHandlers } from './handlers.js';
import { podName } from './pod.js';
import { messageController } from './reconciler.js';
import type { Message } from './resource.js';

async function getJson<T>(env: TestEnv, args: string[]): Promise<T | undefined> {
  const r = await env.kubectl([...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

for (const [style, spec] of [
  ['reconcile', messageController],
  ['handlers', messageHandlers],
] as [string, ControllerSpec][]) {
  describe(`Message operator (${style} style) with a child the API server refuses`, () => {
    let env: TestEnv;
    let ns: string;
    let op: RunningControllers;

    before(async () => {
      env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
      ns = await env.namespace(`msg-invalid-${style}`);
      op = runControllers(env, [spec], { namespaces: [ns] });
    });
    after(async () => {
      await op?.stop();
      await env?.cleanup();
    });

    test("a Message name too long for its Pod name is Ready=False ChildInvalid with the API's message and a Warning Event, and is not retried", async () => {
      // A valid Message name (at most 253 characters) whose Pod name, 4 characters longer, is not.
      const name = 'm'.repeat(250);
      await env.kubectlOk(
        ['apply', '-n', ns, '-f', '-'],
        `apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: ${name}\nspec:\n  text: hi\n`,
      );
      const msg = await eventually(
        'Ready=False with reason ChildInvalid',
        async () => {
          const m = await getJson<Message>(env, ['get', '-n', ns, 'message', name]);
          const ready = m?.status?.conditions?.find((c) => c.type === 'Ready');
          return ready?.status === 'False' && ready.reason === 'ChildInvalid' ? m : undefined;
        },
        20_000,
      );
      const ready = msg.status!.conditions!.find((c) => c.type === 'Ready')!;
      assert.match(ready.message, new RegExp(`Pod ${ns}/${podName(msg)}`), 'the condition names the refused child');
      assert.match(ready.message, /must be no more than 253 characters/, "the condition carries the API server's message");
      const events = await eventually('a ChildInvalid Warning Event', async () => {
        const list = (await getJson<{ items: (KubeObject & { reason?: string; type?: string; message?: string })[] }>(env, [
          'get',
          'events',
          '-n',
          ns,
        ]))!.items;
        const mine = list.filter((e) => e.type === 'Warning' && e.reason === 'ChildInvalid');
        return mine.length ? mine : undefined;
      });
      assert.match(events[0]!.message ?? '', /must be no more than 253 characters/);
      const reconciles = () => op.logs.filter((l) => l.includes('"msg":"Reconciling Message"')).length;
      const r0 = reconciles();
      await new Promise((r) => setTimeout(r, 3000));
      assert.ok(reconciles() - r0 <= 1, `not retried while the Message is unchanged (${reconciles() - r0} reconciles in 3 s)`);
      assert.equal((await getJson<{ items: KubeObject[] }>(env, ['get', 'pods', '-n', ns]))!.items.length, 0);
    });
  });
}
