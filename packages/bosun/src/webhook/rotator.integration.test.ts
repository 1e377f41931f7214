// Webhook certificates without cert-manager against the real API server of the test cluster: the Manager's
// rotator creates the Secret, injects the CA into a webhook configuration and a CRD's conversion, and the API
// server's admission and conversion calls succeed against the certificate it issued for the Service's DNS name; a
// rotation forced by short lifetimes loses no request; a tampered caBundle is put back; with two replicas only the
// leader writes the Secret and both serve it. The API server reaches the in-process server through a Service of
// type ExternalName (localhost), so it dials loopback but checks the certificate for `hooks.<namespace>.svc`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { KubeClient } from '../client/client.js';
import { ConfigMap, CustomResourceDefinition, Lease, Secret, Service } from '../client/resources.js';
import type { ResourceType } from '../client/types.js';
import { controller } from '../controller/builder.js';
import { Manager, type ManagerOptions } from '../manager/manager.js';
import { createLogger, silentLogger } from '../telemetry/logger.js';
import { toMultiVersionCrd } from '../tooling/generate/crd.js';
import { toWebhookConfigurations } from '../tooling/generate/webhook.js';
import { eventually, startTestEnv, writeTokenKubeconfig, type TestEnv } from '../tooling/envtest/testenv.js';
import { certRotationRules } from '../tooling/generate/rbac.js';
import { gadgetApi } from '../tooling/webhook/testdata/gadgets.js';
import { ValidatingWebhookConfiguration } from './kinds.js';
import { parseBundle } from './rotation.js';
import type { WebhookCertsOptions } from './rotator.js';

let env: TestEnv;
let admin: KubeClient;
let ns: string;
let dir: string;
let port: number;
const api = gadgetApi();
const SERVICE = 'hooks';
let configName: string;

/** A port free now: the API server's clientConfig names it before the server listens. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

before(async () => {
  env = await startTestEnv();
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  ns = await env.namespace('certs');
  configName = `bosun-test-${ns}`;
  dir = await mkdtemp(join(tmpdir(), 'bosun-rotator-'));
  port = await freePort();
  await admin.create(Service, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVICE, namespace: ns },
    spec: { type: 'ExternalName', externalName: 'localhost' },
  } as never);
  const clientConfig = (path: string) => ({ service: { name: SERVICE, namespace: ns, path, port } });
  // No caBundle anywhere: the rotator injects it.
  const crd = toMultiVersionCrd(api.versions, { clientConfig: clientConfig(api.versions.path) });
  await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(crd));
  await env.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${api.versions.crdName}`]);
  const { validating } = toWebhookConfigurations([api.size], {
    name: configName,
    clientConfig,
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
  });
  await admin.create(ValidatingWebhookConfiguration, validating as never);
});

after(async () => {
  if (env) {
    await env.kubectl(['delete', 'validatingwebhookconfiguration', configName, '--ignore-not-found']);
    await env.kubectl(['delete', 'crd', api.versions.crdName, '--ignore-not-found', '--wait=false']);
    await env.cleanup();
  }
  admin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function certsOptions(secret: string, extra: Partial<WebhookCertsOptions> = {}): WebhookCertsOptions {
  return {
    secret: { namespace: ns, name: secret },
    service: { namespace: ns, name: SERVICE },
    validatingWebhookConfigurations: [configName],
    crds: [api.versions.crdName],
    overlapMs: 1_000,
    ...extra,
  };
}

interface Running {
  mgr: Manager;
  stop(): Promise<void>;
}

function run(opts: Partial<ManagerOptions> & { certDir: string; addr?: string; kubeconfig?: string }): Running {
  const mgr = new Manager({
    client: KubeClient.fromConfig({ kubeconfig: opts.kubeconfig ?? env.kubeconfig }),
    namespaces: [ns],
    logger: silentLogger(),
    webhookServer: {
      webhooks: [api.size],
      versions: [api.versions],
      addr: opts.addr ?? `127.0.0.1:${port}`,
      tls: { certFile: join(opts.certDir, 'tls.crt'), keyFile: join(opts.certDir, 'tls.key') },
    },
    shutdownTimeoutMs: 5_000,
    ...opts,
  });
  mgr.add(
    controller(`certs-test-${opts.certDir.split('/').pop()}`)
      .for(ConfigMap)
      .reconcile(() => Promise.resolve()),
  );
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  return {
    mgr,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

const gadgetType = api.v1 as unknown as ResourceType;
const v2Type = api.v2 as unknown as ResourceType;
const gadget = (name: string, sizeCm: number) => ({
  apiVersion: `${api.group}/v1`,
  kind: 'Gadget',
  metadata: { name, namespace: ns },
  spec: { owner: 'ann', sizeCm },
});

async function secretData(name: string): Promise<Record<string, string>> {
  const s = await admin.get(Secret, ns, name);
  return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

async function injected(): Promise<{ config: string | undefined; crd: string | undefined }> {
  const cfg = (await admin.get(ValidatingWebhookConfiguration, undefined, configName)) as unknown as {
    webhooks: { clientConfig: { caBundle?: string } }[];
  };
  const crd = await admin.get(CustomResourceDefinition, undefined, api.versions.crdName);
  const conv = (crd.spec as { conversion?: { webhook?: { clientConfig?: { caBundle?: string } } } }).conversion;
  const b64 = (v: string | undefined) => (v ? Buffer.from(v, 'base64').toString('utf8') : undefined);
  return { config: b64(cfg.webhooks[0]?.clientConfig.caBundle), crd: b64(conv?.webhook?.clientConfig?.caBundle) };
}

/** The gadget the probes read as v2, stored at v1 once admission works (its create is admitted by the webhook). */
async function ensureStored(): Promise<void> {
  await eventually('the stored gadget created', async () => {
    try {
      await admin.get(gadgetType, ns, 'stored');
      return true;
    } catch {
      return admin.create(gadgetType, gadget('stored', 5) as never).then(
        () => true,
        () => undefined,
      );
    }
  });
}

