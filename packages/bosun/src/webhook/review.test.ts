import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutatingWebhook, validatingWebhook, allow } from './declare.js';
import { applyJsonPatch, type JsonPatchOperation } from './patch.js';
import { reviewAdmission, reviewConversion, WebhookRequestError, WebhookTimeoutError, type AdmissionReviewResponse } from './review.js';
import {
  WidgetV2,
  admissionReviewOf,
  conversionReviewOf,
  defaultsWebhook,
  sizeWebhook,
  widget,
  widgetVersions,
  EXACT_SIZE,
  type Widget2,
} from './testdata/widgets.js';

const live = () => new AbortController().signal;
const UID = 'e911857d-c318-11e8-bbad-025000000001';

function patchOf(res: AdmissionReviewResponse): JsonPatchOperation[] {
  assert.equal(res.response.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(res.response.patch!, 'base64').toString('utf8')) as JsonPatchOperation[];
}

void test('an allowed object: the uid echoed, allowed, no status, no warnings unless the verdict has some', async () => {
  const ok = await reviewAdmission(
    sizeWebhook,
    admissionReviewOf('CREATE', widget('w', { size: { value: 10, unit: 'cm' }, color: 'red' })),
    live(),
  );
  assert.equal(ok.result, 'allowed');
  assert.deepEqual(ok.body, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: UID, allowed: true } });
  const warned = await reviewAdmission(sizeWebhook, admissionReviewOf('CREATE', widget('w', { size: { value: 10, unit: 'cm' } })), live());
  assert.equal(warned.result, 'allowed');
  assert.deepEqual(warned.body.response, { uid: UID, allowed: true, warnings: ['spec.color is not set: the widget will be grey'] });
});

void test('a denied object: a Status with the code, the message, its reason and the field as the cause', async () => {
  const out = await reviewAdmission(
    sizeWebhook,
    admissionReviewOf('UPDATE', widget('w', { size: { value: 150, unit: 'cm' } }), widget('w', { size: { value: 10, unit: 'cm' } })),
    live(),
  );
  assert.equal(out.result, 'denied');
  const message = 'spec.size.value 150 cm is larger than the line takes (100 cm); order a smaller widget';
  assert.deepEqual(out.body.response, {
    uid: UID,
    allowed: false,
    status: {
      code: 422,
      message,
      reason: 'Invalid',
      details: { causes: [{ field: 'spec.size.value', message, reason: 'FieldValueInvalid' }] },
    },
  });
});

void test('a denial without a code is 403 Forbidden; a code below 400 is not a refusal code and becomes 403', async () => {
  for (const code of [undefined, 200]) {
    const hook = validatingWebhook({
      name: 'no.widgets.webhooks.example.com',
      resource: WidgetV2,
      failurePolicy: 'Fail',
      failurePolicyReason: 'test',
      validate: () => ({ allowed: false, message: 'no widgets today', ...(code ? { code } : {}) }),
    });
    const out = await reviewAdmission(hook, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })), live());
    assert.deepEqual(out.body.response, {
      uid: UID,
      allowed: false,
      status: { code: 403, message: 'no widgets today', reason: 'Forbidden' },
    });
  }
});

const throwing = (failurePolicy: 'Fail' | 'Ignore') =>
  validatingWebhook({
    name: `throws-${failurePolicy.toLowerCase()}.widgets.webhooks.example.com`,
    resource: WidgetV2,
    failurePolicy,
    failurePolicyReason: 'test',
    validate: () => {
      throw new Error('the booking service is down');
    },
  });

void test("a throwing validate with failurePolicy Fail: denied 500 with the webhook, the object and the error's message", async () => {
  const out = await reviewAdmission(throwing('Fail'), admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })), live());
  assert.equal(out.result, 'error');
  assert.equal((out.error as Error).message, 'the booking service is down');
  assert.deepEqual(out.body.response, {
    uid: UID,
    allowed: false,
    status: {
      code: 500,
      reason: 'InternalError',
      message: 'webhook throws-fail.widgets.webhooks.example.com failed on Widget default/w: the booking service is down',
    },
  });
});

