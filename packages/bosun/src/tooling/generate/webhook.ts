// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration of a project's admission webhooks, built
// from their declarations (webhook/declare.ts). The same builder serves `bosun generate` (clientConfig.service,
// the in-cluster Service) and local registration (clientConfig.url on loopback), so the rules, policies and
// selectors a test exercises are the ones deployed.
import { Document, isPair, isScalar, visit } from 'yaml';
import type { LabelSelector } from '../../client/resources.js';
import type { AdmissionOperation, AdmissionWebhook, FailurePolicy } from '../../webhook/declare.js';

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
