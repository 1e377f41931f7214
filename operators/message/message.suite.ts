// The Message operator's behaviour, as one suite run against each style (reconcile and handlers):
// the kopf-vs-kubebuilder comparison, in one language, on a real control plane.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { ControllerSpec, KubeObject } from 'bosun';
import { FAILING_IMAGE, eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { IMAGE_ANNOTATION, TEXT_HASH_ANNOTATION, podName, type Pod } from './pod.js';
import type { Message } from './resource.js';

type Running = RunningControllers;

function startOperator(env: TestEnv, spec: ControllerSpec, ns: string, opts: { lease?: string; identity?: string } = {}): Running {
  return runControllers(env, [spec], {
    namespaces: [ns],
    leaderElection: opts.lease ? { namespace: ns, name: opts.lease, identity: opts.identity } : undefined,
  });
}

async function getJson<T>(env: TestEnv, args: string[]): Promise<T | undefined> {
  const r = await env.kubectl([...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

function messageYaml(name: string, text: string, annotations: Record<string, string> = {}): string {
  const ann = Object.keys(annotations).length
    ? `  annotations:\n${Object.entries(annotations)
        .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
        .join('\n')}\n`
    : '';
  return `apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: ${name}\n${ann}spec:\n  text: ${JSON.stringify(text)}\n`;
}

async function readyMessage(env: TestEnv, ns: string, name: string): Promise<Message> {
  await env.kubectlOk(['wait', '-n', ns, '--for=condition=Ready', `message/${name}`, '--timeout=60s']);
  return (await getJson<Message>(env, ['get', '-n', ns, 'message', name]))!;
}

/** Defines the Message operator suite for one style. */
export function messageSuite(style: string, spec: ControllerSpec): void {
  describe(`Message operator (${style} style)`, () => {
    let env: TestEnv;
    let ns: string;
    let op: Running;

    before(async () => {
      env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
      ns = await env.namespace(`msg-${style}`);
      op = startOperator(env, spec, ns);
    });
    after(async () => {
      await op?.stop();
      await env?.cleanup();
    });

    test('a Message gets exactly one restricted, owned Pod printing its text, and a Ready status', async () => {
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('hello', 'Hello! This is an operator test message!'));
      const msg = await readyMessage(env, ns, 'hello');
      assert.equal(msg.status?.phase, 'Running');
      assert.equal(msg.status?.podName, 'hello-pod');
      assert.equal(msg.status?.observedGeneration, msg.metadata.generation);
      const pods = (await getJson<{ items: Pod[] }>(env, ['get', 'pods', '-n', ns]))!.items.filter((p) =>
        p.metadata.ownerReferences?.some((r) => r.uid === msg.metadata.uid),
      );
      assert.equal(pods.length, 1);
      const pod = pods[0]! as KubeObject & {
        spec: {
          securityContext: Record<string, unknown>;
          containers: { args: string[]; securityContext: Record<string, unknown>; resources: Record<string, unknown> }[];
        };
      };
      assert.deepEqual(pod.metadata.ownerReferences?.[0]?.controller, true);
      assert.deepEqual(pod.spec.containers[0]!.args, ['Hello! This is an operator test message!']);
      assert.equal(pod.spec.securityContext.runAsNonRoot, true);
      assert.deepEqual(pod.spec.securityContext.seccompProfile, { type: 'RuntimeDefault' });
      assert.equal(pod.spec.containers[0]!.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(pod.spec.containers[0]!.securityContext.capabilities, { drop: ['ALL'] });
      assert.ok(pod.spec.containers[0]!.resources.limits && pod.spec.containers[0]!.resources.requests);
      assert.ok(
        op.logs.some((l) => l.includes('"msg":"Reconciling Message"') && l.includes('"name":"hello"') && l.includes(`"namespace":"${ns}"`)),
        'a "Reconciling Message" log line naming the Message',
      );
      const events = await env.kubectlOk([
        'get',
        'events',
        '-n',
        ns,
        '--field-selector',
        'involvedObject.name=hello',
        '-o',
        'jsonpath={.items[*].reason}',
      ]);
      assert.match(events, /CreatedPod/);
    });

    test('changing spec.text replaces the Pod', async () => {
      const before = (await getJson<Pod>(env, ['get', 'pod', '-n', ns, 'hello-pod']))!;
      await env.kubectlOk(['patch', '-n', ns, 'message', 'hello', '--type=merge', '-p', '{"spec":{"text":"a new text"}}']);
      const pod = await eventually('a new Pod with the new text', async () => {
        const p = await getJson<Pod & { spec: { containers: { args: string[] }[] } }>(env, ['get', 'pod', '-n', ns, 'hello-pod']);
        return p && p.metadata.uid !== before.metadata.uid && p.status?.phase === 'Running' ? p : undefined;
      });
      assert.deepEqual(pod.spec.containers[0]!.args, ['a new text']);
      assert.notEqual(pod.metadata.annotations?.[TEXT_HASH_ANNOTATION], before.metadata.annotations?.[TEXT_HASH_ANNOTATION]);
      const msg = await eventually('status of generation 2', async () => {
        const m = await getJson<Message>(env, ['get', '-n', ns, 'message', 'hello']);
        return m && m.status?.observedGeneration === m.metadata.generation && m.status?.phase === 'Running' ? m : undefined;
      });
      assert.equal(msg.metadata.generation, 2);
    });

    test('a Pod deleted by hand comes back', async () => {
      const before = (await getJson<Pod>(env, ['get', 'pod', '-n', ns, 'hello-pod']))!;
      await env.kubectlOk(['delete', 'pod', '-n', ns, 'hello-pod', '--wait=false']);
      await eventually('the Pod to come back', async () => {
        const p = await getJson<Pod>(env, ['get', 'pod', '-n', ns, 'hello-pod']);
        return p && p.metadata.uid !== before.metadata.uid ? p : undefined;
      });
      await readyMessage(env, ns, 'hello');
    });

    test('restarting the operator over converged Messages makes no writes', async () => {
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('second', 'two'));
      await readyMessage(env, ns, 'second');
      await readyMessage(env, ns, 'hello');
      await op.stop();
      // Let the last status writes land in the watch before taking the snapshot.
      await new Promise((r) => setTimeout(r, 500));
      const snapshot = async () => {
        const msgs = (await getJson<{ items: Message[] }>(env, ['get', 'messages', '-n', ns]))!.items;
        const pods = (await getJson<{ items: Pod[] }>(env, ['get', 'pods', '-n', ns]))!.items;
        const events = (await getJson<{ items: KubeObject[] }>(env, ['get', 'events', '-n', ns]))!.items;
        return {
          objects: [...msgs, ...pods].map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort(),
          events: events.map((e) => `${e.metadata.name}@${e.metadata.resourceVersion}`).sort(),
        };
      };
      const s1 = await snapshot();
      op = startOperator(env, spec, ns);
      await eventually('the restarted operator to reconcile both Messages', async () => {
        const n = op.logs.filter((l) => l.includes('"msg":"Reconciling Message"')).length;
        return n >= 2 ? true : undefined;
      });
      // Give any (wrong) write time to happen.
      await new Promise((r) => setTimeout(r, 1500));
      const s2 = await snapshot();
      if (JSON.stringify(s2) !== JSON.stringify(s1)) {
        // Who wrote what, and when: the managers of the changed objects and the new Events.
        const changed = [...s2.objects, ...s2.events].filter((x) => !s1.objects.includes(x) && !s1.events.includes(x));
        const pods = (await getJson<{ items: Pod[] }>(env, ['get', 'pods', '-n', ns, '--show-managed-fields']))!.items;
        const events = (await getJson<{ items: KubeObject[] }>(env, ['get', 'events', '-n', ns]))!.items;
        const detail = [...pods, ...events]
          .filter((o) => changed.includes(`${o.metadata.name}@${o.metadata.resourceVersion}`))
          .map((o) => JSON.stringify(o));
        assert.fail(
          `a Message, Pod or Event changed after the restart:\n${JSON.stringify({ before: s1, after: s2 })}\n${detail.join('\n')}`,
        );
      }
    });

    test('a Pod that cannot pull its image makes the Message Ready=False with a reason and an Event, without a retry loop', async () => {
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('broken', 'never printed', { [IMAGE_ANNOTATION]: FAILING_IMAGE }));
      const msg = await eventually('Ready=False with ErrImagePull', async () => {
        const m = await getJson<Message>(env, ['get', '-n', ns, 'message', 'broken']);
        const ready = m?.status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'False' && ready.reason === 'ErrImagePull' ? m : undefined;
      });
      assert.match(msg.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', /broken-pod/);
      const events = await env.kubectlOk([
        'get',
        'events',
        '-n',
        ns,
        '--field-selector',
        'involvedObject.name=broken,type=Warning',
        '-o',
        'jsonpath={.items[*].reason}',
      ]);
      assert.match(events, /ErrImagePull/);
      const count = () => op.logs.filter((l) => l.includes('"msg":"Reconciling Message"') && l.includes('"name":"broken"')).length;
      const c1 = count();
      await new Promise((r) => setTimeout(r, 2000));
      assert.ok(count() - c1 <= 1, `no hot retry loop (${count() - c1} reconciles in 2 s of a failed Pod)`);
      assert.equal(
        (await getJson<Pod>(env, ['get', 'pod', '-n', ns, podName(msg)]))?.metadata.uid !== undefined,
        true,
        'the failed Pod is kept for inspection',
      );
    });

    test('deleting a Message leaves nothing behind', async () => {
      await env.kubectlOk(['delete', '-n', ns, 'message', 'hello', '--wait=true', '--timeout=60s']);
      await eventually(
        'the Pod to be garbage-collected',
        async () => ((await env.kubectl(['get', 'pod', '-n', ns, 'hello-pod'])).code !== 0 ? true : undefined),
        60_000,
      );
    });

    test('bad input is refused by the API server with a message naming the field', async () => {
      const noText = await env.kubectl(
        ['apply', '-n', ns, '-f', '-'],
        'apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: empty\nspec: {}\n',
      );
      assert.notEqual(noText.code, 0);
      assert.match(noText.stderr, /spec\.text: Required value/);
      const long = await env.kubectl(['apply', '-n', ns, '-f', '-'], messageYaml('long', 'x'.repeat(4097)));
      assert.notEqual(long.code, 0);
      assert.match(long.stderr, /spec\.text: Too long: may not be more than 4096/);
    });
  });
}

/** Two replicas with leader election never both act: one Pod per Message, and the standby takes over. */
export function leaderElectionSuite(style: string, spec: ControllerSpec): void {
  describe(`Message operator (${style} style) with leader election`, () => {
    let env: TestEnv;
    let ns: string;

    before(async () => {
      env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
      ns = await env.namespace(`le-${style}`);
    });
    after(async () => env?.cleanup());

    test('one leader acts; after it stops, the other takes over', async () => {
      const a = startOperator(env, spec, ns, { lease: 'message-operator', identity: 'replica-a' });
      await eventually('replica-a to lead', async () =>
        a.logs.some((l) => /became leader|started leading|acquired/i.test(l)) ? true : undefined,
      );
      const b = startOperator(env, spec, ns, { lease: 'message-operator', identity: 'replica-b' });
      const docs = Array.from({ length: 10 }, (_, i) => messageYaml(`m${i}`, `text ${i}`)).join('---\n');
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], docs);
      for (let i = 0; i < 10; i++) await readyMessage(env, ns, `m${i}`);
      const reconciledBy = (r: Running) => r.logs.filter((l) => l.includes('"msg":"Reconciling Message"')).length;
      assert.ok(reconciledBy(a) >= 10);
      assert.equal(reconciledBy(b), 0, 'the standby replica does not reconcile');
      const pods = (await getJson<{ items: Pod[] }>(env, ['get', 'pods', '-n', ns]))!.items;
      assert.equal(pods.length, 10, 'exactly one Pod per Message');
      await a.stop(); // releases the Lease
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], messageYaml('after-handover', 'b acts now'));
      await readyMessage(env, ns, 'after-handover');
      assert.ok(reconciledBy(b) >= 1, 'the new leader reconciles');
      const lease = await getJson<{ spec: { holderIdentity?: string } }>(env, ['get', 'lease', '-n', ns, 'message-operator']);
      assert.equal(lease?.spec.holderIdentity, 'replica-b');
      await b.stop();
      const podsAfter = (await getJson<{ items: Pod[] }>(env, ['get', 'pods', '-n', ns]))!.items;
      assert.equal(podsAfter.length, 11);
    });
  });
}