let probes = 0;
/** One admission of a valid gadget, one denial of an oversized one and one conversion, through the API server; the failures. */
async function probe(): Promise<string[]> {
  const failures: string[] = [];
  const n = probes++;
  try {
    await admin.create(gadgetType, gadget(`probe-${n}`, 1) as never, { dryRun: true });
  } catch (err) {
    failures.push(`probe ${n}: a valid gadget was refused: ${(err as Error).message}`);
  }
  try {
    await admin.create(gadgetType, gadget(`big-${n}`, 1000) as never, { dryRun: true });
    failures.push(`probe ${n}: an oversized gadget was admitted`);
  } catch (err) {
    if (!/more than 100/.test((err as Error).message)) failures.push(`probe ${n}: not the webhook's denial: ${(err as Error).message}`);
  }
  try {
    const g = (await admin.get(v2Type, ns, 'stored')) as { spec?: { size?: { value: number } } };
    if (g.spec?.size?.value !== 5) failures.push(`probe ${n}: read as v2 without conversion: ${JSON.stringify(g.spec)}`);
  } catch (err) {
    failures.push(`probe ${n}: conversion to v2 failed: ${(err as Error).message}`);
  }
  return failures;
}

void test('the rotator creates the Secret, injects the CA into the webhook configuration and the CRD, and the API server admits and converts through it; a tampered caBundle is restored', async () => {
  const certDir = join(dir, 'one');
  const r = run({ certDir, webhookCerts: certsOptions('hooks-cert') });
  try {
    const data = await eventually('the Secret with a CA and a serving certificate', async () => {
      const d = await secretData('hooks-cert').catch(() => undefined);
      return d?.['ca.crt'] && d['tls.crt'] && d['tls.key'] && d['ca.key'] ? d : undefined;
    });
    const serving = new X509Certificate(data['tls.crt']!);
    assert.equal(serving.checkHost(`${SERVICE}.${ns}.svc`, { subject: 'never' }), `${SERVICE}.${ns}.svc`);
    assert.ok(serving.verify(parseBundle(data['ca.crt'])[0]!.publicKey), 'the serving certificate is signed by the CA of ca.crt');
    await eventually('the caBundle injected into both', async () => {
      const i = await injected();
      return i.config === data['ca.crt'] && i.crd === data['ca.crt'] ? true : undefined;
    });
    await eventually('the serving files written', async () =>
      (await readFile(join(certDir, 'tls.crt'), 'utf8').catch(() => '')) === data['tls.crt'] ? true : undefined,
    );
    await eventually('webhook-server ready', async () => {
      const ready = await r.mgr.health.runReadyChecks();
      return ready.results.find((x) => x.name === 'webhook-server')?.ok ? true : undefined;
    });
    await ensureStored();
    assert.deepEqual(await probe(), [], 'admission and conversion through the API server against the rotated certificate');

    // Someone replaces both caBundles with a CA the server's certificate is not signed by.
    const other = Buffer.from((await import('./x509.js').then((m) => m.createCa('CN=intruder'))).pair.cert).toString('base64');
    await admin.patch(
      ValidatingWebhookConfiguration,
      undefined,
      configName,
      [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: other }],
      'json',
    );
    await admin.patch(
      CustomResourceDefinition,
      undefined,
      api.versions.crdName,
      [{ op: 'replace', path: '/spec/conversion/webhook/clientConfig/caBundle', value: other }],
      'json',
    );
    await eventually('both caBundles restored', async () => {
      const i = await injected();
      return i.config === data['ca.crt'] && i.crd === data['ca.crt'] ? true : undefined;
    });
    await eventually('admission works again', async () => ((await probe()).length === 0 ? true : undefined));
  } finally {
    await r.stop();
  }
});

