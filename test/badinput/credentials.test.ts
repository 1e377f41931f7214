// `bosun run` with credentials the cluster refuses or a server that is not there: a bogus token, a
// client certificate from another CA, an expired certificate, a ServiceAccount without rights, an
// unreachable server; and rights taken away while the operator runs. Each: a clear message, an exit
// (or, while running, staying up and retrying with backoff), no request storm.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, startTestEnv, type TestEnv } from 'bosun/envtest';
import { commandLine, errorLine, recordCase, runCli, spawnCli } from './lib/cli.js';
import { closedPort, expiredClientCert, foreignClientCert, kubeconfigWith, serviceAccountUser } from './lib/kubeconfigs.js';

const QUIET = ['--standalone', '--metrics-addr', '0', '--health-addr', '0', '--cache-sync-timeout', '3000'];
const REFUSED = 'the credentials were refused; check the kubeconfig or the ServiceAccount token';
const UNAUTHORIZED = `bosun: CacheSyncTimeoutError: caches did not sync within 3000 ms (cacheSyncTimeoutMs): cannot watch messages.myorg.dev: 401 Unauthorized: ${REFUSED}; cannot watch pods: 401 Unauthorized: ${REFUSED}`;

describe('bosun run with credentials the cluster refuses, or no server', { concurrency: 2 }, () => {
  let env: TestEnv;
  let ns: string;
  let tmp: string;

  before(async () => {
    env = await startTestEnv({ crds: ['config/crd/messages.myorg.dev.yaml'] });
    ns = await env.namespace('badinput-creds');
    tmp = mkdtempSync(join(tmpdir(), 'bosun-badinput-creds-'));
  });
  after(async () => {
    await env?.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs `bosun run message` with a kubeconfig, checks it exits 1 in time and retried no faster than a backoff allows. */
  async function refused(name: string, kubeconfig: string, want: string | RegExp, doc: { input: string; names: string; fix: string }) {
    const args = ['run', 'message', '-n', ns, '--kubeconfig', kubeconfig, ...QUIET];
    const r = await runCli(args, { timeoutMs: 60_000 });
    const line = errorLine(r);
    recordCase({
      id: `credentials: ${name}`,
      message: line,
      command: commandLine(args).replace(kubeconfig, `<${name}>.yaml`).replace(ns, '<ns>'),
      ...doc,
    });
    assert.equal(r.timedOut, false, 'exits once the cache-sync timeout passes');
    assert.equal(r.code, 1);
    if (typeof want === 'string') assert.equal(line, want);
    else assert.match(line, want);
    // Two watches, each retried with a doubling backoff from ~1 s: a handful of lists in 3 s, not a storm.
    const restarts = r.stdout.split('\n').filter((l) => l.includes('"msg":"watch restarting"')).length;
    assert.ok(restarts <= 10, `${restarts} watch restarts in 3 s`);
    return r;
  }

  test('a bogus bearer token', async () => {
    const kc = kubeconfigWith(env, join(tmp, 'bogus-token.yaml'), 'bogus', { token: 'not-a-real-token' });
    await refused('a bogus bearer token', kc, UNAUTHORIZED, {
      input: 'kubeconfig user token: not-a-real-token',
      names: 'each kind that could not be listed, 401',
      fix: 'check the kubeconfig or the token',
    });
  });

  test('a client certificate from another CA', async () => {
    const kc = kubeconfigWith(env, join(tmp, 'foreign-cert.yaml'), 'foreign', await foreignClientCert(join(tmp, 'foreign-ca')));
    await refused('a client certificate from another CA', kc, UNAUTHORIZED, {
      input: 'client certificate signed by a CA the cluster does not trust',
      names: '401 on each kind',
      fix: 'check the kubeconfig',
    });
  });

  test('an expired client certificate', async () => {
    const kc = kubeconfigWith(env, join(tmp, 'expired-cert.yaml'), 'expired', await expiredClientCert(env));
    await refused(
      'an expired client certificate',
      kc,
      /client certificate of user 'expired' in kubeconfig .*expired-cert\.yaml expired on/,
      {
        input: 'client certificate from the cluster CA, notAfter yesterday',
        names: 'the user, the kubeconfig file and the expiry date',
        fix: 'renew it',
      },
    );
  });

  test('a ServiceAccount without any rights', async () => {
    const kc = kubeconfigWith(env, join(tmp, 'no-rights.yaml'), 'no-rights', await serviceAccountUser(env, ns, 'no-rights'));
    const grant = (r: string) =>
      `cannot watch ${r}: 403 Forbidden; grant list and watch on ${r} to the ServiceAccount the operator runs as (bosun generate writes the RBAC into config/rbac)`;
    await refused(
      'a ServiceAccount without any rights',
      kc,
      `bosun: CacheSyncTimeoutError: caches did not sync within 3000 ms (cacheSyncTimeoutMs): ${grant('messages.myorg.dev')}; ${grant('pods')}`,
      {
        input: 'a ServiceAccount token with no RoleBinding',
        names: 'each kind and the verbs missing',
        fix: 'grant list and watch (bosun generate writes the RBAC)',
      },
    );
  });

  test('an unreachable server (a closed local port)', async () => {
    const port = await closedPort();
    const server = `https://127.0.0.1:${port}`;
    const kc = kubeconfigWith(env, join(tmp, 'unreachable.yaml'), 'admin', { token: 'x' }, server);
    const hint = `cannot connect to ${server} (ECONNREFUSED): is the API server running, and is the kubeconfig's server right?`;
    const r = await refused(
      'an unreachable server',
      kc,
      `bosun: CacheSyncTimeoutError: caches did not sync within 3000 ms (cacheSyncTimeoutMs): ${hint} (messages.myorg.dev, pods not listed)`,
      {
        input: 'server https://127.0.0.1:<closed port>',
        names: 'the server and the errno',
        fix: "check that the API server runs and the kubeconfig's server",
      },
    );
    // Logged while waiting, with backoff: at once, then not on every retry the client makes.
    const warnings = r.stdout.split('\n').filter((l) => l.includes('"level":"warn"') && l.includes(hint));
    assert.ok(warnings.length >= 1 && warnings.length <= 3, `${warnings.length} connection warnings in 3 s:\n${r.stdout}`);
  });

  test('rights taken away while running: the operator logs the 403, stays up, backs off, and recovers when they come back', async () => {
    const rns = await env.namespace('badinput-rbac');
    const user = await serviceAccountUser(env, rns, 'operator');
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'operator', namespace: rns },
      rules: [
        { apiGroups: ['myorg.dev'], resources: ['messages'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
        { apiGroups: ['myorg.dev'], resources: ['messages/status'], verbs: ['get', 'update', 'patch'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'operator', namespace: rns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'operator' },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: rns }],
    };
    await env.kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [role, binding] }));
    const kc = kubeconfigWith(env, join(tmp, 'operator.yaml'), 'operator', user);
    const args = ['run', 'message', '-n', rns, '--kubeconfig', kc, '--standalone', '--metrics-addr', '0', '--health-addr', '0'];
    const child = spawnCli(args);
    const lines: string[] = [];
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const message = (name: string) =>
      JSON.stringify({ apiVersion: 'myorg.dev/v1', kind: 'Message', metadata: { name, namespace: rns }, spec: { text: name } });
    const podExists = (name: string) => async () =>
      (await env.kubectl(['get', 'pod', '-n', rns, `${name}-pod`, '-o', 'name'])).code === 0 ? true : undefined;
    try {
      await eventually('caches synced', async () => (lines.some((l) => l.includes('"msg":"caches synced"')) ? true : undefined), 20_000);
      await env.kubectlOk(['apply', '-f', '-'], message('before'));
      await eventually('the Pod of a Message made while the rights hold', podExists('before'), 20_000);

      await env.kubectlOk(['delete', 'rolebinding', '-n', rns, 'operator']);
      await env.kubectlOk(['apply', '-f', '-'], message('during'));
      const failure = await eventually(
        'a logged 403 for the new Message',
        async () => lines.find((l) => l.includes('"name":"during"') && l.includes('403') && l.includes('reconcile failed')),
        20_000,
      );
      const t0 = lines.length;
      await new Promise((r) => setTimeout(r, 5000));
      const attempts = lines.slice(t0).filter((l) => l.includes('"name":"during"') && l.includes('"msg":"Reconciling Message"')).length;
      const err = (JSON.parse(failure) as { err: string }).err;
      recordCase({
        id: 'credentials: RoleBinding deleted while running',
        input: "the operator's RoleBinding deleted while it runs, then a Message created",
        message: `${(JSON.parse(failure) as { msg: string }).msg}: ${err.replace(rns, '<ns>').replaceAll(rns, '<ns>')}`,
        names: 'the child, the verb, the ServiceAccount',
        fix: 'implied: grant the verb (no hint)',
        parent: 'none (the status write is refused too)',
        command: 'node --import tsx --test test/badinput/credentials.test.ts',
      });
      assert.match(
        err,
        new RegExp(`pods "during-pod" is forbidden: User "system:serviceaccount:${rns}:operator" cannot (create|patch) resource "pods"`),
      );
      assert.equal(child.exitCode, null, `the operator keeps running; stderr: ${stderr}`);
      assert.ok(
        attempts >= 1 && attempts <= 12,
        `${attempts} reconciles of the refused Message in 5 s: retried, with a backoff, not in a loop`,
      );
      assert.equal((await env.kubectl(['get', 'pod', '-n', rns, 'during-pod', '-o', 'name'])).code, 1, 'nothing was written');

      await env.kubectlOk(['apply', '-f', '-'], JSON.stringify(binding));
      await eventually('the Pod once the rights are back', podExists('during'), 60_000, 250);
      assert.equal(child.exitCode, null);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `a clean stop after SIGTERM; stderr: ${stderr}`);
  });
});
