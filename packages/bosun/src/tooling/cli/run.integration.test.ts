// `bosun run` as an operator runs it, with a token whose ServiceAccount has no RBAC: the API server's
// 403 must end the process with a non-zero code and a message saying what to grant.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startTestEnv, writeTokenKubeconfig, type TestEnv } from '../envtest/testenv.js';

let env: TestEnv;
let ns: string;
let tmp: string;
const root = resolve(import.meta.dirname, '../../../../..');

before(async () => {
  env = await startTestEnv({ crds: ['config/crd'] });
  ns = await env.namespace('run-forbidden');
  tmp = await mkdtemp(join(tmpdir(), 'bosun-run-'));
});

after(async () => {
  await env?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

void test('bosun run without list permission exits 1 at the cache-sync timeout, saying what to grant', async () => {
  await env.kubectlOk(['create', 'serviceaccount', 'nobody', '-n', ns]);
  const token = (await env.kubectlOk(['create', 'token', 'nobody', '-n', ns, '--duration=10m'])).trim();
  const kubeconfig = join(tmp, 'kubeconfig');
  await writeTokenKubeconfig({ adminKubeconfig: env.kubeconfig, token, file: kubeconfig, user: 'nobody' });
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'packages/bosun/src/tooling/cli/run-main.ts'),
      'run',
      'message',
      '-n',
      ns,
      '--kubeconfig',
      kubeconfig,
      '--standalone',
      '--metrics-addr',
      '0',
      '--health-addr',
      '0',
      '--cache-sync-timeout',
      '3000',
    ],
    { cwd: root, env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 1, `exit code; stderr: ${stderr.slice(-2000)}`);
  assert.match(stderr, /CacheSyncTimeoutError/);
  assert.match(stderr, /cannot watch messages\.myorg\.dev: 403 Forbidden/);
  assert.match(stderr, /grant list and watch on messages\.myorg\.dev to the ServiceAccount/);
  assert.match(stderr, /bosun generate/);
});

void test('bosun run exits 1 with LeaderElectionLostError when another replica takes its Lease', async () => {
  const lostNs = await env.namespace('run-lost');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'packages/bosun/src/tooling/cli/run-main.ts'),
      'run',
      'message',
      '-n',
      lostNs,
      '--kubeconfig',
      env.kubeconfig,
      '--leader-elect',
      '--leader-election-namespace',
      lostNs,
      '--metrics-addr',
      '0',
      '--health-addr',
      '0',
    ],
    { cwd: root, env: { ...process.env, KUBECONFIG: env.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  try {
    const holder = await eventually(
      'the operator to hold its Lease',
      async () => {
        const r = await env.kubectl(['get', 'lease', 'bosun-message', '-n', lostNs, '-o', 'jsonpath={.spec.holderIdentity}']);
        return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
      },
      60_000,
      200,
    );
    assert.ok(holder);
    await env.kubectlOk(['patch', 'lease', 'bosun-message', '-n', lostNs, '--type=merge', '-p', '{"spec":{"holderIdentity":"usurper"}}']);
    const code = await exited;
    assert.equal(code, 1, `exit code; stderr: ${stderr.slice(-2000)}`);
    assert.match(stderr, /LeaderElectionLostError: lost the Lease/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