void test('a rotation forced by short lifetimes replaces the CA and the serving certificate with no failed admission or conversion', async () => {
  const certDir = join(dir, 'rotate');
  // CA 12 s, serving 6 s, renewed 3 s before expiry: the CA is replaced about 9 s in, its first certificate about 1 s later.
  const r = run({
    certDir,
    webhookCerts: certsOptions('hooks-cert-short', { caValidityMs: 12_000, validityMs: 6_000, renewBeforeMs: 3_000, overlapMs: 1_000 }),
  });
  try {
    const first = await eventually('the first CA in the caBundle', async () => {
      const d = await secretData('hooks-cert-short').catch(() => undefined);
      const i = await injected();
      return d?.['ca.crt'] && i.config === d['ca.crt'] && i.crd === d['ca.crt'] ? parseBundle(d['ca.crt'])[0]! : undefined;
    });
    await ensureStored();
    await eventually('admission through the first CA', async () => ((await probe()).length === 0 ? true : undefined));
    const failures: string[] = [];
    let sawBoth = false;
    let rotated = false;
    // When the test first saw the new CA in both caBundles, and first saw a serving certificate it signed in the Secret.
    let trustedAt: number | undefined;
    let issuedAt: number | undefined;
    const has = (pem: string | undefined, ca: X509Certificate) => parseBundle(pem).some((c) => c.fingerprint256 === ca.fingerprint256);
    const deadline = Date.now() + 45_000;
    // Until a certificate of a second CA is served and the bundle has carried both CAs: every probe must pass.
    while (!(rotated && sawBoth) && Date.now() < deadline) {
      failures.push(...(await probe()));
      const t = Date.now();
      const d = await secretData('hooks-cert-short');
      const i = await injected();
      const bundle = parseBundle(d['ca.crt']);
      const next = bundle.find((c) => c.fingerprint256 !== first.fingerprint256);
      if (bundle.length === 2 && i.config === d['ca.crt'] && i.crd === d['ca.crt']) sawBoth = true;
      if (!next) continue;
      if (trustedAt === undefined && has(i.config, next) && has(i.crd, next)) trustedAt = t;
      if (issuedAt === undefined && new X509Certificate(d['tls.crt']!).verify(next.publicKey)) issuedAt = t;
      const served = new X509Certificate(await readFile(join(certDir, 'tls.crt'), 'utf8'));
      rotated = served.checkIssued(next) && served.verify(next.publicKey);
    }
    for (let k = 0; k < 3; k++) failures.push(...(await probe()));
    assert.deepEqual(failures, [], 'no admission or conversion failed during the rotation');
    assert.ok(sawBoth, 'the caBundle carried the old and the new CA during the overlap');
    assert.ok(rotated, 'a serving certificate of the new CA was served within 45 s');
    // Both times are sampled once per loop, so each is late by at most one iteration (three API round trips and
    // a few reads, tens of ms here): half the 1 s overlap leaves room for that on a loaded machine.
    assert.ok(
      trustedAt !== undefined && issuedAt !== undefined && issuedAt - trustedAt >= 500,
      `the new CA was in every caBundle for the overlap before a certificate it signed was issued (trusted at ${trustedAt}, issued at ${issuedAt})`,
    );
    assert.notEqual((await injected()).config, undefined);
  } finally {
    await r.stop();
  }
});

