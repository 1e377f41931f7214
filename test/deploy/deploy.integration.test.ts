// The deployment story on a real API server: `kubectl apply -k config/default` is admitted under the
// `restricted` Pod Security profile without warnings, and the generated RBAC is both sufficient (the
// operators work with nothing but the ServiceAccount's token) and minimal (everything else is forbidden).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { eventually, runKubectl, startTestEnv, writeTokenKubeconfig, type TestEnv } from 'bosun/envtest';
import { serviceAccountName } from '../../packages/bosun/src/tooling/generate/rbac.js';
import { FLIGHTTICKET_API_KEY_SECRET_NAME, operators, prefix } from '../../operators/index.js';
import { startBookingService } from '../../operators/flightticket/booking/server.js';

const root = join(import.meta.dirname, '..', '..');
const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' };

let env: TestEnv;
let tmp: string;
let ns: string; // where the operator is deployed
let saKubeconfig: string;
const clusterScoped: string[] = [];

/** An overlay of config/default into the test namespace; cluster-scoped RBAC gets a suffix so test runs never share it. */
async function overlay(dir: string, namespace: string): Promise<void> {
  await writeFile(
    join(dir, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace,
      resources: [relative(dir, join(root, 'config/default'))],
      transformers: ['suffix.yaml'],
    }),
  );
  await writeFile(
    join(dir, 'suffix.yaml'),
    stringify({
      apiVersion: 'builtin',
      kind: 'PrefixSuffixTransformer',
      metadata: { name: 'cluster-scoped-suffix' },
      suffix: `-${namespace}`,
      fieldSpecs: [
        { kind: 'ClusterRole', path: 'metadata/name' },
        { kind: 'ClusterRoleBinding', path: 'metadata/name' },
      ],
    }),
  );
}

before(async () => {
  env = await startTestEnv({ crds: ['config/crd'] });
  tmp = await mkdtemp(join(tmpdir(), 'bosun-deploy-'));
  ns = await env.namespace('bosun-deploy', RESTRICTED);
  clusterScoped.push(`clusterrole/bosun-manager-role-${ns}`, `clusterrolebinding/bosun-manager-rolebinding-${ns}`);
  await overlay(tmp, ns);
});

