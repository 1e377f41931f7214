// `bosun run` of a project that declares webhooks and versions, against the local test cluster: it serves them,
// registers them with the API server (which then refuses, mutates and converts through it), and removes the
// registration when stopped. The project's Gadget group is this run's own, so its webhooks match nothing else.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { toMultiVersionCrd } from '../generate/crd.js';
import { eventually, startTestEnv, type TestEnv } from '../envtest/testenv.js';
import { gadgetApi, gadgetYaml } from './testdata/gadgets.js';

const root = resolve(import.meta.dirname, '../../../../..');
let env: TestEnv;
let ns: string;
const api = gadgetApi();
const registration = `bosun-local-gadgets-${api.group.split('.')[0]}`;

before(async () => {
  env = await startTestEnv();
  const crd = toMultiVersionCrd(api.versions, {
    clientConfig: { service: { name: 'webhook-service', namespace: 'system', path: api.versions.path } },
  });
  await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(crd));
  await env.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${api.versions.crdName}`]);
  ns = await env.namespace('run-webhooks');
});

after(async () => {
  if (env) {
    await env.kubectl(['delete', 'validatingwebhookconfiguration,mutatingwebhookconfiguration', registration, '--ignore-not-found']);
    await env.kubectl(['delete', 'crd', api.versions.crdName, '--ignore-not-found', '--wait=false']);
    await env.cleanup();
  }
});

/** The arguments of `bosun run gadgets` of testdata/run-project.ts on the test's namespace, then `flags`. */
function runArgs(...flags: string[]): string[] {
  const project = join(import.meta.dirname, 'testdata/run-project.ts');
  const run = ['run', 'gadgets', '--from', project, '--kubeconfig', env.kubeconfig, '--standalone', '-n', ns];
  return [
    '--import',
    'tsx',
    join(root, 'packages/bosun/src/tooling/cli/run-main.ts'),
    ...run,
    '--metrics-addr',
    '0',
    '--health-addr',
    '0',
    ...flags,
  ];
}

/** `bosun run gadgets` of testdata/run-project.ts, its log lines collected. */
function bosunRun(...flags: string[]): { child: ChildProcess; lines: () => string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, runArgs('--log-format', 'json', ...flags), {
    cwd: root,
    env: { ...process.env, BOSUN_TEST_GADGET_GROUP: api.group },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  return { child, lines: () => out.split('\n').filter(Boolean), exited };
}

function logged(lines: string[], msg: string): Record<string, unknown> | undefined {
  for (const line of lines) {
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.msg === msg) return rec;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

void test('bosun run serves and registers the project webhooks with the local API server and removes them on SIGTERM', async () => {
  const run = bosunRun();
  try {
    const registered = await eventually(
      'bosun run to register its webhooks',
      async () => {
        const rec = logged(run.lines(), 'caches synced') && logged(run.lines(), 'webhooks registered');
        if (!rec && run.child.exitCode !== null)
          throw new Error(`bosun run exited ${run.child.exitCode}: ${run.lines().slice(-20).join('\n')}`);
        return rec;
      },
      90_000,
      200,
    );
    const url = registered.url as string;
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(registered.name, registration);
    const config = JSON.parse(await env.kubectlOk(['get', 'validatingwebhookconfiguration', registration, '-o', 'json'])) as {
      webhooks: { clientConfig: { url: string } }[];
    };
    assert.deepEqual(
      config.webhooks.map((w) => w.clientConfig.url),
      [`${url}/validate/size.gadgets.${api.group}`],
    );
    // The API server calls the server bosun run started: a refusal, a default, a conversion.
    const big = gadgetYaml(api.v1, ns, 'big', { owner: 'alice', sizeCm: 300 });
    await eventually('the registration in effect', async () =>
      (await env.kubectl(['apply', '--dry-run=server', '-f', '-'], big)).code !== 0 ? true : undefined,
    );
    const refused = await env.kubectl(['apply', '-f', '-'], big);
    assert.match(refused.stderr, /admission webhook "size\.gadgets\..*" denied the request: spec\.sizeCm is 300, more than 100\./);
    await env.kubectlOk(['apply', '-f', '-'], gadgetYaml(api.v1, ns, 'ok', { owner: 'alice', sizeCm: 10 }));
    const v2 = JSON.parse(await env.kubectlOk(['get', `gadgets.v2.${api.group}`, 'ok', '-n', ns, '-o', 'json'])) as { spec: unknown };
    assert.deepEqual(v2.spec, { owner: { name: 'alice' }, size: { value: 10, unit: 'cm' }, color: 'grey' });

    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0, run.lines().slice(-20).join('\n'));
    assert.ok(logged(run.lines(), 'webhook configurations removed'));
    assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', registration])).code, 1, 'validating removed');
    assert.equal((await env.kubectl(['get', 'mutatingwebhookconfiguration', registration])).code, 1, 'mutating removed');
  } finally {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  }
});

void test('bosun run --no-webhooks serves and registers none of them', async () => {
  const run = bosunRun('--no-webhooks');
  try {
    await eventually(
      'bosun run to sync its caches',
      async () => {
        const rec = logged(run.lines(), 'caches synced');
        if (!rec && run.child.exitCode !== null)
          throw new Error(`bosun run exited ${run.child.exitCode}: ${run.lines().slice(-20).join('\n')}`);
        return rec;
      },
      90_000,
      200,
    );
    assert.equal(logged(run.lines(), 'webhook server listening'), undefined);
    assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', registration])).code, 1);
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0, run.lines().slice(-20).join('\n'));
  } finally {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  }
});

void test('bosun run of a project whose versioned CRD is not installed exits 1 naming the CRD and the fix, registering nothing', async () => {
  const missing = gadgetApi();
  const child = spawn(process.execPath, runArgs(), {
    cwd: root,
    env: { ...process.env, BOSUN_TEST_GADGET_GROUP: missing.group },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, out.slice(-2000));
    assert.match(
      out,
      new RegExp(
        `WebhookRegistrationError: CRD gadgets\\.${missing.group.replace(/\./g, '\\.')} does not exist, so its conversion webhook cannot be registered\\. Fix: apply the CRDs first`,
      ),
    );
    const name = `bosun-local-gadgets-${missing.group.split('.')[0]}`;
    assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', name])).code, 1, 'nothing registered');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