void test('with two replicas and leader election only the leader writes the Secret; both serve its certificate', async () => {
  const lines: string[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const leaderElection = (identity: string) => ({
    namespace: ns,
    name: 'certs-lock',
    identity,
    leaseDurationMs: 4_000,
    renewDeadlineMs: 3_000,
    retryPeriodMs: 500,
  });
  // Short lifetimes so the leader writes the Secret several times while both run.
  const webhookCerts = certsOptions('hooks-cert-ha', { caValidityMs: 60_000, validityMs: 6_000, renewBeforeMs: 3_000, overlapMs: 500 });
  const a = run({ certDir: join(dir, 'a'), fieldManager: 'replica-a', leaderElection: leaderElection('a'), webhookCerts });
  const leaderIdentity = await eventually('a leader', async () => {
    const lease = await admin.get(Lease, ns, 'certs-lock').catch(() => undefined);
    return lease?.spec?.holderIdentity ?? undefined;
  });
  assert.equal(leaderIdentity, 'a');
  const b = run({
    certDir: join(dir, 'b'),
    addr: '127.0.0.1:0',
    fieldManager: 'replica-b',
    leaderElection: leaderElection('b'),
    webhookCerts,
    logger: createLogger({ level: 'debug', destination: capture, format: 'json' }),
  });
  try {
    const versions = new Set<string>();
    await eventually(
      'the leader wrote the Secret three times',
      async () => {
        const s = await admin.get(Secret, ns, 'hooks-cert-ha').catch(() => undefined);
        if (s) versions.add(s.metadata.resourceVersion!);
        return versions.size >= 3 ? true : undefined;
      },
      30_000,
      200,
    );
    const s = await admin.get(Secret, ns, 'hooks-cert-ha');
    const writers = new Set(((s.metadata.managedFields ?? []) as { manager?: string }[]).map((f) => f.manager));
    assert.deepEqual([...writers], ['replica-a-cert-rotator'], 'only the leader wrote the Secret');
    assert.equal(
      lines.filter((l) => /rotation failed|refused to/.test(l)).length,
      0,
      'the standby never tried to write (its writes would be refused)',
    );
    // The standby serves the Secret's current certificate, trusted through the Secret's CA for the Service's name.
    const standby = await eventually('the standby serving', async () => b.mgr.webhookServer);
    await eventually("the standby serves the Secret's certificate", async () => {
      const d = await secretData('hooks-cert-ha');
      const presented = await new Promise<string | undefined>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port: standby.port, ca: d['ca.crt'], servername: `${SERVICE}.${ns}.svc` }, () => {
          const fp = socket.getPeerX509Certificate()?.fingerprint256;
          socket.end();
          resolve(fp);
        });
        socket.on('error', () => resolve(undefined));
      });
      return presented === new X509Certificate(d['tls.crt']!).fingerprint256 ? true : undefined;
    });
    const ready = await b.mgr.health.runReadyChecks();
    assert.equal(ready.results.find((x) => x.name === 'webhook-server')?.ok, true, 'the standby is ready');
  } finally {
    await b.stop();
    await a.stop();
  }
});

void test('the rotator works with exactly the RBAC bosun generate grants it (config/certs-self): its Secret and the named objects, by name', async () => {
  const secret = 'hooks-cert-rbac';
  const sa = 'rotator';
  const role = `bosun-test-certs-${ns}`;
  const rules = certRotationRules({ secret, validating: configName, crds: [api.versions.crdName] });
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace: ns }];
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: role, namespace: ns }, rules: rules.namespaced },
    // The test's own controller (a Manager with none returns at once) watches ConfigMaps: granted apart.
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: `${role}-controller`, namespace: ns },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${role}-controller`, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${role}-controller` },
      subjects,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: role, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects,
    },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role }, rules: rules.cluster },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects,
    },
  ];
  await env.kubectlOk(['apply', '-f', '-'], rbac.map((o) => JSON.stringify(o)).join('\n'));
  const token = (await env.kubectlOk(['create', 'token', sa, '-n', ns, '--duration=10m'])).trim();
  const kubeconfig = await writeTokenKubeconfig({ adminKubeconfig: env.kubeconfig, token, file: join(dir, 'rotator.kubeconfig') });
  const lines: string[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const certDir = join(dir, 'rbac');
  const r = run({
    certDir,
    kubeconfig,
    webhookCerts: certsOptions(secret),
    logger: createLogger({ level: 'debug', destination: capture, format: 'json' }),
  });
  try {
    const data = await eventually('the Secret created with the granted rights', async () => {
      const d = await secretData(secret).catch(() => undefined);
      return d?.['ca.crt'] && d['tls.crt'] ? d : undefined;
    });
    await eventually('the caBundle injected with the granted rights', async () => {
      const i = await injected();
      return i.config === data['ca.crt'] && i.crd === data['ca.crt'] ? true : undefined;
    });
    await ensureStored();
    await eventually('admission through the certificate', async () => ((await probe()).length === 0 ? true : undefined));
    // The watch by name (fieldSelector metadata.name) is what resourceNames allow: a change is seen and undone.
    await admin.patch(
      ValidatingWebhookConfiguration,
      undefined,
      configName,
      [{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }],
      'json',
    );
    await eventually('the caBundle restored with the granted rights', async () =>
      (await injected()).config === data['ca.crt'] ? true : undefined,
    );
    assert.deepEqual(
      lines.filter((l) => /forbidden|\b403\b/i.test(l)),
      [],
      'nothing the rotator did was forbidden',
    );
  } finally {
    await r.stop();
    await env.kubectl(['delete', 'clusterrole,clusterrolebinding', role, '--ignore-not-found']);
  }
});
