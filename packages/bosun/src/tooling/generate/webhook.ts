// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration of a project's admission webhooks, built
// from their declarations (webhook/declare.ts). The same builder serves `bosun generate` (clientConfig.service,
// the in-cluster Service) and local registration (clientConfig.url on loopback), so the rules, policies and
// selectors a test exercises are the ones deployed.
import { Document, isPair, isScalar, stringify, visit } from 'yaml';
import type { LabelSelector } from '../../client/resources.js';
import type { AdmissionOperation, AdmissionWebhook, ApiVersions, FailurePolicy } from '../../webhook/declare.js';
import { versionsPatch } from './crd.js';
import { assertNoWildcards, certRotationRules, serviceAccountName, type RbacObject } from './rbac.js';

/** Where the API server sends a review: a URL (local serving) or an in-cluster Service, with the CA that signed its certificate. */
export type WebhookClientConfig =
  { url: string; caBundle?: string } | { service: { name: string; namespace: string; path: string; port?: number }; caBundle?: string };

/** One rule of a webhook: which operations on which resource it is called for. */
export interface WebhookRule {
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  operations: AdmissionOperation[];
  scope: 'Namespaced' | 'Cluster';
}

/** The fields a validating and a mutating webhook entry share, as admissionregistration.k8s.io/v1 spells them. */
export interface WebhookEntry {
  name: string;
  clientConfig: WebhookClientConfig;
  rules: WebhookRule[];
  failurePolicy: FailurePolicy;
  matchPolicy: 'Equivalent';
  sideEffects: 'None';
  timeoutSeconds: number;
  admissionReviewVersions: ['v1'];
  namespaceSelector: LabelSelector;
}

/** One entry of a MutatingWebhookConfiguration: a validating entry plus when the API server calls it again. */
export interface MutatingWebhookEntry extends WebhookEntry {
  reinvocationPolicy: 'IfNeeded';
}

/** An `admissionregistration.k8s.io/v1` ValidatingWebhookConfiguration. */
export interface ValidatingWebhookConfiguration {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'ValidatingWebhookConfiguration';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  webhooks: WebhookEntry[];
}

/** An `admissionregistration.k8s.io/v1` MutatingWebhookConfiguration. */
export interface MutatingWebhookConfiguration {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'MutatingWebhookConfiguration';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  webhooks: MutatingWebhookEntry[];
}

/** Options of toWebhookConfigurations(). */
export interface WebhookConfigurationOptions {
  /** The name of both configuration objects (they are of different kinds, so one name serves both). */
  name: string;
  /** The client config of a webhook, given its URL path (`/validate/<name>`, `/mutate/<name>`). */
  clientConfig: (path: string) => WebhookClientConfig;
  /**
   * The namespaces the webhooks apply in. Default: every namespace but kube-system and `namespace`, so neither the
   * cluster's own components nor the operator (which serves the webhooks) can be locked out by a webhook that is down.
   */
  namespaceSelector?: LabelSelector;
  /** The operator's own namespace, kept out by the default namespaceSelector. */
  namespace?: string;
  /** Labels on both configuration objects. */
  labels?: Record<string, string>;
  /** Annotations on both configuration objects (e.g. cert-manager's `cert-manager.io/inject-ca-from`). */
  annotations?: Record<string, string>;
}

/** The namespaceSelector that keeps kube-system and the given namespaces out of a webhook. */
export function excludeNamespaces(...namespaces: string[]): LabelSelector {
  const values = [...new Set(['kube-system', ...namespaces.filter(Boolean)])];
  return { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values }] };
}