void test('a throwing validate with failurePolicy Ignore: admitted with a warning saying why it was not checked', async () => {
  const out = await reviewAdmission(
    throwing('Ignore'),
    admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })),
    live(),
  );
  assert.equal(out.result, 'error');
  assert.equal(out.body.response.allowed, true);
  assert.match(
    out.body.response.warnings![0]!,
    /could not judge this request \(.*the booking service is down\); admitted unchecked \(failurePolicy Ignore\)/,
  );
  assert.equal(out.body.response.patch, undefined);
});

void test('a validate that ignores its signal is answered when the signal aborts, and the function saw the abort', async () => {
  let seen: AbortSignal | undefined;
  const hook = validatingWebhook({
    name: 'slow.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    timeoutSeconds: 3,
    validate: (req) => {
      seen = req.signal;
      return new Promise(() => {});
    },
  });
  const ctl = new AbortController();
  const pending = reviewAdmission(hook, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })), ctl.signal);
  ctl.abort(new WebhookTimeoutError('webhook slow.widgets.webhooks.example.com timed out after 2.5 s (timeoutSeconds 3)'));
  const out = await pending;
  assert.equal(out.result, 'timeout');
  assert.ok(seen?.aborted);
  assert.deepEqual(out.body.response.status, {
    code: 504,
    reason: 'Timeout',
    message: 'webhook slow.widgets.webhooks.example.com timed out after 2.5 s (timeoutSeconds 3)',
  });
});

void test('a validate that returns something other than a verdict is an error naming allow() and deny()', async () => {
  const hook = validatingWebhook({
    name: 'sloppy.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    validate: () => undefined as never,
  });
  const out = await reviewAdmission(hook, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })), live());
  assert.equal(out.result, 'error');
  assert.match(
    out.body.response.status!.message,
    /validate returned undefined, not a verdict; return allow\(\.\.\.\) or deny\(message, \{ field \}\)/,
  );
});

void test('a DELETE is validated on the old object', async () => {
  let got: Widget2 | undefined;
  const hook = validatingWebhook({
    name: 'deletes.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    operations: ['DELETE'],
    validate: (req) => {
      got = req.oldObject;
      assert.equal(req.object, undefined);
      assert.equal(req.operation, 'DELETE');
      assert.deepEqual(req.userInfo, { username: 'admin', uid: '014fbff9a07c', groups: ['system:authenticated'] });
      return allow();
    },
  });
  const old = widget('w', { size: { value: 1, unit: 'cm' } });
  const out = await reviewAdmission(hook, admissionReviewOf('DELETE', null, old), live());
  assert.equal(out.result, 'allowed');
  assert.deepEqual(got, old);
});

void test('a mutation answers a base64 JSON patch that turns the object sent into the mutated one', async () => {
  const sent = widget('w', { size: { value: 5, unit: 'mm' } }, { labels: { team: 'a' } });
  const out = await reviewAdmission(defaultsWebhook, admissionReviewOf('CREATE', sent), live());
  assert.equal(out.result, 'patched');
  assert.equal(out.body.response.allowed, true);
  const stored = applyJsonPatch(sent, patchOf(out.body));
  assert.deepEqual(stored, {
    ...sent,
    metadata: { ...sent.metadata, labels: { team: 'a', 'webhooks.example.com/unit': 'mm' } },
    spec: { size: { value: 5, unit: 'mm' }, color: 'grey' },
  });
});

void test('a mutation that changes nothing answers no patch', async () => {
  const sent = widget('w', { size: { value: 5, unit: 'mm' }, color: 'red' }, { labels: { 'webhooks.example.com/unit': 'mm' } });
  const out = await reviewAdmission(defaultsWebhook, admissionReviewOf('CREATE', sent), live());
  assert.equal(out.result, 'allowed');
  assert.deepEqual(out.body.response, { uid: UID, allowed: true });
});

void test('a mutation of metadata other than labels and annotations is refused as the webhook error it is', async () => {
  const hook = mutatingWebhook({
    name: 'renames.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    mutate: (o) => ({ ...o, metadata: { ...o.metadata, name: 'other' } }),
  });
  const out = await reviewAdmission(hook, admissionReviewOf('CREATE', widget('w', { size: { value: 5, unit: 'mm' } })), live());
  assert.equal(out.result, 'error');
  assert.equal(out.body.response.allowed, false);
  assert.equal(out.body.response.patch, undefined);
  assert.match(
    out.body.response.status!.message,
    /mutate changed metadata\.name of Widget default\/w; a mutating webhook may change spec, status, labels and annotations only/,
  );
});

