// The Application operator on a real control plane: kube-controller-manager runs the Deployments,
// kwok runs their Pods, the garbage collector removes children of deleted Applications.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from 'bosun';
import { eventually, runControllers, startTestEnv, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { applicationController } from './reconciler.js';
import type { Application } from './resource.js';

type Running = RunningControllers;

function startOperator(env: TestEnv, ns: string): Running {
  return runControllers(env, [applicationController], { namespaces: [ns] });
}

type Container = {
  image: string;
  ports: { containerPort: number }[];
  securityContext: Record<string, unknown>;
  resources: { requests?: unknown; limits?: unknown };
};
type DeploymentJson = KubeObject<
  {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { securityContext: Record<string, unknown>; containers: Container[] } };
  },
  { readyReplicas?: number }
>;
type ServiceJson = KubeObject<{ type: string; selector: Record<string, string>; ports: { port: number; targetPort: number }[] }>;

async function getJson<T>(env: TestEnv, args: string[]): Promise<T | undefined> {
  const r = await env.kubectl([...args, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

function appYaml(name: string, spec: { image?: string; replicas?: number; port?: number }): string {
  const lines = Object.entries(spec).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return `apiVersion: shclub.github.io/v1\nkind: Application\nmetadata:\n  name: ${name}\nspec:\n${lines.join('\n')}\n`;
}

/** Waits until the Application reports Ready for its current generation with `replicas` ready. */
async function readyApp(env: TestEnv, ns: string, name: string, replicas: number): Promise<Application> {
  return eventually(
    `Application ${name} Ready with ${replicas} replicas`,
    async () => {
      const a = await getJson<Application>(env, ['get', '-n', ns, 'application', name]);
      const ready = a?.status?.conditions?.find((c) => c.type === 'Ready');
      return a &&
        ready?.status === 'True' &&
        a.status?.readyReplicas === replicas &&
        a.status.replicas === replicas &&
        a.status.observedGeneration === a.metadata.generation
        ? a
        : undefined;
    },
    60_000,
    200,
  );
}

async function runningPods(env: TestEnv, ns: string, name: string): Promise<number> {
  const pods = (await getJson<{ items: KubeObject<unknown, { phase?: string }>[] }>(env, ['get', 'pods', '-n', ns, '-l', `app=${name}`]))!
    .items;
  return pods.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp).length;
}

describe('Application operator', () => {
  let env: TestEnv;
  let ns: string;
  let op: Running;

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/applications.shclub.github.io.yaml'] });
    ns = await env.namespace('app');
    op = startOperator(env, ns);
  });
  after(async () => {
    await op?.stop();
    await env?.cleanup();
  });

  test('an Application gets an owned, restricted Deployment and a ClusterIP Service; its Pods run; status mirrors readiness', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], appYaml('web', { image: 'nginx:1.27', replicas: 2, port: 8080 }));
    const app = await readyApp(env, ns, 'web', 2);
    assert.equal(app.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'ReplicasReady');

    const dep = (await getJson<DeploymentJson>(env, ['get', 'deployment', '-n', ns, 'web']))!;
    const ref = dep.metadata.ownerReferences?.[0];
    assert.equal(ref?.uid, app.metadata.uid);
    assert.equal(ref?.controller, true);
    assert.equal(dep.metadata.labels?.app, 'web');
    assert.equal(dep.spec?.replicas, 2);
    assert.deepEqual(dep.spec?.selector.matchLabels, { app: 'web' });
    assert.equal(dep.spec?.template.metadata.labels.app, 'web');
    const pod = dep.spec!.template.spec;
    const c = pod.containers[0]!;
    assert.equal(c.image, 'nginx:1.27');
    assert.equal(c.ports[0]?.containerPort, 8080);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.ok(c.resources.requests && c.resources.limits, 'requests and limits');

    const svc = (await getJson<ServiceJson>(env, ['get', 'service', '-n', ns, 'web']))!;
    assert.equal(svc.metadata.ownerReferences?.[0]?.uid, app.metadata.uid);
    assert.equal(svc.metadata.ownerReferences?.[0]?.controller, true);
    assert.equal(svc.spec?.type, 'ClusterIP');
    assert.deepEqual(svc.spec?.selector, { app: 'web' });
    assert.equal(svc.spec?.ports[0]?.port, 8080);
    assert.equal(svc.spec?.ports[0]?.targetPort, 8080);

    assert.equal(await runningPods(env, ns, 'web'), 2);
    // Server-side apply under the operator's field manager, as the issue asks.
    const managers = await env.kubectlOk([
      'get',
      'deployment',
      '-n',
      ns,
      'web',
      '--show-managed-fields',
      '-o',
      'jsonpath={.metadata.managedFields[*].operation}',
    ]);
    assert.match(managers, /Apply/);
  });

  test('a replica change propagates to the Deployment, its Pods and the status', async () => {
    await env.kubectlOk(['patch', '-n', ns, 'application', 'web', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
    const app = await readyApp(env, ns, 'web', 3);
    assert.equal(app.metadata.generation, 2);
    assert.equal((await getJson<DeploymentJson>(env, ['get', 'deployment', '-n', ns, 'web']))!.spec?.replicas, 3);
    await eventually('3 Running Pods', async () => ((await runningPods(env, ns, 'web')) === 3 ? true : undefined), 60_000);
  });

  test('a port change propagates to the Deployment and the Service', async () => {
    await env.kubectlOk(['patch', '-n', ns, 'application', 'web', '--type=merge', '-p', '{"spec":{"port":9090}}']);
    await eventually('port 9090 on both children', async () => {
      const d = await getJson<DeploymentJson>(env, ['get', 'deployment', '-n', ns, 'web']);
      const s = await getJson<ServiceJson>(env, ['get', 'service', '-n', ns, 'web']);
      return d?.spec?.template.spec.containers[0]?.ports[0]?.containerPort === 9090 &&
        s?.spec?.ports[0]?.targetPort === 9090 &&
        s.spec.ports[0].port === 9090
        ? true
        : undefined;
    });
    await readyApp(env, ns, 'web', 3);
  });

  test('a Service deleted by hand comes back', async () => {
    const before = (await getJson<ServiceJson>(env, ['get', 'service', '-n', ns, 'web']))!;
    await env.kubectlOk(['delete', 'service', '-n', ns, 'web']);
    const after = await eventually('the Service to come back', async () => {
      const s = await getJson<ServiceJson>(env, ['get', 'service', '-n', ns, 'web']);
      return s && s.metadata.uid !== before.metadata.uid ? s : undefined;
    });
    assert.equal(after.spec?.ports[0]?.port, 9090);
  });

  test('a Deployment edited by hand (image changed with kubectl) is repaired', async () => {
    await env.kubectlOk(['set', 'image', '-n', ns, 'deployment/web', 'app=evil:latest']);
    await eventually('the image to be nginx:1.27 again', async () => {
      const d = await getJson<DeploymentJson>(env, ['get', 'deployment', '-n', ns, 'web']);
      return d?.spec?.template.spec.containers[0]?.image === 'nginx:1.27' ? true : undefined;
    });
    await env.kubectlOk(['scale', '-n', ns, 'deployment/web', '--replicas=1']);
    await eventually('the replicas to be 3 again', async () => {
      const d = await getJson<DeploymentJson>(env, ['get', 'deployment', '-n', ns, 'web']);
      return d?.spec?.replicas === 3 ? true : undefined;
    });
    await readyApp(env, ns, 'web', 3);
  });

  test('restarting the operator over converged Applications makes no writes', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], appYaml('api', { image: 'nginx:1.27', replicas: 1, port: 80 }));
    await readyApp(env, ns, 'api', 1);
    await readyApp(env, ns, 'web', 3);
    await op.stop();
    await new Promise((r) => setTimeout(r, 500));
    const snapshot = async () => {
      const kinds = ['applications', 'deployments', 'services', 'replicasets', 'pods', 'events'];
      const out: string[] = [];
      for (const k of kinds) {
        const items = (await getJson<{ items: KubeObject[] }>(env, ['get', k, '-n', ns]))!.items;
        out.push(...items.map((o) => `${k}/${o.metadata.name}@${o.metadata.resourceVersion}`));
      }
      return out.sort();
    };
    const s1 = await snapshot();
    op = startOperator(env, ns);
    await eventually('the restarted operator to reconcile both Applications', async () =>
      op.logs.filter((l) => l.includes('"msg":"Reconciling Application"')).length >= 2 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await snapshot(), s1, 'no Application, child or Event changed');
  });

  test('deleting an Application leaves nothing behind', async () => {
    await env.kubectlOk(['delete', '-n', ns, 'application', 'web', '--wait=true', '--timeout=60s']);
    await eventually(
      'Deployment, ReplicaSets, Pods and Service of web to be gone',
      async () => {
        const left = await env.kubectlOk(['get', 'deployments,replicasets,pods,services', '-n', ns, '-l', 'app=web', '-o', 'name']);
        const svc = await env.kubectl(['get', 'service', '-n', ns, 'web']);
        return left.trim() === '' && svc.code !== 0 ? true : undefined;
      },
      60_000,
      250,
    );
  });

  test('bad input is refused by the API server with a message naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'negative replicas',
        appYaml('bad1', { image: 'nginx', replicas: -1, port: 80 }),
        /spec\.replicas: Invalid value: -1: spec\.replicas in body should be greater than or equal to 0/,
      ],
      [
        'port out of range',
        appYaml('bad2', { image: 'nginx', replicas: 1, port: 70000 }),
        /spec\.port: Invalid value: 70000: spec\.port in body should be less than or equal to 65535/,
      ],
      ['missing image', appYaml('bad3', { replicas: 1, port: 80 }), /spec\.image: Required value/],
      ['missing port', appYaml('bad4', { image: 'nginx', replicas: 1 }), /spec\.port: Required value/],
    ];
    for (const [what, yaml, message] of cases) {
      const r = await env.kubectl(['apply', '-n', ns, '-f', '-'], yaml);
      assert.notEqual(r.code, 0, `${what} is refused`);
      assert.match(r.stderr, message, what);
    }
  });
});
