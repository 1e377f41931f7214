// The answers to the API server's webhook calls, as functions of the review it sent: admission.k8s.io/v1
// AdmissionReview for validating and mutating webhooks, apiextensions.k8s.io/v1 ConversionReview for the
// versions of a CRD. They call the declared functions and do no I/O of their own, so every rule of the
// wire format is tested without a server; server.ts adds HTTP, TLS, deadlines and metrics around them.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { KubeObject } from '../client/types.js';
import type { CustomResource } from '../resource/resource.js';
import { bosunError } from '../errors.js';
import type {
  AdmissionOperation,
  AdmissionRequest,
  AdmissionVerdict,
  AdmissionWebhook,
  ApiVersions,
  MutatingWebhook,
  ValidatingWebhook,
} from './declare.js';
import { createJsonPatch, type JsonPatchOperation } from './patch.js';

/** The Status an admission response carries when it refuses (metav1.Status, as kubectl prints it). */
export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
  details?: { causes: { field: string; message: string; reason?: string }[] };
}

/** The `response` of an admission.k8s.io/v1 AdmissionReview. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  /** Base64 of the JSON patch, with `patchType: 'JSONPatch'`; absent when the object is unchanged. */
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
}

/** An admission.k8s.io/v1 AdmissionReview as the webhook answers it. */
export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The `response` of an apiextensions.k8s.io/v1 ConversionReview. */
export interface ConversionResponse {
  uid: string;
  convertedObjects: KubeObject[];
  result: { status: 'Success' } | { status: 'Failure'; message: string };
}

/** An apiextensions.k8s.io/v1 ConversionReview as the webhook answers it. */
export interface ConversionReviewResponse {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'ConversionReview';
  response: ConversionResponse;
}

/** How one review ended, the `result` label of bosun_webhook_requests_total ('converted' for a ConversionReview answered Success). */
export type ReviewResult = 'allowed' | 'denied' | 'patched' | 'converted' | 'error' | 'timeout';

/** An answer to send and how it ended; `error` is what the declared function threw, for the log. */
export interface ReviewOutcome<R> {
  body: R;
  result: ReviewResult;
  error?: unknown;
}

/**
 * A review body the API server would never send (not JSON of the right apiVersion and kind, no uid): answered
 * with HTTP 400, which the API server treats as a failed call (the webhook's failurePolicy applies).
 */
export class WebhookRequestError extends bosunError('BOSUN_WEBHOOK_REQUEST') {
  override name = 'WebhookRequestError';
}

/**
 * The abort reason of a webhook function's signal when the webhook's time is up: the API server stops
 * waiting at `timeoutSeconds`, so the server answers just before that and the function's work is moot.
 */
export class WebhookTimeoutError extends bosunError('BOSUN_WEBHOOK_TIMEOUT') {
  override name = 'WebhookTimeoutError';
}

const OPERATIONS: readonly AdmissionOperation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The request of an AdmissionReview body, checked enough to answer it; throws WebhookRequestError. */
function admissionRequestOf(body: unknown, path: string): Record<string, unknown> & { uid: string } {
  const bad = (problem: string): never => {
    throw new WebhookRequestError(
      `${path}: ${problem}; the API server sends admission.k8s.io/v1 AdmissionReview (the configuration must list admissionReviewVersions: [v1])`,
    );
  };
  if (!isObject(body)) return bad('the body is not a JSON object');
  if (body.kind !== 'AdmissionReview') return bad(`kind is ${JSON.stringify(body.kind)}, not AdmissionReview`);
  if (body.apiVersion !== 'admission.k8s.io/v1') return bad(`apiVersion is ${JSON.stringify(body.apiVersion)}, not admission.k8s.io/v1`);
  const req = body.request;
  if (!isObject(req)) return bad('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') return bad('request.uid is missing');
  if (typeof req.operation !== 'string' || !OPERATIONS.includes(req.operation as AdmissionOperation))
    return bad(`request.operation is ${JSON.stringify(req.operation)}`);
  return req as Record<string, unknown> & { uid: string };
}

