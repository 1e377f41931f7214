import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { type TestEnv, startTestEnv } from '../tooling/envtest/testenv.js';
import { KubeClient, type KubeClientConfig } from './client.js';
import { ApiError, isTooManyRequests } from './errors.js';
import { ConfigMap } from './resources.js';

let env: TestEnv;
let admin: KubeClient;
let ns: string;
const dir = mkdtempSync(join(tmpdir(), 'bosun-auth-'));
const cleanups: (() => Promise<unknown>)[] = [];

interface Kubeconfig {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
  'current-context': string;
}

before(async () => {
  env = await startTestEnv();
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  ns = await env.namespace('auth');
  await env.kubectlOk(['-n', ns, 'create', 'serviceaccount', 'probe']);
  await env.kubectlOk(['-n', ns, 'create', 'rolebinding', 'probe-view', '--clusterrole=view', `--serviceaccount=${ns}:probe`]);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  admin?.close();
  await env?.cleanup();
});

async function serviceAccountToken(): Promise<string> {
  const tr = await admin.request<{ status: { token: string } }>({
    method: 'POST',
    path: `/api/v1/namespaces/${ns}/serviceaccounts/probe/token`,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  return tr.status.token;
}

/** The test cluster's kubeconfig with its user replaced by `user`. */
function kubeconfigWithUser(name: string, user: Record<string, unknown>): string {
  const kc = parse(readFileSync(env.kubeconfig, 'utf8')) as Kubeconfig;
  kc.users = [{ name: 'u', user }];
  kc.contexts = [{ name: 'c', context: { cluster: kc.clusters[0]!.name, user: 'u' } }];
  kc['current-context'] = 'c';
  const file = join(dir, name);
  writeFileSync(file, stringify(kc), { mode: 0o600 });
  return file;
}

void test('a 401 re-reads the token file at once, not after the minute it is cached', async () => {
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'not-a-token');
  const client = KubeClient.fromConfig({ kubeconfig: kubeconfigWithUser('token-file.yaml', { tokenFile }) });
  try {
    const bad = await client.list(ConfigMap, { namespace: ns }).catch((e: unknown) => e);
    assert.ok(bad instanceof ApiError && bad.status === 401, `expected 401, got ${String(bad)}`);
    // The token rotates (as a projected service-account token does) seconds after the client read it.
    writeFileSync(tokenFile, await serviceAccountToken());
    const list = await client.list(ConfigMap, { namespace: ns });
    assert.ok(list.items.some((c) => c.metadata.name === 'kube-root-ca.crt'));
  } finally {
    client.close();
  }
});

void test('a refused token over HTTP/2: every watch and list in flight reports the 401, none the connection the API server ends after it', async () => {
  // The API server answers a 401 on HTTP/2 with GOAWAY (its UnauthenticatedHTTP2DOSMitigation), so streams
  // opened on the same connection just after it are refused unprocessed; they must be resent, not reported.
  const client = KubeClient.fromConfig({
    kubeconfig: kubeconfigWithUser('refused-h2.yaml', { token: 'not-a-token' }),
    transport: 'h2',
  } as KubeClientConfig);
  try {
    const attempts: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      attempts.push(
        i % 2 === 0
          ? (async () => {
              for await (const _ of client.watch(ConfigMap, { namespace: ns })) return 'an event';
              return 'ended';
            })().catch((e: unknown) => e)
          : client.list(ConfigMap, { namespace: ns }).catch((e: unknown) => e),
      );
      // Spread over the moments the GOAWAY can arrive: before, during and after each 401.
      await new Promise((r) => setTimeout(r, i % 4));
    }
    const outcomes = (await Promise.all(attempts)).map((r) => (r instanceof ApiError ? `ApiError ${r.status}` : String(r)));
    const other = outcomes.filter((o) => o !== 'ApiError 401');
    assert.deepEqual(other, [], `${other.length} of 40 requests did not report the 401`);
  } finally {
    client.close();
  }
});

