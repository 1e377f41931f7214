// The checked-in config/crd and config/rbac are what generation gives for this repository's project module
// (package.json's bosun.project), and grant no more than the operators need.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { generateManifests, manifestSources, rbacFor, webhookFilesFor } from '../../packages/bosun/src/tooling/cli/manifests.js';
import { assertNoWildcards, type PolicyRule, type RbacObject } from '../../packages/bosun/src/tooling/generate/rbac.js';

const root = join(import.meta.dirname, '..', '..');

function verbsFor(rules: PolicyRule[], group: string, resource: string): string[] {
  return rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);
}

void test('the checked-in config/rbac and config/crd match generation (run `make manifests` when this fails)', async () => {
  const stale = await generateManifests({ out: join(root, 'config/crd'), rbacOut: join(root, 'config/rbac'), check: true });
  assert.deepEqual(stale, [], `stale generated manifests; run: make manifests`);
});

void test('no checked-in RBAC file grants a wildcard', () => {
  const dir = join(root, 'config/rbac');
  const objects = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as RbacObject));
  assert.ok(
    objects.some((o) => o.kind === 'ClusterRole'),
    'config/rbac holds the ClusterRole',
  );
  assertNoWildcards(objects);
});

void test("this repository's operators: the Message operator's grants, nothing on Secrets beyond named reads", async () => {
  const objs = rbacFor(await manifestSources()).flatMap((f) => f.objects);
  const cluster = objs.find((o) => o.kind === 'ClusterRole')!.rules!;
  assert.deepEqual(verbsFor(cluster, 'myorg.dev', 'messages'), ['get', 'list', 'watch', 'update', 'patch']);
  assert.deepEqual(verbsFor(cluster, '', 'pods'), ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);
  assert.ok(
    !cluster.some((r) => r.resources.includes('secrets') && r.verbs.some((v) => v !== 'get' && v !== 'list' && v !== 'watch')),
    'no Secret writes cluster-wide: a controller that only reads a Secret by name must declare .reads(Secret), not .writes(Secret)',
  );
  assert.ok(!cluster.some((r) => r.resources.includes('nodes')), 'nothing on Nodes');
});

void test('config/webhook and config/certmanager exist exactly when generation writes them; config/default lists ../webhook only with a certificate source', async () => {
  const { webhook, certmanager } = webhookFilesFor(await manifestSources());
  const defaults = readFileSync(join(root, 'config/default/kustomization.yaml'), 'utf8');
  const listed = (dir: string) => new RegExp(`^components:\\n(?: {2}- .*\\n)*? {2}- \\.\\./${dir}$`, 'm').test(defaults);
  assert.equal(
    existsSync(join(root, 'config/webhook')),
    webhook.size > 0,
    'config/webhook exists only for a project with webhooks or versions',
  );
  assert.equal(existsSync(join(root, 'config/certmanager')), certmanager.size > 0);
  // The webhook Deployment patch mounts the serving certificate's Secret: without a component that fills it the
  // manager Pod never starts.
  if (listed('webhook'))
    assert.ok(listed('certmanager') || listed('certs-self'), 'config/default lists ../webhook with ../certmanager or ../certs-self');
  for (const dir of ['webhook', 'certmanager', 'certs-self'])
    if (listed(dir)) assert.ok(existsSync(join(root, 'config', dir)), `config/default lists ../${dir}, which exists`);
});
