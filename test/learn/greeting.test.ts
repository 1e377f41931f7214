// Step 9 of the learning path (docs/learn/09-testing-an-operator.*.md): a test of one's own, on a real API server.
// A small operator of your own (a greeting ConfigMap per Message) and the test that pins down what it does.
// With LEARN_UNFINISHED=1 the reconcile stops short of its work, as code not written yet does: the test fails,
// and the page shows how. `make test` runs it as written, so it must pass.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ConfigMap, controller } from 'bosun';
import { eventually, runControllers, startTestEnv, type TestEnv } from 'bosun/envtest';
import { MessageResource } from '../../operators/message/resource.js';

const unfinished = process.env.LEARN_UNFINISHED === '1';

/** For each Message, a ConfigMap `<name>-greeting` that greets its text; owned, so it goes when the Message goes. */
const greetingController = controller('greeting')
  .for(MessageResource)
  .owns(ConfigMap)
  .reconcile(async (req, ctx) => {
    const msg = ctx.cache.get(MessageResource, req.namespace, req.name);
    if (!msg?.spec || msg.metadata.deletionTimestamp) return;
    if (unfinished) return;
    await ctx.applyChild(ConfigMap, {
      metadata: { name: `${req.name}-greeting`, namespace: req.namespace },
      data: { greeting: `Hello, ${msg.spec.text}` },
    });
  });

let env: TestEnv;
before(async () => {
  env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
});
after(() => env.cleanup());

void test('a Message gets a greeting ConfigMap', async () => {
  const ns = await env.namespace('learn-greeting');
  const op = runControllers(env, [greetingController], { namespaces: [ns] });
  try {
    await env.kubectlOk(['apply', '-n', ns, '-f', 'examples/message.yaml']);
    // 10 s: the operator lists, watches and writes once; on a loaded machine that takes well under a second.
    const greeting = await eventually(
      'the ConfigMap example-message-greeting',
      async () => {
        const r = await env.kubectl(['get', 'configmap', 'example-message-greeting', '-n', ns, '-o', 'jsonpath={.data.greeting}']);
        return r.code === 0 ? r.stdout : undefined;
      },
      10_000,
    );
    assert.equal(greeting, 'Hello, Hello! This is an operator test message!');
    const owner = await env.kubectlOk([
      'get',
      'configmap',
      'example-message-greeting',
      '-n',
      ns,
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}',
    ]);
    assert.equal(owner, 'Message', 'the ConfigMap is owned by its Message, so garbage collection removes it with the Message');
  } finally {
    await op.stop();
  }
});
