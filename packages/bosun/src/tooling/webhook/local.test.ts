import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLoopbackServer, localCertDir, localRegistrationName } from './local.js';

void test('an API server on loopback is local; any other host is not', () => {
  for (const url of ['https://127.0.0.1:6443', 'https://127.0.0.2:1', 'https://localhost:40939', 'https://[::1]:6443'])
    assert.equal(isLoopbackServer(url), true, url);
  for (const url of ['https://10.0.0.1:6443', 'https://kubernetes.default.svc', 'https://127.example.com', 'https://[::2]:1', 'not a url'])
    assert.equal(isLoopbackServer(url), false, url);
});

void test("the certificates live beside a bosun cluster's kubeconfig, else under .bosun/webhook", async () => {
  const root = await mkdtemp(join(tmpdir(), 'bosun-local-'));
  try {
    const cluster = join(root, 'cluster');
    await mkdir(join(cluster, 'pki'), { recursive: true });
    await writeFile(join(cluster, 'state.json'), '{}');
    await writeFile(join(cluster, 'kubeconfig'), '');
    assert.equal(localCertDir(join(cluster, 'kubeconfig')), join(cluster, 'webhook'));
    assert.equal(localCertDir('cluster/kubeconfig', root), join(cluster, 'webhook'));
    const other = join(root, 'elsewhere');
    await mkdir(other);
    await writeFile(join(other, 'kubeconfig'), '');
    assert.equal(localCertDir(join(other, 'kubeconfig'), root), join(root, '.bosun', 'webhook'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

void test('the registration name is one per project, a valid object name', () => {
  assert.equal(localRegistrationName({ prefix: 'bosun' }, ['message']), 'bosun-local-bosun');
  assert.equal(localRegistrationName({}, ['message', 'application']), 'bosun-local-message-application');
  assert.equal(localRegistrationName({ prefix: 'My_Operator' }, []), 'bosun-local-my-operator');
});