/** The webhook configuration objects for a project's admission webhooks; a kind with no webhook is absent. */
export function toWebhookConfigurations(
  webhooks: readonly AdmissionWebhook[],
  opts: WebhookConfigurationOptions,
): { validating?: ValidatingWebhookConfiguration; mutating?: MutatingWebhookConfiguration } {
  const namespaceSelector = opts.namespaceSelector ?? excludeNamespaces(...(opts.namespace ? [opts.namespace] : []));
  const metadata = () => ({
    name: opts.name,
    ...(opts.labels ? { labels: { ...opts.labels } } : {}),
    ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}),
  });
  const entry = (w: AdmissionWebhook): WebhookEntry => ({
    name: w.name,
    clientConfig: opts.clientConfig(w.path),
    rules: [
      {
        apiGroups: [w.resource.group],
        apiVersions: [w.resource.version],
        resources: [w.resource.plural],
        operations: [...w.operations],
        scope: w.resource.namespaced ? 'Namespaced' : 'Cluster',
      },
    ],
    failurePolicy: w.failurePolicy,
    // Equivalent: a write through another version of the resource is converted and still admitted by the webhook.
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    timeoutSeconds: w.timeoutSeconds,
    admissionReviewVersions: ['v1'],
    namespaceSelector: structuredClone(namespaceSelector),
  });
  const validating = webhooks.filter((w) => w.type === 'validating');
  const mutating = webhooks.filter((w) => w.type === 'mutating');
  const out: { validating?: ValidatingWebhookConfiguration; mutating?: MutatingWebhookConfiguration } = {};
  if (mutating.length > 0)
    out.mutating = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: metadata(),
      // IfNeeded: a mutating webhook that runs later may undo a default; being called again restores it.
      webhooks: mutating.map((w) => ({ ...entry(w), reinvocationPolicy: 'IfNeeded' as const })),
    };
  if (validating.length > 0)
    out.validating = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: metadata(),
      webhooks: validating.map(entry),
    };
  return out;
}

/**
 * The configurations as YAML documents, each webhook's failurePolicyReason written as a comment beside its
 * failurePolicy, so whoever reads the deployed manifest sees why a down webhook blocks (or admits) writes.
 */
export function renderWebhookConfigurations(
  configs: { validating?: ValidatingWebhookConfiguration; mutating?: MutatingWebhookConfiguration },
  webhooks: readonly AdmissionWebhook[],
): string {
  const reasons = new Map(webhooks.map((w) => [`${w.type}/${w.name}`, w.failurePolicyReason.replace(/\s+/g, ' ').trim()]));
  const docs: string[] = [];
  for (const [type, config] of [
    ['mutating', configs.mutating],
    ['validating', configs.validating],
  ] as const) {
    if (!config) continue;
    const doc = new Document(config);
    visit(doc, {
      Map(_, map) {
        const name = map.get('name');
        const reason = typeof name === 'string' ? reasons.get(`${type}/${name}`) : undefined;
        if (reason === undefined || !map.has('failurePolicy')) return;
        const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === 'failurePolicy');
        if (pair && isScalar(pair.value)) pair.value.comment = ` ${reason}`;
      },
    });
    docs.push(doc.toString({ lineWidth: 0 }));
  }
  return docs.join('---\n');
}

/** The in-cluster names `bosun generate` gives the webhook Service, its certificate and the configurations, for a prefix. */
export function webhookNames(prefix: string): {
  service: string;
  configuration: string;
  issuer: string;
  certificate: string;
  secret: string;
  deployment: string;
} {
  return {
    service: `${prefix}-webhook-service`,
    configuration: `${prefix}-webhooks`,
    issuer: `${prefix}-selfsigned-issuer`,
    certificate: `${prefix}-serving-cert`,
    secret: `${prefix}-webhook-server-cert`,
    deployment: `${prefix}-controller-manager`,
  };
}

/** The container port the manager serves webhooks on in a cluster (the Service's 443 goes to it), as kubebuilder's. */
export const WEBHOOK_PORT = 9443;
/** Where the manager container finds the serving certificate (the cert-manager Secret: tls.crt, tls.key, ca.crt). */
export const WEBHOOK_CERT_DIR = '/tmp/k8s-webhook-server/serving-certs';

/** The client config of a webhook path on the in-cluster Service `<prefix>-webhook-service` (port 443). */
export function serviceClientConfig(prefix: string, namespace: string): (path: string) => WebhookClientConfig {
  const name = webhookNames(prefix).service;
  return (path) => ({ service: { name, namespace, path, port: 443 } });
}

/** What the in-cluster webhook files are generated from. */
export interface WebhookDeploymentOptions {
  prefix: string;
  namespace: string;
  webhooks: readonly AdmissionWebhook[];
  /** The CRDs served at several versions: the component serves their other versions through the conversion webhook. */
  versions: readonly ApiVersions[];
}