after(async () => {
  if (env) {
    await env.kubectl(['delete', '--ignore-not-found', '--wait=false', ...clusterScoped]);
    await env.cleanup();
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

void describe('kubectl apply -k config/default into a restricted namespace', () => {
  test('is admitted with no Pod Security warning, and both operator Pods run', async () => {
    const r = await env.kubectl(['apply', '-k', tmp]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /PodSecurity|would violate/i, `kubectl printed a Pod Security warning:\n${r.stderr}`);
    // The harness applies CRDs server-side, so kubectl may note their missing last-applied annotation; nothing else.
    const other = r.stderr.split('\n').filter((l) => /^warning/i.test(l) && !/last-applied-configuration/.test(l));
    assert.deepEqual(other, [], `kubectl printed warnings:\n${r.stderr}`);
    // Control: the same namespace does warn about (and refuse) a Pod spec that is not restricted, so silence above means compliance.
    const bad = await env.kubectl(['create', 'deployment', 'not-restricted', '-n', ns, '--image=busybox:1.36', '--dry-run=server']);
    assert.match(bad.stderr, /Warning: would violate PodSecurity "restricted/);
    const labels = (await env.kubectlOk(['get', 'namespace', ns, '-o', 'jsonpath={.metadata.labels}'])) as string;
    assert.match(labels, /"pod-security.kubernetes.io\/enforce":"restricted"/, 'the namespace enforces restricted');
    const pods = await eventually(
      'two Running operator Pods',
      async () => {
        const out = JSON.parse(
          await env.kubectlOk(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/component=controller-manager', '-o', 'json']),
        ) as { items: { metadata: { name: string }; status: { phase?: string }; spec: { serviceAccountName?: string } }[] };
        return out.items.length === 2 && out.items.every((p) => p.status.phase === 'Running') ? out.items : undefined;
      },
      60_000,
    );
    assert.ok(
      pods.every((p) => p.spec.serviceAccountName === serviceAccountName(prefix)),
      'the Pods run as the generated ServiceAccount',
    );
    // A ReplicaSet whose Pods PSA refused would say so here (FailedCreate); none may exist.
    const events = await env.kubectlOk(['get', 'events', '-n', ns, '--field-selector', 'reason=FailedCreate', '-o', 'name']);
    assert.equal(events.trim(), '', 'no FailedCreate events');
  });
});

void describe('the generated RBAC, used through a token for the generated ServiceAccount', () => {
  let operator: ChildProcess | undefined;
  const logs: string[] = [];
  let workNs: string;
  let appNs: string;
  let ftNs: string;
  let booking: Awaited<ReturnType<typeof startBookingService>> | undefined;

  before(async () => {
    // The first describe applies the overlay; applying again is idempotent and lets this block run alone.
    await env.kubectlOk(['apply', '-k', tmp]);
    const token = (await env.kubectlOk(['create', 'token', serviceAccountName(prefix), '-n', ns, '--duration=1h'])).trim();
    saKubeconfig = join(tmp, 'sa-kubeconfig');
    await writeTokenKubeconfig({ adminKubeconfig: env.kubeconfig, token, file: saKubeconfig, user: 'operator' });
    workNs = await env.namespace('rbac-msg', RESTRICTED);
    appNs = await env.namespace('rbac-app');
    ftNs = await env.namespace('rbac-ft');
    const ftEnv: Record<string, string> = {};
    if (operators.flightticket) {
      // As deployed: the API key Secret sits in the operator namespace under the name the named-reads Role allows.
      booking = await startBookingService({ dataDir: join(tmp, 'booking'), apiKey: 'rbac-test-key', port: 0 });
      await env.kubectlOk([
        'create',
        'secret',
        'generic',
        FLIGHTTICKET_API_KEY_SECRET_NAME,
        '-n',
        ns,
        '--from-literal=apiKey=rbac-test-key',
      ]);
      Object.assign(ftEnv, {
        FLIGHTTICKET_BOOKING_URL: booking.url,
        FLIGHTTICKET_API_KEY_SECRET: `${ns}/${FLIGHTTICKET_API_KEY_SECRET_NAME}`,
      });
    }
    // The operators `bosun run` offers that this test knows how to exercise; others join as they land.
    const names = ['message', 'application', 'flightticket'].filter((n) => operators[n]);
    operator = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'packages/bosun/src/tooling/cli/run-main.ts'),
        'run',
        ...names,
        '--kubeconfig',
        saKubeconfig,
        '--standalone',
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
        // In a cluster the manifests register the webhooks; this ServiceAccount may not, and need not.
        '--no-webhooks',
      ],
      {
        cwd: root,
        env: { ...process.env, ...ftEnv, KUBECONFIG: saKubeconfig },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    for (const s of [operator.stdout!, operator.stderr!])
      s.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  });

  after(async () => {
    if (operator && operator.exitCode === null) {
      operator.kill('SIGTERM');
      await new Promise((r) => operator!.once('exit', r));
    }
    await booking?.close();
  });

  test('the token is the ServiceAccount, not an admin', async () => {
    const who = await runKubectl(saKubeconfig, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    assert.equal(who.stdout, `system:serviceaccount:${ns}:${serviceAccountName(prefix)}`, who.stderr);
  });

  test('is sufficient: a Message gets its Pod and becomes Ready', async () => {
    await env.kubectlOk(
      ['apply', '-n', workNs, '-f', '-'],
      'apiVersion: myorg.dev/v1\nkind: Message\nmetadata:\n  name: hello\nspec:\n  text: hello from a least-privilege operator\n',
    );
    const r = await env.kubectl(['wait', '-n', workNs, '--for=condition=Ready', 'message/hello', '--timeout=60s']);
    assert.equal(r.code, 0, `${r.stderr}\noperator logs:\n${logs.slice(-30).join('\n')}`);
    await env.kubectlOk(['get', 'pod', '-n', workNs, 'hello-pod']);
    assert.ok(
      !logs.some((l) => /forbidden/i.test(l)),
      `the operator hit a Forbidden:\n${logs.filter((l) => /forbidden/i.test(l)).join('\n')}`,
    );
  });

  test(
    'is sufficient: an Application gets its Deployment and Service',
    { skip: operators.application ? false : 'the application operator is not registered in operators/index.ts' },
    async () => {
      await env.kubectlOk(['apply', '-n', appNs, '-f', join(root, 'examples/application.yaml')]);
      const r = await env.kubectl(['wait', '-n', appNs, '--for=condition=Ready', 'application/example-app', '--timeout=90s']);
      assert.equal(r.code, 0, `${r.stderr}\noperator logs:\n${logs.slice(-30).join('\n')}`);
      const children = JSON.parse(await env.kubectlOk(['get', 'deployments,services', '-n', appNs, '-o', 'json'])) as {
        items: { kind: string; metadata: { ownerReferences?: { name: string }[] } }[];
      };
      const owned = children.items
        .filter((c) => c.metadata.ownerReferences?.some((o) => o.name === 'example-app'))
        .map((c) => c.kind)
        .sort();
      assert.deepEqual(owned, ['Deployment', 'Service']);
      assert.ok(
        !logs.some((l) => /forbidden/i.test(l)),
        `the operator hit a Forbidden:\n${logs.filter((l) => /forbidden/i.test(l)).join('\n')}`,
      );
    },
  );

  test(
    'is sufficient: a FlightTicket gets booked with the key read from the named Secret',
    { skip: operators.flightticket ? false : 'the flightticket operator is not registered in operators/index.ts' },
    async () => {
      await env.kubectlOk(
        ['apply', '-n', ftNs, '-f', '-'],
        'apiVersion: flights.com/v1\nkind: FlightTicket\nmetadata:\n  name: trip\nspec:\n  from: ICN\n  to: NRT\n  number: 2\n',
      );
      const r = await env.kubectl(['wait', '-n', ftNs, '--for=condition=Ready', 'flightticket/trip', '--timeout=60s']);
      assert.equal(r.code, 0, `${r.stderr}\noperator logs:\n${logs.slice(-30).join('\n')}`);
      assert.equal(await env.kubectlOk(['get', 'flightticket', 'trip', '-n', ftNs, '-o', 'jsonpath={.status.state}']), 'Booked');
      assert.ok(
        !logs.some((l) => /forbidden/i.test(l)),
        `the operator hit a Forbidden:\n${logs.filter((l) => /forbidden/i.test(l)).join('\n')}`,
      );
    },
  );

  test('is minimal: Secrets cannot be deleted, Nodes not listed, ConfigMaps not written, other Leases not touched', async () => {
    const can = async (...args: string[]) => (await runKubectl(saKubeconfig, ['auth', 'can-i', ...args])).stdout.trim();
    assert.equal(await can('delete', 'secrets', '-n', ns), 'no');
    assert.equal(await can('list', 'secrets', '-n', ns), 'no');
    assert.equal(await can('get', 'secrets', '-n', ns), 'no', 'only the named Secret is readable');
    assert.equal(await can('get', `secrets/${FLIGHTTICKET_API_KEY_SECRET_NAME}`, '-n', ns), operators.flightticket ? 'yes' : 'no');
    assert.equal(await can('delete', `secrets/${FLIGHTTICKET_API_KEY_SECRET_NAME}`, '-n', ns), 'no');
    assert.equal(await can('list', 'nodes'), 'no');
    assert.equal(await can('create', 'configmaps', '-n', workNs), 'no');
    assert.equal(await can('patch', 'configmaps', '-n', workNs), 'no');
    assert.equal(await can('create', 'leases.coordination.k8s.io', '-n', 'kube-system'), 'no');
    assert.equal(await can('create', 'clusterroles.rbac.authorization.k8s.io'), 'no');
    // ...and what it needs is allowed, so the "no"s above are not an authentication failure.
    assert.equal(await can('create', 'pods', '-n', workNs), 'yes');
    assert.equal(await can('create', 'leases.coordination.k8s.io', '-n', ns), 'yes');
    assert.equal(await can('patch', 'messages.myorg.dev', '--subresource=status', '-n', workNs), 'yes');
    // Real requests, not just the authorizer's opinion.
    await env.kubectlOk(['create', 'secret', 'generic', 'precious', '-n', ns, '--from-literal=k=v']);
    const del = await runKubectl(saKubeconfig, ['delete', 'secret', 'precious', '-n', ns]);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /forbidden/i);
    const nodes = await runKubectl(saKubeconfig, ['get', 'nodes']);
    assert.match(nodes.stderr, /forbidden/i);
    const cm = await runKubectl(saKubeconfig, ['create', 'configmap', 'x', '-n', workNs, '--from-literal=a=b']);
    assert.match(cm.stderr, /forbidden/i);
  });
});
