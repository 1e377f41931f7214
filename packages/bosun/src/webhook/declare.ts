// Admission and conversion webhooks declared in TypeScript beside the resource they guard. A declaration
// is data plus pure functions: the manager's webhook server (server.ts) serves it, `bosun generate`
// writes the ValidatingWebhookConfiguration / MutatingWebhookConfiguration and the CRD's `conversion`
// stanza from it, and the envtest harness registers it on a test cluster. Nothing here does I/O.
import type { KubeObject, ObjectOf, ResourceType } from '../client/types.js';
import type { CustomResource } from '../resource/resource.js';
import { bosunError } from '../errors.js';

/** An admission operation, as admission.k8s.io/v1 names it. */
export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** Who sent the request being admitted (the AdmissionReview's `userInfo`). */
export interface AdmissionUser {
  username: string;
  uid?: string;
  groups?: string[];
}

/** What a validate or mutate function is asked: the object in the version the webhook declared. */
export interface AdmissionRequest<T extends KubeObject = KubeObject> {
  /** The AdmissionReview's uid, echoed in the response. */
  uid: string;
  operation: AdmissionOperation;
  /** The object after the change; absent on DELETE. */
  object?: T;
  /** The object before the change; present on UPDATE and DELETE. */
  oldObject?: T;
  /** Name and namespace of the object (a CREATE with generateName has no name yet). */
  name?: string;
  namespace?: string;
  /** The subresource written, e.g. 'status'; absent for the main resource. */
  subResource?: string;
  userInfo: AdmissionUser;
  /** A dry run: the function must have no side effects anyway (sideEffects: None), this only says so. */
  dryRun: boolean;
  /** Aborted when the webhook's timeout is reached: the API server has given up waiting by then. */
  signal: AbortSignal;
}

/** The answer of a validate function; build it with `allow()` or `deny()`. */
export type AdmissionVerdict =
  | { allowed: true; warnings?: string[] }
  | {
      allowed: false;
      /** What the user sees after `admission webhook "<name>" denied the request:`; name the field and the fix. */
      message: string;
      /** HTTP code of the refusal (default 403 Forbidden; 422 for an invalid field). */
      code?: number;
      /** The field at fault, e.g. 'spec.route.to': becomes the Status cause, shown by kubectl. */
      field?: string;
      warnings?: string[];
    };

/** Admits the object, with optional warnings (`kubectl` prints each as `Warning: <text>`). */
export function allow(...warnings: string[]): AdmissionVerdict {
  return warnings.length > 0 ? { allowed: true, warnings } : { allowed: true };
}

/** Refuses the object with a message naming the field and the fix. */
export function deny(message: string, opts: { code?: number; field?: string; warnings?: string[] } = {}): AdmissionVerdict {
  return { allowed: false, message, ...opts };
}

/**
 * What the API server does when the webhook cannot answer (down, slow, TLS wrong), chosen deliberately per
 * webhook: 'Fail' refuses the write (safe for a check the operator relies on, but an outage of the operator
 * blocks every write of the kind), 'Ignore' admits it unchecked (the operator must then cope with what it let in).
 */
export type FailurePolicy = 'Fail' | 'Ignore';

/** The choices every webhook states, with the reason, because `bosun generate` documents them in the manifest. */
export interface WebhookPolicy {
  /** What the API server does when the webhook does not answer in time. */
  failurePolicy: FailurePolicy;
  /** Why that failure policy: written as a comment beside it in the generated configuration. */
  failurePolicyReason: string;
  /** How long the API server waits, 1–30 s (default 10, as the API server's). The server aborts the function's signal then. */
  timeoutSeconds?: number;
}

/** Operations a webhook is called for; default CREATE and UPDATE. */
export interface WebhookScope {
  operations?: AdmissionOperation[];
}

/** Options of validatingWebhook(). */
export interface ValidatingWebhookOptions<R extends ResourceType> extends WebhookPolicy, WebhookScope {
  /** The webhook's name, a DNS subdomain with at least three segments, e.g. 'route.flighttickets.myorg.dev'. */
  name: string;
  /** The kind and version it admits (the object arrives in this version: matchPolicy Equivalent converts it). */
  resource: R;
  validate(request: AdmissionRequest<ObjectOf<R>>): AdmissionVerdict | Promise<AdmissionVerdict>;
}

/** Options of mutatingWebhook(). */
export interface MutatingWebhookOptions<R extends ResourceType> extends WebhookPolicy, WebhookScope {
  /** The webhook's name, a DNS subdomain with at least three segments, e.g. 'defaults.flighttickets.myorg.dev'. */
  name: string;
  resource: R;
  /**
   * Returns the object as it should be stored (a changed copy, or the same object for no change); bosun computes
   * the JSON patch. It must be idempotent (reinvocationPolicy IfNeeded may call it again on its own output) and
   * must not touch metadata other than labels and annotations.
   */
  mutate(object: ObjectOf<R>, request: AdmissionRequest<ObjectOf<R>>): ObjectOf<R> | Promise<ObjectOf<R>>;
}

/** A validating admission webhook: refuses objects the schema and CEL cannot judge. */
export interface ValidatingWebhook<R extends ResourceType = ResourceType> extends Readonly<Required<WebhookScope>> {
  readonly type: 'validating';
  readonly name: string;
  readonly resource: R;
  readonly failurePolicy: FailurePolicy;
  readonly failurePolicyReason: string;
  readonly timeoutSeconds: number;
  /** The URL path the server answers it on, `/validate/<name>`. */
  readonly path: string;
  validate(request: AdmissionRequest<ObjectOf<R>>): AdmissionVerdict | Promise<AdmissionVerdict>;
}

/** A mutating admission webhook: defaults or normalises objects before they are stored. */
export interface MutatingWebhook<R extends ResourceType = ResourceType> extends Readonly<Required<WebhookScope>> {
  readonly type: 'mutating';
  readonly name: string;
  readonly resource: R;
  readonly failurePolicy: FailurePolicy;
  readonly failurePolicyReason: string;
  readonly timeoutSeconds: number;
  /** The URL path the server answers it on, `/mutate/<name>`. */
  readonly path: string;
  mutate(object: ObjectOf<R>, request: AdmissionRequest<ObjectOf<R>>): ObjectOf<R> | Promise<ObjectOf<R>>;
}

/** Either kind of admission webhook. */
export type AdmissionWebhook = ValidatingWebhook | MutatingWebhook;

/** A webhook declaration Kubernetes would refuse or bosun cannot serve; names the webhook, the field and the fix. */
export class WebhookDefinitionError extends bosunError('BOSUN_WEBHOOK_DEFINITION') {
  override name = 'WebhookDefinitionError';
}

const WEBHOOK_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?){2,}$/;
const DEFAULT_TIMEOUT_SECONDS = 10;