/** The AdmissionRequest a declared function sees, from the review's request. */
function toAdmissionRequest(req: Record<string, unknown> & { uid: string }, signal: AbortSignal): AdmissionRequest {
  const user = isObject(req.userInfo) ? req.userInfo : {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const obj = (v: unknown) => (isObject(v) ? (v as KubeObject) : undefined);
  return {
    uid: req.uid,
    operation: req.operation as AdmissionOperation,
    object: obj(req.object),
    oldObject: obj(req.oldObject),
    name: str(req.name),
    namespace: str(req.namespace),
    subResource: str(req.subResource),
    userInfo: {
      username: typeof user.username === 'string' ? user.username : '',
      ...(typeof user.uid === 'string' ? { uid: user.uid } : {}),
      ...(Array.isArray(user.groups) ? { groups: user.groups.filter((g): g is string => typeof g === 'string') } : {}),
    },
    dryRun: req.dryRun === true,
    signal,
  };
}

function admissionReview(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** The metav1.Status reason kubectl shows for a refusal's HTTP code. */
function reasonOf(code: number): string | undefined {
  return (
    {
      400: 'BadRequest',
      403: 'Forbidden',
      404: 'NotFound',
      409: 'Conflict',
      422: 'Invalid',
      429: 'TooManyRequests',
      500: 'InternalError',
      504: 'Timeout',
    } as Record<number, string>
  )[code];
}

/** The admission response for a verdict: a refusal carries a Status with the code, the message and the field as its cause. */
export function verdictResponse(uid: string, verdict: AdmissionVerdict): AdmissionResponse {
  const warnings = verdict.warnings?.length ? { warnings: [...verdict.warnings] } : {};
  if (verdict.allowed) return { uid, allowed: true, ...warnings };
  // The API server turns a code below 400 into 400: a refusal is never a success code.
  const code =
    verdict.code !== undefined && Number.isInteger(verdict.code) && verdict.code >= 400 && verdict.code <= 599 ? verdict.code : 403;
  const reason = reasonOf(code);
  const status: AdmissionStatus = { code, message: verdict.message, ...(reason ? { reason } : {}) };
  if (verdict.field)
    status.details = {
      causes: [{ field: verdict.field, message: verdict.message, reason: code === 422 ? 'FieldValueInvalid' : 'FieldValueForbidden' }],
    };
  return { uid, allowed: false, status, ...warnings };
}

/** Whether a declared function's return value is a verdict built by allow() or deny(). */
function isVerdict(v: unknown): v is AdmissionVerdict {
  if (!isObject(v)) return false;
  if (v.allowed === true) return true;
  return v.allowed === false && typeof v.message === 'string';
}

/** A short description of an object for messages: `<Kind> <namespace>/<name>` (or generateName on a CREATE). */
function describe(obj: KubeObject | undefined, req?: AdmissionRequest): string {
  const kind = obj?.kind ?? 'object';
  const ns = obj?.metadata?.namespace ?? req?.namespace;
  const name = obj?.metadata?.name ?? req?.name ?? (obj?.metadata?.generateName ? `${obj.metadata.generateName}*` : '<unnamed>');
  return `${kind} ${ns ? `${ns}/` : ''}${name}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs `fn` until it settles or `signal` aborts, whichever is first: a function that ignores its signal must
 * not keep the answer past the API server's deadline.
 */
async function untilAborted<T>(fn: () => T | Promise<T>, signal: AbortSignal): Promise<{ value: T } | { aborted: unknown }> {
  if (signal.aborted) return { aborted: signal.reason };
  let onAbort!: () => void;
  const aborted = new Promise<{ aborted: unknown }>((resolve) => {
    onAbort = () => resolve({ aborted: signal.reason });
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(fn)
        .then((value) => ({ value })),
      aborted,
    ]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * The answer when the declared function threw or ran out of time: what the webhook's failurePolicy says the
 * API server would do had the webhook not answered. 'Fail' refuses with the cause; 'Ignore' admits unchanged
 * with a warning, so a webhook declared "admit when I cannot judge" does so whether its dependency is down
 * (the function throws) or the whole server is.
 */
function failureResponse(webhook: AdmissionWebhook, uid: string, code: 500 | 504, cause: string): AdmissionResponse {
  if (webhook.failurePolicy === 'Ignore')
    return {
      uid,
      allowed: true,
      warnings: [`webhook ${webhook.name} could not judge this request (${cause}); admitted unchecked (failurePolicy Ignore)`],
    };
  return verdictResponse(uid, { allowed: false, code, message: cause });
}

/** Whether a mutation changed something the API server does not let a mutating webhook change. */
function forbiddenChange(patch: readonly JsonPatchOperation[]): string | undefined {
  for (const op of patch) {
    const path = op.path;
    if (path === '' || path === '/metadata' || path === '/apiVersion' || path === '/kind') return path || '/';
    if (path.startsWith('/metadata/') && !/^\/metadata\/(labels|annotations)(\/|$)/.test(path)) return path;
  }
  return undefined;
}

/** JSON pointer `/a/b~1c` as the dotted field name users write, `a.b/c`. */
function fieldOf(pointer: string): string {
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

/**
 * Answers one AdmissionReview for a validating or mutating webhook. `body` is the parsed request body
 * (throws WebhookRequestError when it is not an admission.k8s.io/v1 AdmissionReview); `signal` aborts when
 * the webhook's time is up, and the answer is then the failurePolicy's (see failureResponse) at once.
 * A mutation answers a base64 JSON patch, or no patch when the object came back unchanged.
 */
export async function reviewAdmission(
  webhook: AdmissionWebhook,
  body: unknown,
  signal: AbortSignal,
): Promise<ReviewOutcome<AdmissionReviewResponse>> {
  const raw = admissionRequestOf(body, webhook.path);
  const request = toAdmissionRequest(raw, signal);
  const uid = request.uid;
  const fail = (result: 'error' | 'timeout', code: 500 | 504, cause: string, error?: unknown): ReviewOutcome<AdmissionReviewResponse> => ({
    body: admissionReview(failureResponse(webhook, uid, code, cause)),
    result,
    error,
  });
  const timedOut = (reason: unknown) =>
    fail('timeout', 504, reason instanceof WebhookTimeoutError ? reason.message : `webhook ${webhook.name} aborted: ${messageOf(reason)}`);

  const target = request.object ?? request.oldObject;
  const expected = webhook.resource.group ? `${webhook.resource.group}/${webhook.resource.version}` : webhook.resource.version;
  if (target && (target.apiVersion !== expected || target.kind !== webhook.resource.kind))
    return fail(
      'error',
      500,
      `webhook ${webhook.name} serves ${webhook.resource.kind} ${expected} but was sent ${target.kind ?? '?'} ${target.apiVersion ?? '?'}: its configuration's rules or matchPolicy are wrong (regenerate it with bosun generate; matchPolicy must be Equivalent)`,
    );

  if (webhook.type === 'validating') return validate(webhook, request, fail, timedOut);
  return mutate(webhook, request, fail, timedOut);
}

type Fail = (result: 'error' | 'timeout', code: 500 | 504, cause: string, error?: unknown) => ReviewOutcome<AdmissionReviewResponse>;

async function validate(
  webhook: ValidatingWebhook,
  request: AdmissionRequest,
  fail: Fail,
  timedOut: (reason: unknown) => ReviewOutcome<AdmissionReviewResponse>,
): Promise<ReviewOutcome<AdmissionReviewResponse>> {
  let ran: { value: AdmissionVerdict } | { aborted: unknown };
  try {
    ran = await untilAborted(() => webhook.validate(request), request.signal);
  } catch (err) {
    return fail(
      'error',
      500,
      `webhook ${webhook.name} failed on ${describe(request.object ?? request.oldObject, request)}: ${messageOf(err)}`,
      err,
    );
  }
  if ('aborted' in ran) return timedOut(ran.aborted);
  const verdict = ran.value;
  if (!isVerdict(verdict))
    return fail(
      'error',
      500,
      `webhook ${webhook.name}: validate returned ${JSON.stringify(verdict) ?? String(verdict)}, not a verdict; return allow(...) or deny(message, { field })`,
    );
  return { body: admissionReview(verdictResponse(request.uid, verdict)), result: verdict.allowed ? 'allowed' : 'denied' };
}

async function mutate(
  webhook: MutatingWebhook,
  request: AdmissionRequest,
  fail: Fail,
  timedOut: (reason: unknown) => ReviewOutcome<AdmissionReviewResponse>,
): Promise<ReviewOutcome<AdmissionReviewResponse>> {
  const original = request.object;
  // A DELETE carries no object to change.
  if (!original) return { body: admissionReview({ uid: request.uid, allowed: true }), result: 'allowed' };
  let ran: { value: KubeObject } | { aborted: unknown };
  try {
    // The function may change its argument in place: the original stays intact for the diff.
    ran = await untilAborted(() => webhook.mutate(structuredClone(original), request), request.signal);
  } catch (err) {
    return fail('error', 500, `webhook ${webhook.name} failed on ${describe(original, request)}: ${messageOf(err)}`, err);
  }
  if ('aborted' in ran) return timedOut(ran.aborted);
  const mutated = ran.value;
  if (!isObject(mutated) || !isObject(mutated.metadata))
    return fail(
      'error',
      500,
      `webhook ${webhook.name}: mutate returned ${mutated === undefined ? 'undefined' : typeof mutated}, not an object with metadata; return the (changed) object`,
    );
  const patch = createJsonPatch(original, mutated);
  if (patch.length === 0) return { body: admissionReview({ uid: request.uid, allowed: true }), result: 'allowed' };
  const forbidden = forbiddenChange(patch);
  if (forbidden)
    return fail(
      'error',
      500,
      `webhook ${webhook.name}: mutate changed ${forbidden === '/' ? 'the whole object' : fieldOf(forbidden)} of ${describe(original, request)}; a mutating webhook may change spec, status, labels and annotations only`,
    );
  return {
    body: admissionReview({
      uid: request.uid,
      allowed: true,
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      patchType: 'JSONPatch',
    }),
    result: 'patched',
  };
}

/** The request of a ConversionReview body, checked enough to answer it; throws WebhookRequestError. */
function conversionRequestOf(body: unknown, path: string): { uid: string; desiredAPIVersion: string; objects: unknown[] } {
  const bad = (problem: string): never => {
    throw new WebhookRequestError(
      `${path}: ${problem}; the API server sends apiextensions.k8s.io/v1 ConversionReview (the CRD must list conversionReviewVersions: [v1])`,
    );
  };
  if (!isObject(body)) return bad('the body is not a JSON object');
  if (body.kind !== 'ConversionReview') return bad(`kind is ${JSON.stringify(body.kind)}, not ConversionReview`);
  if (body.apiVersion !== 'apiextensions.k8s.io/v1')
    return bad(`apiVersion is ${JSON.stringify(body.apiVersion)}, not apiextensions.k8s.io/v1`);
  const req = body.request;
  if (!isObject(req)) return bad('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') return bad('request.uid is missing');
  if (typeof req.desiredAPIVersion !== 'string') return bad('request.desiredAPIVersion is missing');
  if (!Array.isArray(req.objects)) return bad('request.objects is missing');
  return { uid: req.uid, desiredAPIVersion: req.desiredAPIVersion, objects: req.objects as unknown[] };
}

function conversionReview(response: ConversionResponse): ConversionReviewResponse {
  return { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response };
}

/**
 * Converts one object to `desired` through the hub (spoke → hub → spoke): the functions get copies and
 * convert spec and status; the result gets the desired apiVersion, the object's kind and its metadata as
 * sent, but for labels and annotations, taken from the function's output as the API server takes them (so a
 * field one version cannot hold survives the round trip in an annotation).
 */
export function convertObject(versions: ApiVersions, object: KubeObject, desired: string): KubeObject {
  const apiVersionOf = (v: CustomResource) => `${v.group}/${v.version}`;
  const served = () => versions.versions.map(apiVersionOf).join(', ');
  const what = describe(object);
  const from = versions.versions.find((v) => apiVersionOf(v) === object.apiVersion);
  if (!from)
    throw new ConversionFailure(
      `${what} has apiVersion ${object.apiVersion ?? '<none>'}, which ${versions.crdName} does not serve (served: ${served()})`,
    );
  const to = versions.versions.find((v) => apiVersionOf(v) === desired);
  if (!to) throw new ConversionFailure(`cannot convert ${what} to ${desired}: ${versions.crdName} does not serve it (served: ${served()})`);
  if (from === to) return object;
  const step = (fn: (o: KubeObject) => KubeObject, input: KubeObject, v: CustomResource, direction: string): KubeObject => {
    let out: unknown;
    try {
      out = fn(structuredClone(input));
    } catch (err) {
      throw new ConversionFailure(`converting ${what} ${direction} failed: ${messageOf(err)}`, { cause: err });
    }
    if (!isObject(out)) throw new ConversionFailure(`converting ${what} ${direction} returned ${typeof out}, not an object`);
    return { ...out, apiVersion: apiVersionOf(v), kind: object.kind, metadata: keptMetadata(object, input, out.metadata) } as KubeObject;
  };
  const spokeOf = (v: CustomResource) => versions.spokes.find((s) => s.resource === v)!;
  const hub =
    from === versions.hub
      ? object
      : step(
          (o) => spokeOf(from).toHub(o as never),
          object,
          versions.hub,
          `from ${object.apiVersion} to the hub ${apiVersionOf(versions.hub)}`,
        );
  if (to === versions.hub) return hub;
  return step((o) => spokeOf(to).fromHub(o as never), hub, to, `from the hub ${apiVersionOf(versions.hub)} to ${desired}`);
}

/**
 * The metadata of a converted object: the original's (the API server restores it anyway and refuses other
 * changes), with the labels and annotations of the conversion's output, or of its input when the output
 * has no metadata.
 */
function keptMetadata(original: KubeObject, input: KubeObject, outMeta: unknown): KubeObject['metadata'] {
  const { labels: _l, annotations: _a, ...rest } = structuredClone(original.metadata);
  const from = isObject(outMeta) ? (outMeta as KubeObject['metadata']) : input.metadata;
  return {
    ...rest,
    ...(from.labels !== undefined ? { labels: structuredClone(from.labels) } : {}),
    ...(from.annotations !== undefined ? { annotations: structuredClone(from.annotations) } : {}),
  };
}

/** Why one object could not be converted; carried into the ConversionReview's Failure message. */
class ConversionFailure extends Error {}

/**
 * Answers one ConversionReview: every object converted to `desiredAPIVersion` through the hub, in order, or a
 * Failure naming the first object and version that could not be (an unknown version, a throwing function).
 * Between objects it yields to the event loop, so `signal` (the conversion's deadline) can end a long list.
 */
export async function reviewConversion(
  versions: ApiVersions,
  body: unknown,
  signal: AbortSignal,
): Promise<ReviewOutcome<ConversionReviewResponse>> {
  const req = conversionRequestOf(body, versions.path);
  const failure = (message: string, result: 'error' | 'timeout', error?: unknown): ReviewOutcome<ConversionReviewResponse> => ({
    body: conversionReview({ uid: req.uid, convertedObjects: [], result: { status: 'Failure', message } }),
    result,
    error,
  });
  const converted: KubeObject[] = [];
  for (const [i, raw] of req.objects.entries()) {
    if (i > 0) await yieldToLoop();
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      return failure(
        `${reason instanceof WebhookTimeoutError ? reason.message : `aborted: ${messageOf(reason)}`} (${i} of ${req.objects.length} objects converted to ${req.desiredAPIVersion})`,
        'timeout',
      );
    }
    if (!isObject(raw) || !isObject(raw.metadata))
      return failure(`object ${i} of the ConversionReview is not a Kubernetes object with metadata`, 'error');
    try {
      converted.push(convertObject(versions, raw as KubeObject, req.desiredAPIVersion));
    } catch (err) {
      if (err instanceof ConversionFailure) return failure(`${versions.crdName}: ${err.message}`, 'error', err.cause ?? err);
      throw err;
    }
  }
  return { body: conversionReview({ uid: req.uid, convertedObjects: converted, result: { status: 'Success' } }), result: 'converted' };
}
