import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KubeConfigError } from './errors.js';
import { loadClusterConfig } from './kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
writeFileSync(join(dir, 'ca.crt'), 'CA');
writeFileSync(join(dir, 'token'), 'tok-1\n');
const a = join(dir, 'a.yaml');
const b = join(dir, 'b.yaml');
writeFileSync(
  a,
  `apiVersion: v1
kind: Config
current-context: one
clusters:
- name: c1
  cluster: { server: "https://one.example:6443/", certificate-authority: ca.crt }
users:
- name: u1
  user: { tokenFile: token }
contexts:
- name: one
  context: { cluster: c1, user: u1, namespace: team-a }
`,
);
writeFileSync(
  b,
  `apiVersion: v1
kind: Config
current-context: two
clusters:
- name: c1
  cluster: { server: "https://shadowed.example" }
- name: c2
  cluster: { server: "https://two.example", insecure-skip-tls-verify: true }
users:
- name: u2
  user: { username: admin, password: secret }
contexts:
- name: two
  context: { cluster: c2, user: u2 }
- name: broken
  context: { cluster: nowhere }
`,
);

test('a file: server, relative CA path, token file, namespace', async () => {
  const c = loadClusterConfig({ kubeconfig: a });
  assert.equal(c.server, 'https://one.example:6443');
  assert.equal(c.namespace, 'team-a');
  assert.equal(c.ca?.toString(), 'CA');
  assert.deepEqual(await c.authHeaders(), { Authorization: 'Bearer tok-1' });
});

test('$KUBECONFIG merges files; the first definition and current-context win', async () => {
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = `${a}:${join(dir, 'missing.yaml')}:${b}`;
  try {
    const c = loadClusterConfig();
    assert.equal(c.context, 'one');
    assert.equal(c.server, 'https://one.example:6443');
    const two = loadClusterConfig({ context: 'two' });
    assert.equal(two.server, 'https://two.example');
    assert.equal(two.skipTLSVerify, true);
    assert.deepEqual(await two.authHeaders(), { Authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` });
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
});

test('errors name the file or context and the fix', () => {
  assert.throws(
    () => loadClusterConfig({ kubeconfig: join(dir, 'nope.yaml') }),
    (e: Error) => e instanceof KubeConfigError && /nope\.yaml/.test(e.message) && /--kubeconfig/.test(e.message),
  );
  assert.throws(() => loadClusterConfig({ kubeconfig: b, context: 'three' }), /no context 'three'; known contexts: two, broken/);
  assert.throws(() => loadClusterConfig({ kubeconfig: b, context: 'broken' }), /names cluster 'nowhere'/);
});