void test('a mutating webhook on DELETE admits without calling mutate (there is no object to change)', async () => {
  let called = false;
  const hook = mutatingWebhook({
    name: 'del.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    operations: ['DELETE'],
    mutate: (o) => ((called = true), o),
  });
  const out = await reviewAdmission(hook, admissionReviewOf('DELETE', null, widget('w', { size: { value: 5, unit: 'mm' } })), live());
  assert.deepEqual(out.body.response, { uid: UID, allowed: true });
  assert.equal(called, false);
});

void test('an object of another version than the webhook declares is an error naming the configuration', async () => {
  const v1 = { ...widget('w', { size: { value: 5, unit: 'mm' } }), apiVersion: 'webhooks.example.com/v1' };
  const out = await reviewAdmission(sizeWebhook, admissionReviewOf('CREATE', v1), live());
  assert.equal(out.result, 'error');
  assert.match(
    out.body.response.status!.message,
    /serves Widget webhooks\.example\.com\/v2 but was sent Widget webhooks\.example\.com\/v1.*matchPolicy must be Equivalent/,
  );
});

void test('a body that is not an admission.k8s.io/v1 AdmissionReview with a uid is a WebhookRequestError', async () => {
  const good = admissionReviewOf('CREATE', widget('w', { size: { value: 5, unit: 'mm' } })) as { request: Record<string, unknown> };
  for (const [body, pattern] of [
    [null, /not a JSON object/],
    [{ ...good, apiVersion: 'admission.k8s.io/v1beta1' }, /apiVersion is "admission.k8s.io\/v1beta1"/],
    [{ ...good, kind: 'ConversionReview' }, /kind is "ConversionReview"/],
    [{ ...good, request: { ...good.request, uid: undefined } }, /request\.uid is missing/],
  ] as const) {
    await assert.rejects(reviewAdmission(sizeWebhook, body, live()), (err: unknown) => {
      assert.ok(err instanceof WebhookRequestError);
      assert.match(err.message, pattern);
      assert.match(err.message, /^\/validate\/size\.widgets\.webhooks\.example\.com: /);
      return true;
    });
  }
});

const v1Widget = (name: string, sizeCm: number) => ({
  apiVersion: 'webhooks.example.com/v1',
  kind: 'Widget',
  metadata: {
    name,
    namespace: 'default',
    uid: `uid-${name}`,
    resourceVersion: '12',
    labels: { a: 'b' },
    annotations: { note: 'kept' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    creationTimestamp: '2026-01-01T00:00:00Z',
  },
  spec: { sizeCm, color: 'red' },
  status: { ready: true },
});

void test('conversion v1 → v2 through the hub: apiVersion set, spec converted, status and metadata kept exactly', async () => {
  const a = v1Widget('a', 12);
  const out = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v2', [a]), live());
  assert.equal(out.result, 'converted');
  assert.deepEqual(out.body, {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'ConversionReview',
    response: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      result: { status: 'Success' },
      convertedObjects: [
        {
          apiVersion: 'webhooks.example.com/v2',
          kind: 'Widget',
          metadata: a.metadata,
          spec: { size: { value: 12, unit: 'cm' }, color: 'red' },
          status: { ready: true },
        },
      ],
    },
  });
});

void test('conversion v2 → v1, and a list of mixed versions converted in order; one already at the version passes unchanged', async () => {
  const hub = { ...widget('h', { size: { value: 250, unit: 'mm' }, color: 'blue' }), status: { ready: false } };
  const already = v1Widget('x', 3);
  const out = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v1', [hub, already]), live());
  assert.equal(out.result, 'converted');
  assert.deepEqual(out.body.response.convertedObjects, [
    {
      apiVersion: 'webhooks.example.com/v1',
      kind: 'Widget',
      metadata: { ...hub.metadata, annotations: { [EXACT_SIZE]: '250mm' } },
      spec: { sizeCm: 25, color: 'blue' },
      status: { ready: false },
    },
    already,
  ]);
});

void test('v1 → v2 → v1 is the identity', async () => {
  const a = v1Widget('a', 40);
  const up = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v2', [a]), live());
  const down = await reviewConversion(
    widgetVersions,
    conversionReviewOf('webhooks.example.com/v1', up.body.response.convertedObjects),
    live(),
  );
  assert.deepEqual(down.body.response.convertedObjects, [a]);
});