/** A strategic-merge patch of the manager Deployment: fields of its `manager` container and one volume. */
function managerPatch(deployment: string, container: Record<string, unknown>, volume: Record<string, unknown>): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: deployment },
    spec: { template: { spec: { containers: [{ name: 'manager', ...container }], volumes: [volume] } } },
  };
}

/** The first line of every file `bosun generate` writes into config/webhook and config/certmanager: what marks a file as its own. */
export const WEBHOOK_FILES_HEADER = "# Generated by `bosun generate` from the project's webhooks and versions.";

const LABELS = { 'app.kubernetes.io/managed-by': 'bosun', 'app.kubernetes.io/component': 'webhook' };

/**
 * The files of config/webhook (the configurations, the Service, the manager's port and certificate volume) and of
 * config/certmanager (a self-signed Issuer, the serving Certificate, the CRDs' caBundle injection), by base name;
 * both are kustomize Components that config/default lists, as kubebuilder lays them out. Empty maps when the project
 * has neither webhooks nor conversions.
 */
export function webhookDeploymentFiles(opts: WebhookDeploymentOptions): { webhook: Map<string, string>; certmanager: Map<string, string> } {
  const webhook = new Map<string, string>();
  const certmanager = new Map<string, string>();
  const conversionCrds = opts.versions.map((v) => v.crdName);
  if (opts.webhooks.length === 0 && conversionCrds.length === 0) return { webhook, certmanager };
  const { prefix, namespace } = opts;
  const n = webhookNames(prefix);
  const injectCa = { 'cert-manager.io/inject-ca-from': `${namespace}/${n.certificate}` };
  const header = (...lines: string[]) => [WEBHOOK_FILES_HEADER, ...lines.map((l) => `# ${l}`)].join('\n') + '\n';
  const yaml = (o: unknown) => stringify(o, { lineWidth: 0 });
  const doNotEdit = 'Do not edit by hand: change the webhook declarations or the versions and run `bosun generate` again.';

  if (opts.webhooks.length > 0) {
    const configs = toWebhookConfigurations(opts.webhooks, {
      name: n.configuration,
      clientConfig: serviceClientConfig(prefix, namespace),
      namespace,
      labels: LABELS,
      annotations: injectCa,
    });
    webhook.set(
      'manifests.yaml',
      header(
        doNotEdit,
        'Serving webhooks needs no RBAC: the API server calls the manager, which reads its certificate from a mounted Secret.',
        `The namespaceSelector keeps kube-system and ${namespace} out: a webhook that is down cannot block the operator that serves it.`,
        "Each failurePolicy carries its reason (failurePolicyReason); timeoutSeconds is the declaration's (default 10), see docs/webhooks.md.",
      ) + renderWebhookConfigurations(configs, opts.webhooks),
    );
  }
  webhook.set(
    'service.yaml',
    header(doNotEdit, `The API server reaches the manager's webhook server (container port ${WEBHOOK_PORT}) through this Service.`) +
      yaml({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: n.service, namespace, labels: LABELS },
        spec: {
          ports: [{ name: 'webhook', port: 443, protocol: 'TCP', targetPort: 'webhook-server' }],
          selector: { 'app.kubernetes.io/name': prefix },
        },
      }),
  );
  webhook.set(
    'manager_webhook_patch.yaml',
    header(doNotEdit, `The manager's webhook port, and the serving certificate from the Secret ${n.secret} mounted read-only.`) +
      yaml(
        managerPatch(
          n.deployment,
          {
            ports: [{ name: 'webhook-server', containerPort: WEBHOOK_PORT, protocol: 'TCP' }],
            volumeMounts: [{ name: 'webhook-certs', mountPath: WEBHOOK_CERT_DIR, readOnly: true }],
          },
          { name: 'webhook-certs', secret: { secretName: n.secret } },
        ),
      ),
  );
  const service = serviceClientConfig(prefix, namespace);
  const versionPatches = opts.versions.map((v) => ({ crd: v.crdName, file: `${v.crdName}_versions_patch.yaml` }));
  for (const v of opts.versions)
    webhook.set(
      `${v.crdName}_versions_patch.yaml`,
      header(
        doNotEdit,
        `Serves ${v.versions
          .filter((x) => x !== v.storage)
          .map((x) => x.version)
          .join(', ')} beside ${v.storage.version} (the CRD in config/crd serves ${v.storage.version} alone)`,
        `and has the API server convert through the webhook Service. For a CRD installed already: kubectl patch crd ${v.crdName} --type=json --patch-file <this file>`,
      ) + yaml(versionsPatch(v, service(v.path))),
    );
  const args = [`--webhook-addr=:${WEBHOOK_PORT}`, `--webhook-cert-dir=${WEBHOOK_CERT_DIR}`];
  const deployment = { group: 'apps', version: 'v1', kind: 'Deployment', name: n.deployment };
  webhook.set(
    'kustomization.yaml',
    header(
      doNotEdit,
      'A kustomize Component: list it under `components:` in config/default. It adds the webhook configurations and',
      'Service and patches the manager Deployment (its first container is the manager: the flags go to its args).',
    ) +
      yaml({
        apiVersion: 'kustomize.config.k8s.io/v1alpha1',
        kind: 'Component',
        resources: [...(opts.webhooks.length > 0 ? ['manifests.yaml'] : []), 'service.yaml'],
        // By target, not by the patch's own name: the Deployment's namespace is the overlay's business.
        patches: [
          ...versionPatches.map(({ crd, file }) => ({
            path: file,
            target: { group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', name: crd },
          })),
          { path: 'manager_webhook_patch.yaml', target: deployment },
          { target: deployment, patch: yaml(args.map((value) => ({ op: 'add', path: '/spec/template/spec/containers/0/args/-', value }))) },
        ],
      }),
  );

  const dnsNames = [`${n.service}.${namespace}.svc`, `${n.service}.${namespace}.svc.cluster.local`];
  certmanager.set(
    'issuer.yaml',
    header(doNotEdit, 'Needs cert-manager in the cluster. A self-signed Issuer: the API server trusts it through the injected caBundle.') +
      yaml({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Issuer',
        metadata: { name: n.issuer, namespace, labels: LABELS },
        spec: { selfSigned: {} },
      }),
  );
  certmanager.set(
    'certificate.yaml',
    header(
      doNotEdit,
      `The webhook server's certificate, for the Service's DNS names, into the Secret ${n.secret}. cert-manager renews it`,
      'before it expires; the webhook server re-reads the mounted files when they change, so renewal needs no restart.',
    ) +
      yaml({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: n.certificate, namespace, labels: LABELS },
        spec: {
          dnsNames,
          issuerRef: { kind: 'Issuer', name: n.issuer },
          secretName: n.secret,
          privateKey: { rotationPolicy: 'Always' },
        },
      }),
  );
  certmanager.set(
    'kustomization.yaml',
    header(
      doNotEdit,
      'A kustomize Component: list it under `components:` in config/default after ../webhook. It adds the Issuer and',
      "Certificate and has cert-manager inject the CA into each CRD's conversion webhook (the webhook configurations carry",
      'the same annotation in config/webhook/manifests.yaml).',
    ) +
      yaml({
        apiVersion: 'kustomize.config.k8s.io/v1alpha1',
        kind: 'Component',
        resources: ['issuer.yaml', 'certificate.yaml'],
        ...(conversionCrds.length > 0
          ? {
              patches: conversionCrds.map((name) => ({
                target: { group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', name },
                patch: yaml({
                  apiVersion: 'apiextensions.k8s.io/v1',
                  kind: 'CustomResourceDefinition',
                  metadata: { name, annotations: injectCa },
                }),
              })),
            }
          : {}),
      }),
  );
  return { webhook, certmanager };
}