/** The fields both kinds of webhook declare, checked: what the generated configuration entry is made of. */
function declared<R extends ResourceType>(
  opts: WebhookPolicy & WebhookScope & { name: string; resource: R },
): {
  name: string;
  resource: R;
  failurePolicy: FailurePolicy;
  failurePolicyReason: string;
  timeoutSeconds: number;
  operations: AdmissionOperation[];
} {
  const name = opts.name;
  const fail = (field: string, problem: string, fix: string): never => {
    throw new WebhookDefinitionError(`webhook ${name || '<unnamed>'}: ${field} ${problem}. Fix: ${fix}`);
  };
  if (!WEBHOOK_NAME.test(name) || name.length > 253)
    fail(
      'name',
      `"${name}" is not a DNS subdomain of at least three segments`,
      "use '<what>.<plural>.<group>', e.g. 'route.flighttickets.myorg.dev'",
    );
  if (opts.failurePolicy !== 'Fail' && opts.failurePolicy !== 'Ignore')
    fail('failurePolicy', `is ${JSON.stringify(opts.failurePolicy)}`, "choose 'Fail' or 'Ignore' and say why in failurePolicyReason");
  if (!opts.failurePolicyReason?.trim())
    fail('failurePolicyReason', 'is empty', 'say why this failure policy: it is written beside it in the manifest');
  const timeoutSeconds = opts.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30)
    fail('timeoutSeconds', `is ${timeoutSeconds}`, 'use a whole number of seconds from 1 to 30');
  const operations = [...(opts.operations ?? ['CREATE', 'UPDATE'])];
  if (operations.length === 0) fail('operations', 'is empty', 'list at least one of CREATE, UPDATE, DELETE, CONNECT');
  const { resource, failurePolicy, failurePolicyReason } = opts;
  return { name, resource, failurePolicy, failurePolicyReason, timeoutSeconds, operations };
}

