// Custom resources the API server accepts whose children it refuses: a name or label the child
// derives from the parent that is too long or the wrong shape, an image reference with whitespace.
// Each must show on the parent (Ready=False ChildInvalid with the server's message, a Warning
// Event), create no such child, and not be retried while the parent is unchanged.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from 'bosun';
import { eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { applicationController } from '../../operators/application/reconciler.js';
import { IMAGE_ANNOTATION } from '../../operators/message/pod.js';
import { messageController } from '../../operators/message/reconciler.js';
import { recordCase } from './lib/cli.js';

type Condition = { type: string; status: string; reason: string; message: string };
type Parent = KubeObject<unknown, { conditions?: Condition[] }>;
type EventObject = KubeObject & { reason?: string; type?: string; message?: string; involvedObject?: { name?: string } };

const CRDS = ['config/crd/messages.myorg.dev.yaml', 'config/crd/applications.shclub.github.io.yaml'];
const WHITESPACE = 'must not have leading or trailing whitespace';

/** A parent whose child is refused. */
interface ChildCase {
  name: string;
  kind: 'Message' | 'Application';
  objectName: string;
  annotations?: Record<string, string>;
  spec: Record<string, unknown>;
  /** The refused child, as the message names it. */
  child: string;
  /** The API server's words in the condition and the Event. */
  expect: RegExp;
  /** Kinds that must have no object of this name. */
  noChild: string[];
  field: string;
  /** Reconciles allowed in 3 s once refused: 1, or more where a child that was made (a Deployment) still reports status changes. */
  maxReconciles?: number;
}

const long = (s: string) => s.replace(/([a-z])\1{40,}/g, (m) => `${m[0]}×${m.length}`);

const cases: ChildCase[] = [
  {
    name: 'a Message whose name is valid but 4 characters too long for its Pod',
    kind: 'Message',
    objectName: 'm'.repeat(250),
    spec: { text: 'hi' },
    child: `Pod ${'m'.repeat(250)}-pod`,
    expect: /metadata\.name: Invalid value: "m{250}-pod": must be no more than 253 characters/,
    noChild: ['pod'],
    field: 'metadata.name of the Pod (from the Message name)',
  },
  {
    name: 'a Message whose image annotation has a leading space',
    kind: 'Message',
    objectName: 'spaced-image',
    annotations: { [IMAGE_ANNOTATION]: ' busybox:1.36' },
    spec: { text: 'hi' },
    child: 'Pod spaced-image-pod',
    expect: new RegExp(`spec\\.containers\\[0\\]\\.image: Invalid value: " busybox:1\\.36": ${WHITESPACE}`),
    noChild: ['pod'],
    field: `spec.containers[0].image (from annotation ${IMAGE_ANNOTATION})`,
  },
  {
    name: 'a Message whose image annotation is empty',
    kind: 'Message',
    objectName: 'empty-image',
    annotations: { [IMAGE_ANNOTATION]: '' },
    spec: { text: 'hi' },
    child: 'Pod empty-image-pod',
    expect: /spec\.containers\[0\]\.image: Required value/,
    noChild: ['pod'],
    field: `spec.containers[0].image (from annotation ${IMAGE_ANNOTATION})`,
  },
  {
    name: 'an Application whose name is too long for the app label',
    kind: 'Application',
    objectName: 'a'.repeat(64),
    spec: { image: 'nginx:1.27', replicas: 1, port: 8080 },
    child: `Deployment ${'a'.repeat(64)}`,
    expect: /metadata\.labels: Invalid value: "a{64}": must be no more than 63 bytes/,
    noChild: ['deployment', 'service'],
    field: 'the app label of the Deployment (from the Application name)',
  },
  {
    name: 'an Application whose name starts with a digit, which no Service name may',
    kind: 'Application',
    objectName: '1st-app',
    spec: { image: 'nginx:1.27', replicas: 1, port: 8080 },
    child: 'Service 1st-app',
    expect:
      /metadata\.name: Invalid value: "1st-app": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character/,
    noChild: ['service'],
    field: 'metadata.name of the Service (from the Application name)',
    maxReconciles: 5,
  },
  {
    name: 'an Application whose name has a dot, which no Service name may',
    kind: 'Application',
    objectName: 'web.v2',
    spec: { image: 'nginx:1.27', replicas: 1, port: 8080 },
    child: 'Service web.v2',
    expect: /metadata\.name: Invalid value: "web\.v2": a DNS-1035 label must consist of lower case alphanumeric characters or '-'/,
    noChild: ['service'],
    field: 'metadata.name of the Service (from the Application name)',
    maxReconciles: 5,
  },
];

describe('parents whose children the API server refuses', { concurrency: true }, () => {
  let env: TestEnv;
  let ns: string;
  let op: RunningControllers;

  const getJson = async <T>(args: string[]): Promise<T | undefined> => {
    const r = await env.kubectl([...args, '-o', 'json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
  };
  const reconciles = (kind: string, name: string) =>
    op.logs.filter((l) => l.includes(`"msg":"Reconciling ${kind}"`) && l.includes(`"name":"${name}"`)).length;
  const apiVersion = (kind: string) => (kind === 'Message' ? 'myorg.dev/v1' : 'shclub.github.io/v1');

  before(async () => {
    env = await startTestEnv({ crds: CRDS });
    ns = await env.namespace('badinput-children');
    op = runControllers(env, [messageController, applicationController], { namespaces: [ns] });
  });
  after(async () => {
    await op?.stop();
    await env?.cleanup();
  });

  for (const c of cases) {
    test(c.name, async () => {
      const manifest = {
        apiVersion: apiVersion(c.kind),
        kind: c.kind,
        metadata: { name: c.objectName, ...(c.annotations ? { annotations: c.annotations } : {}) },
        spec: c.spec,
      };
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(manifest));
      const ready = await eventually(
        `${c.kind} ${c.objectName} Ready=False ChildInvalid`,
        async () => {
          const p = await getJson<Parent>(['get', '-n', ns, c.kind.toLowerCase(), c.objectName]);
          const r = p?.status?.conditions?.find((x) => x.type === 'Ready');
          return r?.status === 'False' && r.reason === 'ChildInvalid' ? r : undefined;
        },
        20_000,
      );
      const event = await eventually(
        'a ChildInvalid Warning Event on the parent',
        async () => {
          const list = (await getJson<{ items: EventObject[] }>(['get', 'events', '-n', ns]))?.items ?? [];
          return list.find((e) => e.type === 'Warning' && e.reason === 'ChildInvalid' && e.involvedObject?.name === c.objectName);
        },
        10_000,
      );
      recordCase({
        id: `children: ${c.name}`,
        input: long(JSON.stringify({ metadata: manifest.metadata, spec: c.spec })),
        message: long(ready.message),
        names: c.field,
        fix: "none beyond the API server's rule",
        parent: `Ready=False ChildInvalid; Warning Event ChildInvalid: ${long(event.message ?? '').slice(0, 60)}…`,
        command: 'node --import tsx --test test/badinput/children.test.ts',
      });
      assert.ok(
        ready.message.startsWith(`the API server refused ${c.child.replace(' ', ` ${ns}/`)}: `),
        `the condition names the child: ${long(ready.message)}`,
      );
      assert.match(ready.message, c.expect);
      assert.match(event.message ?? '', c.expect);
      // Not retried while the parent is unchanged: only a late event, or the status changes of a Deployment that was made, bring it back.
      const r0 = reconciles(c.kind, c.objectName);
      await new Promise((r) => setTimeout(r, 3000));
      const more = reconciles(c.kind, c.objectName) - r0;
      assert.ok(more <= (c.maxReconciles ?? 1), `${more} reconciles in 3 s while ${c.kind} ${c.objectName} is unchanged: a retry loop`);
      for (const kind of c.noChild) {
        const name = c.kind === 'Message' ? `${c.objectName}-pod` : c.objectName;
        assert.notEqual((await env.kubectl(['get', '-n', ns, kind, name, '-o', 'name'])).code, 0, `no ${kind} ${name} was made`);
      }
    });
  }

  test('an Application whose image has a trailing space shows why its Pods are never made', async () => {
    // The Deployment passes validation; the ReplicaSet's Pods do not, so the refusal is on the Deployment's status.
    const name = 'spaced-app';
    await env.kubectlOk(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'shclub.github.io/v1',
        kind: 'Application',
        metadata: { name },
        spec: { image: 'nginx:1.27 ', replicas: 1, port: 8080 },
      }),
    );
    type Dep = KubeObject<unknown, { conditions?: Condition[] }>;
    const failure = await eventually(
      "the Deployment's ReplicaFailure condition",
      async () => {
        const d = await getJson<Dep>(['get', '-n', ns, 'deployment', name]);
        return d?.status?.conditions?.find((x) => x.type === 'ReplicaFailure' && x.status === 'True');
      },
      20_000,
    );
    assert.match(failure.message, new RegExp(WHITESPACE));
    let shown: Condition | undefined;
    const ready = await eventually(
      'Ready=False naming the refused image',
      async () => {
        const p = await getJson<Parent>(['get', '-n', ns, 'application', name]);
        shown = p?.status?.conditions?.find((x) => x.type === 'Ready');
        return shown?.status === 'False' && shown.message.includes(WHITESPACE) ? shown : undefined;
      },
      5_000,
    ).finally(() => {
      recordCase({
        id: 'children: an Application whose image has a trailing space',
        input: '{"spec":{"image":"nginx:1.27 ","replicas":1,"port":8080}}',
        message: `${shown?.reason}: ${shown?.message}`,
        names: 'the Deployment, the Pod field and the image',
        fix: "none beyond the API server's rule",
        parent: `Ready=False ${shown?.reason}; one Warning Event ReplicaFailure`,
        command: 'node --import tsx --test test/badinput/children.test.ts',
      });
    });
    assert.equal(ready.reason, 'ReplicaFailure');
    assert.equal(ready.message, `Deployment ${name} cannot create Pods: ${failure.message}`);
    assert.match(ready.message, /nginx:1\.27 /);
    const warnings = async () =>
      ((await getJson<{ items: EventObject[] }>(['get', 'events', '-n', ns]))?.items ?? []).filter(
        (e) => e.type === 'Warning' && e.reason === 'ReplicaFailure' && e.involvedObject?.name === name,
      );
    const [event] = await eventually(
      'a ReplicaFailure Warning Event on the Application',
      async () => ((await warnings()).length ? await warnings() : undefined),
      10_000,
    );
    assert.equal(event!.message, ready.message);
    // Once per transition: the reconciles the Deployment's status changes bring must not repeat it.
    const r0 = reconciles('Application', name);
    await env.kubectlOk(['annotate', '-n', ns, 'deployment', name, 'example.com/poke=1']);
    await eventually('a reconcile after the Deployment changed', async () => reconciles('Application', name) > r0 || undefined, 10_000);
    const again = await warnings();
    assert.equal(again.length, 1, 'one Warning Event');
    assert.equal(
      (again[0] as EventObject & { count?: number }).count ?? 1,
      1,
      'the Warning Event was not repeated by the later reconciles',
    );
  });

  test('a Message with annotations just under the 256 KiB limit still gets its Pod and turns Ready', async () => {
    const name = 'big-annotations';
    const blob = 'x'.repeat(250 * 1024);
    await env.kubectlOk(
      ['create', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'myorg.dev/v1',
        kind: 'Message',
        metadata: { name, annotations: { 'example.com/blob': blob } },
        spec: { text: 'hi' },
      }),
    );
    const ready = await eventually(
      'Ready=True',
      async () => {
        const p = await getJson<Parent>(['get', '-n', ns, 'message', name]);
        const r = p?.status?.conditions?.find((x) => x.type === 'Ready');
        return r?.status === 'True' ? r : undefined;
      },
      30_000,
    );
    recordCase({
      id: 'children: annotations near the limit',
      input: 'a Message with a 250 KiB annotation',
      message: `(accepted) Ready=True ${ready.reason}: ${ready.message}`,
      names: '-',
      fix: '-',
      parent: `Ready=True ${ready.reason}`,
      command: 'node --import tsx --test test/badinput/children.test.ts',
    });
    const pod = await getJson<KubeObject>(['get', '-n', ns, 'pod', `${name}-pod`]);
    assert.equal(pod?.metadata.annotations?.['example.com/blob'], undefined, "the parent's annotations are not copied to the child");
  });
});
