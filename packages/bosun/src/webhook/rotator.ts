// Webhook certificates without cert-manager, as open-policy-agent/cert-controller's rotator keeps them for
// kubebuilder projects: a CA and a serving certificate for the webhook Service in one Secret, the CA injected into
// the webhook configurations and the CRDs' conversion, and the Secret's pair written to the files the webhook
// server serves. The leader writes; every replica serves what the Secret holds.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { dirname } from 'node:path';
import type { KubeClient } from '../client/client.js';
import { ApiError, isNotFound } from '../client/errors.js';
import { CustomResourceDefinition, Secret } from '../client/resources.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import { bosunError } from '../errors.js';
import { silentLogger, type Logger } from '../telemetry/logger.js';
import { clientListWatcher, runWatcher, type WatcherEvent } from '../watch/watcher.js';
import { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from './kinds.js';
import {
  bundlePem,
  caProblem,
  judgeServing,
  mergeBundle,
  parseBundle,
  serviceDnsNames,
  servingAction,
  servingValidityMs,
  signingCaOf,
  validAt,
  MAX_CHECK_MS,
  nextCheckAt,
  type ServingAction,
} from './rotation.js';

/**
 * The certificate issuer, loaded on the first certificate this rotator makes: @peculiar/x509 and its
 * dependencies cost an operator that never rotates a certificate about 9 MiB of memory.
 */
const x509 = () => import('./x509.js');

/** A namespaced object by name. */
export interface ObjectName {
  namespace: string;
  name: string;
}

/** The Manager's `webhookCerts`: the Secret the certificates live in and where their CA is injected. */
export interface WebhookCertsOptions {
  /** The Secret holding `ca.crt` (the CAs clients trust), `ca.key`, `tls.crt` and `tls.key`; created when missing. */
  secret: ObjectName;
  /** The webhook Service: the serving certificate names `<name>.<namespace>.svc` and `….svc.cluster.local`. */
  service: ObjectName;
  /** Names of the ValidatingWebhookConfigurations whose webhooks get the caBundle. */
  validatingWebhookConfigurations?: readonly string[];
  /** Names of the MutatingWebhookConfigurations whose webhooks get the caBundle. */
  mutatingWebhookConfigurations?: readonly string[];
  /** Names of the CRDs (`<plural>.<group>`) whose conversion webhook gets the caBundle. */
  crds?: readonly string[];
  /** Lifetime of a new serving certificate (default 1 year; never past its CA's expiry). */
  validityMs?: number;
  /** Lifetime of a new CA (default 10 years). */
  caValidityMs?: number;
  /** A certificate is renewed this long before it expires (default a third of its lifetime, at most 30 days). */
  renewBeforeMs?: number;
  /** How long a new CA is in every caBundle before a serving certificate it signed is served (default 60 s). */
  overlapMs?: number;
}

/** Options of a WebhookCertRotator: the Manager's `webhookCerts` and the webhook server's files. */
export interface WebhookCertRotatorOptions extends WebhookCertsOptions {
  /** The files the webhook server serves (its `tls`), written from the Secret on every replica. */
  files: { certFile: string; keyFile: string };
  logger?: Logger;
  /** The field manager of the rotator's writes (default 'bosun-cert-rotator'). */
  fieldManager?: string;
  /** The current time in epoch ms (default Date.now). */
  now?: () => number;
}

/** `webhookCerts` is not usable as given: a name missing, or lifetimes that leave no room to rotate. */
export class WebhookCertsConfigError extends bosunError('BOSUN_WEBHOOK_CERTS_CONFIG') {
  override name = 'WebhookCertsConfigError';
}

/** The rotator could not read or write its Secret (RBAC, a Secret of another type); it retries with backoff. */
export class WebhookCertsSecretError extends bosunError('BOSUN_WEBHOOK_CERTS_SECRET') {
  override name = 'WebhookCertsSecretError';
}

/** The CA could not be injected into a named webhook configuration or CRD (missing, no conversion webhook, RBAC). */
export class CaInjectionError extends bosunError('BOSUN_CA_INJECTION') {
  override name = 'CaInjectionError';
}

const YEAR_MS = 365 * 24 * 3600 * 1000;
const DEFAULT_OVERLAP_MS = 60_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 60_000;
const KEYS = { ca: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

interface Settings {
  validityMs: number;
  caValidityMs: number;
  renewBeforeMs: number | undefined;
  overlapMs: number;
}

/** Checks `webhookCerts` and fills in the defaults; throws WebhookCertsConfigError naming the field and the fix. */
export function webhookCertsSettings(opts: WebhookCertsOptions): Settings {
  const bad = (field: string, problem: string, fix: string) => new WebhookCertsConfigError(`webhookCerts.${field} ${problem}. Fix: ${fix}`);
  for (const field of ['secret', 'service'] as const) {
    const ref = opts[field] as ObjectName | undefined;
    if (!ref?.namespace || !ref.name) throw bad(field, 'needs a namespace and a name', `give webhookCerts.${field} as { namespace, name }`);
  }
  for (const field of ['validatingWebhookConfigurations', 'mutatingWebhookConfigurations', 'crds'] as const)
    if ((opts[field] ?? []).some((n) => !n || n.includes('*')))
      throw bad(field, `has an empty or wildcard name (${JSON.stringify(opts[field])})`, 'list the exact object names');
  const s: Settings = {
    validityMs: opts.validityMs ?? YEAR_MS,
    caValidityMs: opts.caValidityMs ?? 10 * YEAR_MS,
    renewBeforeMs: opts.renewBeforeMs,
    overlapMs: opts.overlapMs ?? DEFAULT_OVERLAP_MS,
  };
  for (const field of ['validityMs', 'caValidityMs'] as const)
    if (!(s[field] > 0)) throw bad(field, `is ${s[field]}`, 'give a lifetime above 0 ms');
  if (!(s.overlapMs >= 0)) throw bad('overlapMs', `is ${s.overlapMs}`, 'give 0 or more ms');
  for (const field of ['validityMs', 'caValidityMs'] as const) {
    // The margin as renewalMarginMs computes it for a certificate of this lifetime (issued an hour back-dated).
    const margin = s.renewBeforeMs ?? Math.min(30 * 24 * 3600 * 1000, (s[field] + 3600_000) / 3);
    if (margin >= s[field])
      throw bad('renewBeforeMs', `(${margin} ms) is not shorter than ${field} (${s[field]} ms)`, 'renew before less than a lifetime');
    if (s.overlapMs >= margin)
      throw bad(
        'overlapMs',
        `(${s.overlapMs} ms) is not shorter than the renewal margin of ${field} (${margin} ms): the old CA would expire before the new one is served`,
        'shorten overlapMs or renew earlier (renewBeforeMs)',
      );
  }
  return s;
}

type Data = Record<string, string>;

function decode(data: Record<string, string> | undefined): Data {
  const out: Data = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

function encode(data: Data): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) out[k] = Buffer.from(v, 'utf8').toString('base64');
  return out;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// A reader (the webhook server re-reads its files when they change) must never see half a file.
async function writeAtomic(file: string, body: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, body, { mode: 0o600 });
  await rename(tmp, file);
}

/** One admission configuration's webhooks, as far as the rotator reads them. */
interface WebhookConfigurationObject extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

interface ConversionCrd extends KubeObject {
  spec?: { conversion?: { strategy?: string; webhook?: { clientConfig?: { caBundle?: string } } } };
}

/**
 * Keeps a webhook server's certificate without cert-manager. `serve` (every replica) writes the Secret's serving
 * pair to the server's files whenever it changes; `lead` (the leader only) keeps the Secret valid and the CA
 * injected: it creates the Secret, renews the CA and the serving certificate before they expire (the new CA goes
 * into every caBundle `overlapMs` before a certificate it signed is served, the old CA stays until it expires),
 * and restores a caBundle someone changed.
 */
export class WebhookCertRotator {
  private readonly client: KubeClient;
  private readonly opts: WebhookCertRotatorOptions;
  private readonly settings: Settings;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly dnsNames: string[];
  private readonly fieldManager: string;
  /** When this process saw each CA (by fingerprint) in every caBundle: the start of its overlap. */
  private readonly trustedSince = new Map<string, number>();
  private written: { cert: string; key: string } | undefined;
  private firstWritten!: () => void;
  private readonly first: Promise<void>;
  private kicked = false;
  private wake: (() => void) | undefined;

  constructor(client: KubeClient, opts: WebhookCertRotatorOptions) {
    this.settings = webhookCertsSettings(opts);
    this.client = client;
    this.opts = opts;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'webhook-cert-rotator' });
    this.now = opts.now ?? Date.now;
    this.dnsNames = serviceDnsNames(opts.service);
    this.fieldManager = opts.fieldManager ?? 'bosun-cert-rotator';
    this.first = new Promise<void>((r) => (this.firstWritten = r));
  }

  /** Whether this replica has written a serving pair from the Secret. */
  get hasCertificate(): boolean {
    return this.written !== undefined;
  }

  /** Resolves once this replica has written a serving pair from the Secret; rejects when `signal` aborts first. */
  certificateWritten(signal: AbortSignal): Promise<void> {
    if (this.written) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      void this.first.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Every replica: watches the Secret and writes its serving pair to the server's files, until `signal` aborts. */
  async serve(signal: AbortSignal): Promise<void> {
    const { namespace, name } = this.opts.secret;
    await runWatcher(
      clientListWatcher(this.client, Secret, { namespace, fieldSelector: `metadata.name=${name}` }),
      async (ev: WatcherEvent<Secret>) => {
        this.kick();
        const obj = ev.type === 'page' ? ev.objects.find((o) => o.metadata.name === name) : ev.type === 'applied' ? ev.object : undefined;
        if (!obj) return;
        // A file that cannot be written now is written on the Secret's next change or the watch's next relist.
        await this.writeFiles(obj).catch((err: unknown) =>
          this.log.error({ err: messageOf(err), files: this.opts.files }, 'cannot write the webhook serving certificate from the Secret'),
        );
      },
      signal,
      { hooks: this.watchHooks(`Secret ${namespace}/${name}`, 'the Secret (get, list, watch by resourceNames)') },
    );
  }

  /** The leader: keeps the Secret and every caBundle right, re-checking on each change of them, until `signal` aborts. */
  async lead(signal: AbortSignal): Promise<void> {
    const watches = this.targets().map(({ type, name }) =>
      runWatcher(clientListWatcher(this.client, type, { fieldSelector: `metadata.name=${name}` }), () => this.kick(), signal, {
        hooks: this.watchHooks(`${type.kind} ${name}`, `${type.plural} (get, list, watch, patch by resourceNames)`),
      }),
    );
    let failures = 0;
    while (!signal.aborted) {
      let next: number;
      try {
        next = await this.pass(signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (failures - 1));
        this.log.warn({ err: messageOf(err), retryInMs: delay }, 'webhook certificate rotation failed; retrying');
        next = this.now() + delay;
      }
      await this.sleepUntil(next, signal);
    }
    await Promise.allSettled(watches);
  }

  /** The objects whose caBundle is kept, each of the one kind it was named as (what the RBAC grants, by name). */
  private targets(): { type: ResourceType; name: string }[] {
    return [
      ...(this.opts.validatingWebhookConfigurations ?? []).map((name) => ({ type: ValidatingWebhookConfiguration, name })),
      ...(this.opts.mutatingWebhookConfigurations ?? []).map((name) => ({ type: MutatingWebhookConfiguration, name })),
      ...(this.opts.crds ?? []).map((name) => ({ type: CustomResourceDefinition as ResourceType, name })),
    ];
  }

  private watchHooks(what: string, grant: string) {
    return {
      onRestart: (reason: string, info: { delayMs: number; error?: unknown }) => {
        if (info.error === undefined) return;
        const forbidden = info.error instanceof ApiError && info.error.status === 403;
        this.log.warn(
          { watch: what, reason, delayMs: info.delayMs, err: messageOf(info.error) },
          forbidden ? `cannot watch ${what}: grant ${grant} to the operator's ServiceAccount (config/certs-self)` : 'watch restarting',
        );
      },
    };
  }

  private kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  private async sleepUntil(at: number, signal: AbortSignal): Promise<void> {
    if (!this.kicked && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, Math.min(at - this.now(), MAX_CHECK_MS)));
        signal.addEventListener('abort', done, { once: true });
        this.wake = done;
      });
    }
    this.kicked = false;
  }

  /** Writes the Secret's serving pair to the files when it is a pair and differs from what was written. */
  private async writeFiles(secret: Secret): Promise<void> {
    const data = decode(secret.data);
    const cert = data[KEYS.cert];
    const key = data[KEYS.key];
    if (!cert || !key || (this.written?.cert === cert && this.written.key === key)) return;
    try {
      const [x509] = parseBundle(cert);
      if (!x509?.checkPrivateKey(createPrivateKey(key))) return;
    } catch {
      return;
    }
    const { certFile, keyFile } = this.opts.files;
    const onDisk = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]).catch(() => undefined);
    if (onDisk?.[0] !== cert || onDisk[1] !== key) {
      await mkdir(dirname(certFile), { recursive: true, mode: 0o700 });
      await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
      // The key first: a server reloading on the certificate's change then finds the matching key already there.
      await writeAtomic(keyFile, key);
      await writeAtomic(certFile, cert);
      this.log.info({ certFile, notAfter: parseBundle(cert)[0]?.validTo }, 'webhook serving certificate written from the Secret');
    }
    const firstTime = this.written === undefined;
    this.written = { cert, key };
    if (firstTime) this.firstWritten();
  }

  /** One round of the leader's work; returns when the next one is due (epoch ms). */
  private async pass(signal: AbortSignal): Promise<number> {
    const { secret: ref } = this.opts;
    const { renewBeforeMs, overlapMs } = this.settings;
    const now = this.now();
    let secret = await this.readSecret(signal);
    const data = decode(secret?.data);
    const next: Data = { ...data };
    const previous = parseBundle(data[KEYS.ca]).filter((c) => validAt(c, now));
    let signing = signingCaOf(previous, data[KEYS.caKey]);
    const caWhy = caProblem(signing, now, renewBeforeMs);
    if (caWhy) {
      const { createCa } = await x509();
      const created = await createCa(`CN=${this.dnsNames[0]} CA ${new Date(now).toISOString()}`, { now, ms: this.settings.caValidityMs });
      signing = new X509Certificate(created.pair.cert);
      next[KEYS.caKey] = created.pair.key;
      this.log.info({ secret: `${ref.namespace}/${ref.name}`, reason: caWhy, notAfter: signing.validTo }, 'new webhook CA');
    }
    const ca = signing!;
    const bundle = mergeBundle(ca, previous, now);
    next[KEYS.ca] = bundlePem(bundle);
    const decide = (at: number): ServingAction =>
      servingAction(
        judgeServing(next[KEYS.cert], next[KEYS.key], { bundle, signing: ca, dnsNames: this.dnsNames, now: at, renewBeforeMs }),
        this.trustedSince.get(ca.fingerprint256),
        overlapMs,
        at,
      );
    let action = decide(now);
    if (action.action === 'issue') await this.issueInto(next, ca, action.reason, now);
    if (secret === undefined || Object.keys(next).some((k) => next[k] !== data[k])) secret = await this.writeSecret(secret, next, signal);

    await this.inject(next[KEYS.ca]!, signal);
    if (!this.trustedSince.has(ca.fingerprint256)) this.trustedSince.set(ca.fingerprint256, this.now());

    if (action.action === 'wait') {
      action = decide(this.now());
      if (action.action === 'issue') {
        await this.issueInto(next, ca, action.reason, this.now());
        await this.writeSecret(secret, next, signal);
      }
    }
    return nextCheckAt({ ca, serving: parseBundle(next[KEYS.cert])[0], bundle, action, now, renewBeforeMs, overlapMs });
  }

  private async issueInto(next: Data, ca: X509Certificate, reason: string, now: number): Promise<void> {
    const { issue, loadCa } = await x509();
    const signer = await loadCa({ cert: ca.toString(), key: next[KEYS.caKey]! });
    const pair = await issue(signer, `CN=${this.dnsNames[0]}`, {
      server: { dns: this.dnsNames, ips: [] },
      validity: { now, ms: servingValidityMs(ca, this.settings.validityMs, now) },
    });
    next[KEYS.cert] = pair.cert;
    next[KEYS.key] = pair.key;
    this.log.info(
      { secret: `${this.opts.secret.namespace}/${this.opts.secret.name}`, reason, notAfter: parseBundle(pair.cert)[0]?.validTo },
      'new webhook serving certificate',
    );
  }

  private secretError(verb: string, err: unknown): WebhookCertsSecretError {
    const { namespace, name } = this.opts.secret;
    const status = err instanceof ApiError ? err.status : undefined;
    const fix =
      status === 403
        ? `grant get, list, watch and update on secrets named ${name} and create on secrets in ${namespace} to the operator's ServiceAccount (config/certs-self)`
        : status === 409
          ? 'another writer changed it at the same time; the rotator retries'
          : status === 422
            ? `delete the Secret ${namespace}/${name} so the rotator creates it (a Secret's type cannot change)`
            : 'check the API server is reachable; the rotator retries';
    return new WebhookCertsSecretError(`webhookCerts.secret ${namespace}/${name}: cannot ${verb} it (${messageOf(err)}). Fix: ${fix}`, {
      cause: err,
    });
  }

  private async readSecret(signal: AbortSignal): Promise<Secret | undefined> {
    try {
      return await this.client.get(Secret, this.opts.secret.namespace, this.opts.secret.name, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.secretError('get', err);
    }
  }

  private async writeSecret(current: Secret | undefined, data: Data, signal: AbortSignal): Promise<Secret> {
    const { namespace, name } = this.opts.secret;
    try {
      if (!current)
        return await this.client.create(
          Secret,
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { namespace, name, labels: { 'app.kubernetes.io/managed-by': 'bosun', 'app.kubernetes.io/component': 'webhook' } },
            type: 'kubernetes.io/tls',
            data: encode(data),
          },
          { fieldManager: this.fieldManager, signal },
        );
      // An update, not a patch: it carries the resourceVersion read, so a concurrent writer's change is never overwritten.
      return await this.client.update(Secret, { ...current, data: encode(data) }, { fieldManager: this.fieldManager, signal });
    } catch (err) {
      throw this.secretError(current ? 'update' : 'create', err);
    }
  }

  /**
   * Sets `bundle` as the caBundle of every webhook of the named configurations and of the named CRDs' conversion,
   * so each target present trusts it when this returns. A target that cannot take one is logged (CaInjectionError).
   */
  private async inject(bundle: string, signal: AbortSignal): Promise<void> {
    const want = Buffer.from(bundle, 'utf8').toString('base64');
    for (const { type, name } of this.targets()) {
      let obj: KubeObject;
      try {
        obj = await this.client.get(type, undefined, name, signal);
      } catch (err) {
        if (!isNotFound(err)) throw this.injectionError(type, name, err);
        // Set once it is created: the watch of it sees the creation.
        this.log.warn(
          { kind: type.kind, name },
          new CaInjectionError(
            `webhookCerts: ${type.kind} ${name} does not exist; its caBundle is set once it is created. Fix: apply config/webhook and config/crd, or correct the name in webhookCerts`,
          ).message,
        );
        continue;
      }
      const patch = [{ op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion }] as unknown[];
      let current: (string | undefined)[];
      if (type === CustomResourceDefinition) {
        const conversion = (obj as ConversionCrd).spec?.conversion;
        if (conversion?.strategy !== 'Webhook' || !conversion.webhook?.clientConfig) {
          this.log.warn(
            { crd: name },
            new CaInjectionError(
              `webhookCerts.crds: CustomResourceDefinition ${name} has no conversion webhook (spec.conversion.strategy is ${conversion?.strategy ?? 'None'}), so it has no caBundle to set. Fix: apply the CRD bosun generate writes (with versions), or drop ${name} from webhookCerts.crds`,
            ).message,
          );
          continue;
        }
        current = [conversion.webhook.clientConfig.caBundle];
        if (current[0] !== want) patch.push({ op: 'add', path: '/spec/conversion/webhook/clientConfig/caBundle', value: want });
      } else {
        const webhooks = (obj as WebhookConfigurationObject).webhooks ?? [];
        current = webhooks.map((w) => w.clientConfig?.caBundle);
        webhooks.forEach((w, i) => {
          if (w.clientConfig && w.clientConfig.caBundle !== want)
            patch.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
        });
      }
      if (patch.length > 1) {
        try {
          await this.client.patch(type, undefined, name, patch, 'json', { fieldManager: this.fieldManager, signal });
        } catch (err) {
          throw this.injectionError(type, name, err);
        }
        this.log.info({ kind: type.kind, name, restored: current.some((c) => c !== undefined && c !== '') }, 'webhook caBundle injected');
      }
    }
  }

  private injectionError(type: ResourceType, name: string, err: unknown): CaInjectionError {
    const forbidden = err instanceof ApiError && err.status === 403;
    return new CaInjectionError(
      `cannot set the caBundle of ${type.kind} ${name} (${messageOf(err)}). Fix: ${
        forbidden
          ? `grant get, list, watch and patch on ${type.plural} named ${name} to the operator's ServiceAccount (config/certs-self)`
          : 'the rotator retries; check the API server'
      }`,
      { cause: err },
    );
  }
}