void test('v2 → v1 → v2 is the identity: what v1 cannot hold travels in an annotation, which the conversion keeps', async () => {
  const hub = { ...widget('h', { size: { value: 253, unit: 'mm' } }, { labels: { a: 'b' } }), status: { ready: true } };
  const down = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v1', [hub]), live());
  assert.equal(down.body.response.convertedObjects[0]!.metadata.annotations![EXACT_SIZE], '253mm');
  const up = await reviewConversion(
    widgetVersions,
    conversionReviewOf('webhooks.example.com/v2', down.body.response.convertedObjects),
    live(),
  );
  assert.deepEqual(up.body.response.convertedObjects, [hub]);
});

void test('a conversion cannot change metadata but labels and annotations: the rest is restored from the object sent', async () => {
  const a = v1Widget('a', 5);
  const renaming = {
    ...widgetVersions,
    spokes: [
      { ...widgetVersions.spokes[0]!, toHub: (o: never) => ({ ...(o as object), metadata: { name: 'other', labels: { x: 'y' } } }) },
    ],
  } as typeof widgetVersions;
  const out = await reviewConversion(renaming, conversionReviewOf('webhooks.example.com/v2', [a]), live());
  const { labels: _labels, annotations: _annotations, ...rest } = a.metadata;
  assert.deepEqual(out.body.response.convertedObjects[0]!.metadata, { ...rest, labels: { x: 'y' } });
});

void test('a throwing conversion is a Failure naming the CRD, the object, the versions and the error; no objects are returned', async () => {
  const out = await reviewConversion(
    widgetVersions,
    conversionReviewOf('webhooks.example.com/v2', [v1Widget('ok', 1), v1Widget('bad', -4)]),
    live(),
  );
  assert.equal(out.result, 'error');
  assert.equal((out.error as Error).message, 'spec.sizeCm is negative (-4)');
  assert.deepEqual(out.body.response, {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    convertedObjects: [],
    result: {
      status: 'Failure',
      message:
        'widgets.webhooks.example.com: converting Widget default/bad from webhooks.example.com/v1 to the hub webhooks.example.com/v2 failed: spec.sizeCm is negative (-4)',
    },
  });
});

void test('an unknown version, of an object or the desired one, is a Failure listing the served versions', async () => {
  const v3 = { ...v1Widget('a', 1), apiVersion: 'webhooks.example.com/v3' };
  const unknownFrom = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v2', [v3]), live());
  assert.deepEqual(unknownFrom.body.response.result, {
    status: 'Failure',
    message:
      'widgets.webhooks.example.com: Widget default/a has apiVersion webhooks.example.com/v3, which widgets.webhooks.example.com does not serve (served: webhooks.example.com/v2, webhooks.example.com/v1)',
  });
  const unknownTo = await reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v9', [v1Widget('a', 1)]), live());
  assert.equal(unknownTo.result, 'error');
  assert.match(
    (unknownTo.body.response.result as { message: string }).message,
    /cannot convert Widget default\/a to webhooks\.example\.com\/v9: .* does not serve it/,
  );
});

void test('a conversion whose signal aborts between objects answers a Failure saying how far it got', async () => {
  const ctl = new AbortController();
  const objects = [v1Widget('a', 1), v1Widget('b', 2), v1Widget('c', 3)];
  const pending = reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v2', objects), ctl.signal);
  ctl.abort(new WebhookTimeoutError('conversion of widgets.webhooks.example.com timed out after 29.5 s'));
  const out = await pending;
  assert.equal(out.result, 'timeout');
  assert.deepEqual(out.body.response.result, {
    status: 'Failure',
    message: 'conversion of widgets.webhooks.example.com timed out after 29.5 s (1 of 3 objects converted to webhooks.example.com/v2)',
  });
});

void test('a body that is not an apiextensions.k8s.io/v1 ConversionReview is a WebhookRequestError', async () => {
  await assert.rejects(
    reviewConversion(widgetVersions, { apiVersion: 'apiextensions.k8s.io/v1beta1', kind: 'ConversionReview', request: {} }, live()),
    WebhookRequestError,
  );
  await assert.rejects(
    reviewConversion(widgetVersions, conversionReviewOf('webhooks.example.com/v2', 'x' as never), live()),
    /request\.objects is missing/,
  );
});
