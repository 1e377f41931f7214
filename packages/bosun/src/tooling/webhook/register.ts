// Registration of a locally served webhook server with an API server that reaches it on loopback (`bosun run`
// against the local cluster, envtest): the webhook configurations `bosun generate` would write, with
// clientConfig.url instead of the in-cluster Service, and the conversion stanza of each multi-version CRD.
import type { KubeClient } from '../../client/client.js';
import { isConflict, isNotFound } from '../../client/errors.js';
import { CustomResourceDefinition, type LabelSelector } from '../../client/resources.js';
import type { KubeObject, ResourceType } from '../../client/types.js';
import { bosunError } from '../../errors.js';
import type { AdmissionWebhook, ApiVersions } from '../../webhook/declare.js';
import { toMultiVersionCrd } from '../generate/crd.js';
import { toWebhookConfigurations, type WebhookClientConfig } from '../generate/webhook.js';
import { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from '../../webhook/kinds.js';

/** Raised when local webhooks cannot be registered: a CRD missing or lacking a declared version; names the fix. */
export class WebhookRegistrationError extends bosunError('BOSUN_WEBHOOK_REGISTRATION') {
  override name = 'WebhookRegistrationError';
}

export { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from '../../webhook/kinds.js';

/** The label every locally registered configuration carries, its value the registration's name. */
export const LOCAL_WEBHOOK_LABEL = 'bosun.dev/local-webhooks';

/** Options of `registerWebhooks`. */
export interface RegisterWebhooksOptions {
  client: KubeClient;
  /**
   * The name of the configuration objects: unique per project and per test (`bosun-local-<project>`,
   * `bosun-test-<namespace>`), so registrations never replace each other's.
   */
  name: string;
  /** Where the server listens, `https://127.0.0.1:<port>`; each webhook's path is appended. */
  baseUrl: string;
  /** base64 of the PEM CA that signed the server's certificate. */
  caBundle: string;
  webhooks?: readonly AdmissionWebhook[];
  versions?: readonly ApiVersions[];
  /** The namespaces the admission webhooks apply in (default: all but kube-system and `namespace`). */
  namespaceSelector?: LabelSelector;
  /** The operator's own namespace, kept out by the default namespaceSelector. */
  namespace?: string;
  /** Default 'bosun'. */
  fieldManager?: string;
  signal?: AbortSignal;
}

/** What `registerWebhooks` put in place. */
export interface WebhookRegistration {
  /** Names of the configuration objects applied (the registration's name, once per kind present). */
  validating?: string;
  mutating?: string;
  /** The CRDs whose conversion now points at the server. */
  crds: string[];
  /**
   * The CRDs that serve their storage version alone (as config/crd installs them), so neither their conversion
   * nor their other versions' admission is in use: one line each saying so and how to serve the rest.
   */
  unserved: string[];
  /** Deletes the admission configurations (returns the kinds removed); the CRDs' conversion is left pointing at the server. */
  unregister(): Promise<string[]>;
}

/** The clientConfig of a webhook at `path` on a loopback server. */
export function localClientConfig(baseUrl: string, caBundle: string): (path: string) => WebhookClientConfig {
  const base = baseUrl.replace(/\/+$/, '');
  return (path) => ({ url: `${base}${path}`, caBundle });
}

async function deleteIfPresent(
  client: KubeClient,
  type: ResourceType,
  name: string,
  opts: { signal?: AbortSignal; onlyUrl?: string } = {},
): Promise<boolean> {
  try {
    let preconditions: { resourceVersion: string } | undefined;
    if (opts.onlyUrl !== undefined) {
      const base = opts.onlyUrl.replace(/\/+$/, '');
      const current = (await client.get(type, undefined, name, opts.signal)) as KubeObject & {
        webhooks?: { clientConfig?: { url?: string } }[];
      };
      if (!(current.webhooks ?? []).some((w) => w.clientConfig?.url?.startsWith(`${base}/`))) return false;
      // Deleted only as read: a replica registering in between keeps its registration.
      preconditions = { resourceVersion: current.metadata.resourceVersion! };
    }
    await client.delete(type, undefined, name, { signal: opts.signal, preconditions });
    return true;
  } catch (err) {
    if (!isNotFound(err) && !(opts.onlyUrl !== undefined && isConflict(err))) throw err;
    return false;
  }
}

/**
 * Points the API server at a locally served webhook server: applies (server-side, forced: a local registration
 * is this tool's own) the Validating/MutatingWebhookConfiguration `name` built as `bosun generate` builds them,
 * with `clientConfig.url` on `baseUrl`, deletes the kind that has no webhook any more, and sets each versioned
 * CRD's `spec.conversion` to the server's conversion path. A registration left by an earlier run of the same
 * name is replaced. Each CRD must exist with every declared version (apply the generated CRDs first); one that
 * serves its storage version alone, as config/crd installs it, is left so and named in `unserved`.
 */
export async function registerWebhooks(opts: RegisterWebhooksOptions): Promise<WebhookRegistration> {
  const { client, name, signal } = opts;
  const fieldManager = opts.fieldManager ?? 'bosun';
  const clientConfig = localClientConfig(opts.baseUrl, opts.caBundle);
  // The CRDs are checked first, so a missing one fails before any admission webhook starts refusing writes.
  const conversions: { crd: string; conversion: NonNullable<ReturnType<typeof toMultiVersionCrd>['spec']['conversion']> }[] = [];
  const unserved: string[] = [];
  for (const v of opts.versions ?? []) {
    let crd: CustomResourceDefinition;
    try {
      crd = await client.get(CustomResourceDefinition, undefined, v.crdName, signal);
    } catch (err) {
      if (isNotFound(err))
        throw new WebhookRegistrationError(
          `CRD ${v.crdName} does not exist, so its conversion webhook cannot be registered. Fix: apply the CRDs first (bosun generate, then kubectl apply -f config/crd)`,
        );
      throw err;
    }
    const served = new Set((crd.spec?.versions ?? []).filter((x) => x.served).map((x) => x.name));
    const known = new Set((crd.spec?.versions ?? []).map((x) => x.name));
    const absent = v.versions.map((x) => x.version).filter((x) => !known.has(x));
    if (absent.length > 0)
      throw new WebhookRegistrationError(
        `CRD ${v.crdName} has no version ${absent.join(', ')} (its spec.versions: ${[...known].join(', ') || 'none'}), which its versions declare. Fix: apply the CRD bosun generate writes for these versions (kubectl apply --server-side -f config/crd)`,
      );
    const unservedVersions = v.versions.map((x) => x.version).filter((x) => !served.has(x));
    if (unservedVersions.length > 0) {
      unserved.push(
        `CRD ${v.crdName} serves ${[...served].join(', ')} alone: ${unservedVersions.join(', ')} and the conversion webhook are off, so it is left as it is. ` +
          `Fix, to serve them from this server: kubectl patch crd ${v.crdName} --type=json --patch-file config/webhook/${v.crdName}_versions_patch.yaml, then run again`,
      );
      continue;
    }
    const conversion = toMultiVersionCrd(v, { clientConfig: clientConfig(v.path) }).spec.conversion;
    if (conversion) conversions.push({ crd: v.crdName, conversion });
  }
  const labels = { 'app.kubernetes.io/managed-by': 'bosun', [LOCAL_WEBHOOK_LABEL]: name };
  const configs = toWebhookConfigurations(opts.webhooks ?? [], {
    name,
    clientConfig,
    namespaceSelector: opts.namespaceSelector,
    namespace: opts.namespace,
    labels,
  });
  const registration: WebhookRegistration = {
    crds: [],
    unserved,
    unregister: () => unregisterWebhooks(client, name),
  };
  for (const [type, config, key] of [
    [ValidatingWebhookConfiguration, configs.validating, 'validating'],
    [MutatingWebhookConfiguration, configs.mutating, 'mutating'],
  ] as const) {
    if (config) {
      await client.apply(type, config as unknown as KubeObject, { fieldManager, force: true, signal });
      registration[key] = name;
    } else {
      await deleteIfPresent(client, type, name, { signal });
    }
  }
  for (const { crd, conversion } of conversions) {
    // A merge patch with `service: null`: a CRD applied from config/crd points at the in-cluster Service, and a
    // clientConfig with both a url and a service is invalid.
    const patch = {
      spec: {
        conversion: {
          strategy: conversion.strategy,
          webhook: {
            conversionReviewVersions: conversion.webhook.conversionReviewVersions,
            clientConfig: { service: null, ...conversion.webhook.clientConfig },
          },
        },
      },
    };
    await client.patch(CustomResourceDefinition, undefined, crd, patch, 'merge', { fieldManager, signal });
    registration.crds.push(crd);
  }
  return registration;
}

/** Options of `unregisterWebhooks`. */
export interface UnregisterOptions {
  signal?: AbortSignal;
  /**
   * Remove a configuration only while it points at this server (`https://127.0.0.1:<port>`): several local
   * replicas register under one name, the last one's URL wins, and one stopping must not remove another's.
   */
  onlyUrl?: string;
}

/**
 * Removes the admission configurations registered under `name` (absent ones are fine) and returns the kinds it
 * removed. CRD conversion is left
 * as it is: with the server gone, reads at a non-storage version fail loudly, where strategy None would serve
 * objects of one schema as another's and store what a write through the wrong version sends.
 */
export async function unregisterWebhooks(client: KubeClient, name: string, opts: UnregisterOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const type of [ValidatingWebhookConfiguration, MutatingWebhookConfiguration])
    if (await deleteIfPresent(client, type, name, opts)) removed.push(type.kind);
  return removed;
}