void test('an exec plugin that returns a client certificate authenticates with it', async () => {
  const kc = parse(readFileSync(env.kubeconfig, 'utf8')) as Kubeconfig;
  const u = kc.users[0]!.user;
  const certFile = join(dir, 'admin.crt');
  const keyFile = join(dir, 'admin.key');
  writeFileSync(certFile, Buffer.from(String(u['client-certificate-data']), 'base64'));
  writeFileSync(keyFile, Buffer.from(String(u['client-key-data']), 'base64'), { mode: 0o600 });
  const plugin = join(dir, 'plugin.mjs');
  writeFileSync(
    plugin,
    `import { readFileSync } from 'node:fs';
process.stdout.write(JSON.stringify({
  apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
  status: { clientCertificateData: readFileSync(${JSON.stringify(certFile)}, 'utf8'), clientKeyData: readFileSync(${JSON.stringify(keyFile)}, 'utf8') },
}));
`,
  );
  const file = kubeconfigWithUser('exec.yaml', {
    exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never' },
  });
  for (const transport of ['h2', 'http1'] as const) {
    const client = KubeClient.fromConfig({ kubeconfig: file, transport } as KubeClientConfig);
    try {
      const review = await client.request<{ status: { userInfo: { username: string; groups?: string[] } } }>({
        method: 'POST',
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      });
      assert.ok(
        review.status.userInfo.groups?.includes('system:masters'),
        `${transport}: authenticated as ${JSON.stringify(review.status.userInfo)}`,
      );
    } finally {
      client.close();
    }
  }
});

void test(
  'a throttled (429) list is retried as Retry-After says until the server admits it, within its deadline',
  { timeout: 30_000 },
  async () => {
    // API Priority and Fairness: this service account's requests get one seat, and a second request while it is taken is refused with 429.
    const name = `bosun-test-${ns}`;
    await admin.request({
      method: 'POST',
      path: '/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations',
      body: {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'PriorityLevelConfiguration',
        metadata: { name },
        spec: {
          type: 'Limited',
          limited: { nominalConcurrencyShares: 0, lendablePercent: 0, borrowingLimitPercent: 0, limitResponse: { type: 'Reject' } },
        },
      },
    });
    cleanups.push(() =>
      admin.request({ method: 'DELETE', path: `/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations/${name}` }),
    );
    await admin.request({
      method: 'POST',
      path: '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas',
      body: {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'FlowSchema',
        metadata: { name },
        spec: {
          priorityLevelConfiguration: { name },
          matchingPrecedence: 100,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'probe', namespace: ns } }],
              resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true }],
            },
          ],
        },
      },
    });
    cleanups.push(() => admin.request({ method: 'DELETE', path: `/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/${name}` }));
    const tokenFile = join(dir, 'throttled-token');
    writeFileSync(tokenFile, await serviceAccountToken());
    const file = kubeconfigWithUser('throttled.yaml', { tokenFile });
    const once = KubeClient.fromConfig({ kubeconfig: file, maxRetries: 0 } as KubeClientConfig);
    const client = KubeClient.fromConfig({ kubeconfig: file });
    try {
      // A list that waits ~3 s for a resourceVersion far in the future holds the seat, then fails with 504.
      const rv = Number((await admin.list(ConfigMap, { namespace: ns })).resourceVersion);
      const holdSeat = (): Promise<unknown> =>
        once
          .request({
            method: 'GET',
            path: `/api/v1/namespaces/${ns}/configmaps`,
            query: { resourceVersion: rv + 1_000_000, resourceVersionMatch: 'NotOlderThan' },
          })
          .catch((e: unknown) => e);
      // The FlowSchema takes effect once the API server's APF controller has seen it.
      let refused: unknown;
      for (let i = 0; i < 20 && !isTooManyRequests(refused); i++) {
        const holder = holdSeat();
        await new Promise((r) => setTimeout(r, 300));
        refused = await once.list(ConfigMap, { namespace: ns }).catch((e: unknown) => e);
        await holder;
      }
      assert.ok(isTooManyRequests(refused), `the seat holder makes a second request 429 (got ${String(refused)})`);
      assert.equal((refused as ApiError).retryAfterSeconds, 1);

      const holder = holdSeat();
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const list = await client.list(ConfigMap, { namespace: ns });
      assert.ok(list.items.length > 0);
      assert.ok(Date.now() - t0 >= 900, 'it waited at least one Retry-After');
      await holder;

      // With a deadline shorter than the throttling, the server's 429 is reported, before the deadline.
      const holder2 = holdSeat();
      await new Promise((r) => setTimeout(r, 300));
      const t1 = Date.now();
      const err = await client
        .request({ method: 'GET', path: `/api/v1/namespaces/${ns}/configmaps`, timeoutMs: 1500 })
        .catch((e: unknown) => e);
      assert.ok(isTooManyRequests(err), `expected the 429, got ${String(err)}`);
      assert.ok(Date.now() - t1 < 1500);
      await holder2;
    } finally {
      once.close();
      client.close();
    }
  },
);