/** Declares a validating webhook for one kind and version; serve it with the Manager, generate its configuration with `bosun generate`. */
export function validatingWebhook<R extends ResourceType>(opts: ValidatingWebhookOptions<R>): ValidatingWebhook<R> {
  return Object.freeze({ type: 'validating' as const, ...declared(opts), path: `/validate/${opts.name}`, validate: opts.validate });
}

/** Declares a mutating webhook for one kind and version; serve it with the Manager, generate its configuration with `bosun generate`. */
export function mutatingWebhook<R extends ResourceType>(opts: MutatingWebhookOptions<R>): MutatingWebhook<R> {
  return Object.freeze({ type: 'mutating' as const, ...declared(opts), path: `/mutate/${opts.name}`, mutate: opts.mutate });
}

/**
 * One served version other than the hub, with its conversion to and from the hub (hub and spoke, as
 * controller-runtime's `Hub`/`Convertible`): N versions need 2(N−1) functions, not N(N−1). The functions
 * receive and return whole objects; bosun sets apiVersion and keeps metadata, so they convert spec and status.
 * `fromHub(toHub(x))` must equal `x` for every valid x: a field one side cannot hold goes into an annotation.
 */
export interface Spoke<Hub extends CustomResource = CustomResource, S extends CustomResource = CustomResource> {
  resource: S;
  toHub(object: ObjectOf<S>): ObjectOf<Hub>;
  fromHub(object: ObjectOf<Hub>): ObjectOf<S>;
}

/** Options of defineVersions(). */
export interface VersionsOptions<Hub extends CustomResource> {
  // Each spoke's resource type differs; the functions are checked against it where the spoke is written (spoke()).
  spokes: Spoke<Hub, CustomResource>[];
  /** The version objects are stored at (default the hub): changing it later needs `bosun crd migrate`. */
  storage?: CustomResource;
}

/** The served versions of one CRD: one hub, spokes converted through it, one storage version. */
export interface ApiVersions<Hub extends CustomResource = CustomResource> {
  readonly hub: Hub;
  readonly spokes: readonly Spoke<Hub, CustomResource>[];
  readonly storage: CustomResource;
  /** Every served version, the hub first. */
  readonly versions: readonly CustomResource[];
  /** The CRD these versions belong to, `<plural>.<group>`. */
  readonly crdName: string;
  /** The URL path the conversion webhook answers on, `/convert/<plural>.<group>`. */
  readonly path: string;
}

/** Types a spoke against its own resource, so `toHub`/`fromHub` see the right object types. */
export function spoke<Hub extends CustomResource, S extends CustomResource>(_hub: Hub, def: Spoke<Hub, S>): Spoke<Hub, CustomResource> {
  return def as unknown as Spoke<Hub, CustomResource>;
}

/** Declares the versions of one CRD; `bosun generate` writes them as one multi-version CRD with a conversion webhook. */
export function defineVersions<Hub extends CustomResource>(hub: Hub, opts: VersionsOptions<Hub>): ApiVersions<Hub> {
  const fail = (field: string, problem: string, fix: string): never => {
    throw new WebhookDefinitionError(`versions of ${hub.kind} (${hub.plural}.${hub.group}): ${field} ${problem}. Fix: ${fix}`);
  };
  const versions = [hub, ...opts.spokes.map((s) => s.resource)];
  const seen = new Set<string>();
  for (const v of versions) {
    if (v.group !== hub.group || v.plural !== hub.plural || v.kind !== hub.kind || v.scope !== hub.scope)
      fail(
        `version ${v.version}`,
        `is ${v.kind} ${v.plural}.${v.group} (${v.scope})`,
        `every version must have the hub's group, kind, plural and scope`,
      );
    if (seen.has(v.version)) fail(`version ${v.version}`, 'is declared twice', 'declare each version once');
    seen.add(v.version);
  }
  if (opts.spokes.length === 0) fail('spokes', 'is empty', 'a single version needs no defineVersions: list the resource alone');
  const storage = opts.storage ?? hub;
  if (!versions.includes(storage)) fail('storage', `is ${storage.version}, not one of the versions`, 'name the hub or one of the spokes');
  return Object.freeze({
    hub,
    spokes: Object.freeze([...opts.spokes]),
    storage,
    versions: Object.freeze(versions),
    crdName: `${hub.plural}.${hub.group}`,
    path: `/convert/${hub.plural}.${hub.group}`,
  });
}