/** The flag of `bosun run` that turns on the certificate rotator (the Manager's `webhookCerts`) for a Secret name. */
export const WEBHOOK_CERTS_SECRET_FLAG = '--webhook-certs-secret';

/**
 * The files of config/certs-self, the alternative to config/certmanager: a kustomize Component that has the manager
 * keep the serving certificate itself (`bosun run --webhook-certs-secret`: a CA and certificate in the Secret
 * `<prefix>-webhook-server-cert`, the CA injected into the project's webhook configurations and conversion CRDs),
 * the least-privilege Role and ClusterRole that takes, and the certificate directory as a writable emptyDir in place
 * of the mounted Secret. Empty when the project has neither webhooks nor conversions.
 */
export function certsSelfFiles(opts: WebhookDeploymentOptions): Map<string, string> {
  const files = new Map<string, string>();
  const crds = opts.versions.map((v) => v.crdName);
  if (opts.webhooks.length === 0 && crds.length === 0) return files;
  const { prefix, namespace } = opts;
  const n = webhookNames(prefix);
  const header = (...lines: string[]) => [WEBHOOK_FILES_HEADER, ...lines.map((l) => `# ${l}`)].join('\n') + '\n';
  const yaml = (o: unknown) => stringify(o, { lineWidth: 0 });
  const docs = (objects: readonly unknown[]) => objects.map(yaml).join('---\n');
  const doNotEdit = 'Do not edit by hand: change the webhook declarations or the versions and run `bosun generate` again.';
  const rules = certRotationRules({
    secret: n.secret,
    validating: opts.webhooks.some((w) => w.type === 'validating') ? n.configuration : undefined,
    mutating: opts.webhooks.some((w) => w.type === 'mutating') ? n.configuration : undefined,
    crds,
  });
  const role = `${prefix}-webhook-certs-role`;
  const binding = `${prefix}-webhook-certs-rolebinding`;
  const labels = { 'app.kubernetes.io/managed-by': 'bosun', 'app.kubernetes.io/component': 'rbac' };
  const subjects = [{ kind: 'ServiceAccount', name: serviceAccountName(prefix), namespace }];
  const roleRef = (kind: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name: role });
  const roles: RbacObject[] = [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: role, namespace, labels }, rules: rules.namespaced },
    ...(rules.cluster.length
      ? [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRole' as const,
            metadata: { name: role, labels },
            rules: rules.cluster,
          },
        ]
      : []),
  ];
  const bindings: RbacObject[] = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: binding, namespace, labels },
      roleRef: roleRef('Role'),
      subjects,
    },
    ...(rules.cluster.length
      ? [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRoleBinding' as const,
            metadata: { name: binding, labels },
            roleRef: roleRef('ClusterRole'),
            subjects,
          },
        ]
      : []),
  ];
  assertNoWildcards([...roles, ...bindings]);
  files.set(
    'role.yaml',
    header(
      doNotEdit,
      `What the manager's certificate rotator needs: its Secret ${n.secret} by name, create on Secrets (resourceNames`,
      'cannot narrow a create), and read, watch and patch of exactly the webhook configurations and CRDs it injects the CA into.',
    ) + docs(roles),
  );
  files.set('role_binding.yaml', header(doNotEdit, `The rotator's roles, bound to the manager's ServiceAccount.`) + docs(bindings));
  files.set(
    'manager_certs_patch.yaml',
    header(
      doNotEdit,
      `The certificate directory as a writable emptyDir in place of the Secret ${n.secret}: each replica writes the`,
      "Secret's certificate there itself (no wait for the kubelet's volume sync), and the webhook server re-reads it on change.",
    ) +
      yaml(
        managerPatch(
          n.deployment,
          { volumeMounts: [{ name: 'webhook-certs', mountPath: WEBHOOK_CERT_DIR, readOnly: false }] },
          { name: 'webhook-certs', secret: null, emptyDir: {} },
        ),
      ),
  );
  const deployment = { group: 'apps', version: 'v1', kind: 'Deployment', name: n.deployment };
  files.set(
    'kustomization.yaml',
    header(
      doNotEdit,
      'A kustomize Component, the alternative to ../certmanager: list it under `components:` in config/default after',
      `../webhook. The manager keeps the webhook certificate itself (${WEBHOOK_CERTS_SECRET_FLAG}): no cert-manager needed.`,
    ) +
      yaml({
        apiVersion: 'kustomize.config.k8s.io/v1alpha1',
        kind: 'Component',
        resources: ['role.yaml', 'role_binding.yaml'],
        patches: [
          { path: 'manager_certs_patch.yaml', target: deployment },
          {
            target: deployment,
            patch: yaml([
              { op: 'add', path: '/spec/template/spec/containers/0/args/-', value: `${WEBHOOK_CERTS_SECRET_FLAG}=${n.secret}` },
            ]),
          },
        ],
      }),
  );
  return files;
}
