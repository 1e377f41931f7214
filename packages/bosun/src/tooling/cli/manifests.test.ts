import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { generateManifests } from './manifests.js';
import { renderCrdYaml } from '../generate/crd.js';
import { WebhookDefinitionError } from '../../webhook/declare.js';
import { GadgetV1 } from './testdata/gadgets.js';

const testdata = join(import.meta.dirname, 'testdata');
const repoConfig = join(import.meta.dirname, '..', '..', '..', '..', '..', 'config');
const quiet = () => {};

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-manifests-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const opts = (dir: string, project: string, check = false) => ({
  out: join(dir, 'config/crd'),
  rbacOut: join(dir, 'config/rbac'),
  from: join(testdata, project),
  check,
});

async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

void test('versions and webhooks: the CRD serving its storage version alone, config/webhook serving the rest with conversion, config/certmanager, and --check clean', async () => {
  await withTmp(async (dir) => {
    assert.deepEqual(await generateManifests(opts(dir, 'webhook-project.ts'), quiet), []);
    const files = await tree(join(dir, 'config'));
    assert.deepEqual(
      files.filter((f) => !f.startsWith('rbac/')),
      [
        'certmanager/certificate.yaml',
        'certmanager/issuer.yaml',
        'certmanager/kustomization.yaml',
        'certs-self/kustomization.yaml',
        'certs-self/manager_certs_patch.yaml',
        'certs-self/role.yaml',
        'certs-self/role_binding.yaml',
        'crd/Kustomization',
        'crd/gadgets.gadgets.example.com.yaml',
        'webhook/gadgets.gadgets.example.com_versions_patch.yaml',
        'webhook/kustomization.yaml',
        'webhook/manager_webhook_patch.yaml',
        'webhook/manifests.yaml',
        'webhook/service.yaml',
      ],
    );
    assert.match(
      await readFile(join(dir, 'config/crd/Kustomization'), 'utf8'),
      /resources:\n {2}- gadgets\.gadgets\.example\.com\.yaml\n$/,
    );
    type Crd = { kind: string; spec: { versions: { name: string; served: boolean; storage: boolean }[]; conversion?: unknown } };
    // Alone, the CRD serves its storage version and converts nothing: it needs no webhook server.
    const base = parse(await readFile(join(dir, 'config/crd/gadgets.gadgets.example.com.yaml'), 'utf8')) as Crd;
    assert.deepEqual(
      base.spec.versions.map((v) => [v.name, v.served, v.storage]),
      [
        ['v1', true, true],
        ['v2', false, false],
      ],
    );
    assert.equal(base.spec.conversion, undefined);
    // With config/webhook (as config/default lists it), kustomize serves every version, converted by the webhook Service.
    await mkdir(join(dir, 'config/default'));
    await cp(join(repoConfig, 'manager'), join(dir, 'config/manager'), { recursive: true });
    await writeFile(
      join(dir, 'config/default/kustomization.yaml'),
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../crd, ../manager]\ncomponents: [../webhook, ../certmanager]\n',
    );
    const built = await promisify(execFile)('kubectl', ['kustomize', join(dir, 'config/default')]);
    const crd = parseAllDocuments(built.stdout)
      .map((d) => d.toJS() as Crd)
      .find((d) => d.kind === 'CustomResourceDefinition')!;
    assert.deepEqual(
      crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
      [
        ['v1', true, true],
        ['v2', true, false],
      ],
    );
    const manifests = await readFile(join(dir, 'config/webhook/manifests.yaml'), 'utf8');
    assert.match(manifests, /failurePolicy: Fail # a gadget wider than the shelf cannot be stored\n/);
    assert.match(manifests, /failurePolicy: Ignore # the controller applies the same defaults\n/);
    assert.match(manifests, /needs no RBAC/);
    const kinds = parseAllDocuments(manifests).map((d) => d.toJS() as { kind: string; metadata: { annotations: Record<string, string> } });
    assert.deepEqual(
      kinds.map((k) => [k.kind, k.metadata.annotations['cert-manager.io/inject-ca-from']]),
      [
        ['MutatingWebhookConfiguration', 'bosun-system/bosun-serving-cert'],
        ['ValidatingWebhookConfiguration', 'bosun-system/bosun-serving-cert'],
      ],
    );
    const cert = parse(await readFile(join(dir, 'config/certmanager/certificate.yaml'), 'utf8')) as {
      spec: { dnsNames: string[]; secretName: string };
    };
    assert.deepEqual(cert.spec.dnsNames, [
      'bosun-webhook-service.bosun-system.svc',
      'bosun-webhook-service.bosun-system.svc.cluster.local',
    ]);
    assert.equal(cert.spec.secretName, 'bosun-webhook-server-cert');
    assert.deepEqual(await generateManifests(opts(dir, 'webhook-project.ts', true), quiet), []);
  });
});

void test('--check names an edited, a missing and a leftover webhook file', async () => {
  await withTmp(async (dir) => {
    await generateManifests(opts(dir, 'webhook-project.ts'), quiet);
    const manifests = join(dir, 'config/webhook/manifests.yaml');
    await writeFile(manifests, (await readFile(manifests, 'utf8')).replace('timeoutSeconds: 3', 'timeoutSeconds: 30'));
    const issuer = join(dir, 'config/certmanager/issuer.yaml');
    await rm(issuer);
    const leftover = join(dir, 'config/webhook/old.yaml');
    await writeFile(leftover, "# Generated by `bosun generate` from the project's webhooks and versions.\nkind: Service\n");
    const handWritten = join(dir, 'config/webhook/mine.yaml');
    await writeFile(handWritten, '# mine\nkind: ConfigMap\n');
    assert.deepEqual((await generateManifests(opts(dir, 'webhook-project.ts', true), quiet)).sort(), [issuer, leftover, manifests].sort());
    await generateManifests(opts(dir, 'webhook-project.ts'), quiet);
    assert.deepEqual(await generateManifests(opts(dir, 'webhook-project.ts', true), quiet), []);
    assert.equal(await readFile(handWritten, 'utf8'), '# mine\nkind: ConfigMap\n', 'a file without the header is not ours to delete');
  });
});

void test('several resources of one CRD without versions: refused naming the CRD and the fix, nothing written', async () => {
  await withTmp(async (dir) => {
    await assert.rejects(
      generateManifests(opts(dir, 'unversioned-project.ts'), quiet),
      (e: unknown) =>
        e instanceof WebhookDefinitionError &&
        /CRD gadgets\.gadgets\.example\.com: resources has Gadget at v1 and v2/.test(e.message) &&
        /Fix: export const versions = \[defineVersions\(/.test(e.message),
    );
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(generateManifests(opts(dir, 'unversioned-project.ts', true), quiet), WebhookDefinitionError);
  });
});

void test('no webhooks and no versions: exactly the CRDs and RBAC as before, and generated webhook files are removed', async () => {
  await withTmp(async (dir) => {
    await generateManifests(opts(dir, 'plain-project.ts'), quiet);
    const files = await tree(join(dir, 'config'));
    assert.deepEqual(
      files.filter((f) => !f.startsWith('rbac/')),
      ['crd/Kustomization', 'crd/gadgets.gadgets.example.com.yaml'],
    );
    assert.equal(await readFile(join(dir, 'config/crd/gadgets.gadgets.example.com.yaml'), 'utf8'), renderCrdYaml(GadgetV1));
    // A project that had webhooks and dropped them: its generated files are stale, then removed.
    await generateManifests(opts(dir, 'webhook-project.ts'), quiet);
    const stale = await generateManifests(opts(dir, 'plain-project.ts', true), quiet);
    assert.ok(
      stale.includes(join(dir, 'config/webhook/manifests.yaml')) && stale.includes(join(dir, 'config/certmanager/issuer.yaml')),
      stale.join(),
    );
    await generateManifests(opts(dir, 'plain-project.ts'), quiet);
    assert.deepEqual(await readdir(join(dir, 'config/webhook')), []);
    assert.deepEqual(await readdir(join(dir, 'config/certmanager')), []);
  });
});

void test("kubectl kustomize of the repository's config/default with both components: port, certificate volume, flags, CA injection", async () => {
  await withTmp(async (dir) => {
    await mkdir(join(dir, 'config'));
    for (const d of ['default', 'manager']) await cp(join(repoConfig, d), join(dir, 'config', d), { recursive: true });
    await generateManifests(opts(dir, 'webhook-project.ts'), quiet);
    const kustomization = join(dir, 'config/default/kustomization.yaml');
    const text = await readFile(kustomization, 'utf8');
    assert.match(
      text,
      /^#components:\n# {2}- \.\.\/webhook\n# {2}- \.\.\/certmanager\n/m,
      'config/default names both components, commented out',
    );
    await writeFile(kustomization, text.replace(/^#(components:| {2}- \.\.\/webhook| {2}- \.\.\/certmanager)$/gm, '$1'));
    const { stdout } = await promisify(execFile)('kubectl', ['kustomize', join(dir, 'config/default')]);
    type Obj = { kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; spec?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const objs = parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
    const deployment = objs.find((o) => o.kind === 'Deployment')!;
    const pod = deployment.spec.template.spec;
    const manager = pod.containers.find((c: { name: string }) => c.name === 'manager');
    assert.ok(
      manager.args.includes('--webhook-addr=:9443') && manager.args.includes('--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs'),
    );
    assert.ok(manager.args.includes('--leader-elect'), 'the existing flags are kept');
    assert.deepEqual(
      manager.ports.find((p: { name: string }) => p.name === 'webhook-server'),
      { name: 'webhook-server', containerPort: 9443, protocol: 'TCP' },
    );
    assert.deepEqual(
      manager.volumeMounts.find((m: { name: string }) => m.name === 'webhook-certs'),
      { name: 'webhook-certs', mountPath: '/tmp/k8s-webhook-server/serving-certs', readOnly: true },
    );
    assert.deepEqual(
      pod.volumes.find((v: { name: string }) => v.name === 'webhook-certs'),
      { name: 'webhook-certs', secret: { secretName: 'bosun-webhook-server-cert' } },
    );
    const service = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'bosun-webhook-service')!;
    assert.deepEqual(service.spec.selector, { 'app.kubernetes.io/name': 'bosun' });
    for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>))
      assert.equal(deployment.spec.template.metadata.labels[k], v, 'the Service selects the manager Pods');
    const crd = objs.find((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === 'gadgets.gadgets.example.com')!;
    assert.equal(crd.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'bosun-system/bosun-serving-cert');
    assert.ok(objs.some((o) => o.kind === 'Certificate') && objs.some((o) => o.kind === 'Issuer'));
    assert.deepEqual(
      objs.filter((o) => o.kind.endsWith('WebhookConfiguration')).map((o) => o.kind),
      ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'],
    );
  });
});
