// The webhook server over real HTTPS on loopback, with a throwaway CA: what the API server's calls get.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issue, type CertPair } from '../tooling/cluster/pki.js';
import { eventually } from '../tooling/envtest/testenv.js';
import { X509Certificate } from 'node:crypto';
import { Metrics } from '../telemetry/metrics.js';
import { createLogger } from '../telemetry/logger.js';
import { validatingWebhook } from './declare.js';
import { applyJsonPatch, type JsonPatchOperation } from './patch.js';
import { startWebhookServer, WebhookCertificateError, WebhookListenError, type WebhookServer } from './server.js';
import {
  WidgetV2,
  admissionReviewOf,
  conversionReviewOf,
  defaultsWebhook,
  sizeWebhook,
  widget,
  widgetVersions,
  type Widget2,
} from './testdata/widgets.js';

let dir: string;
let ca: Awaited<ReturnType<typeof createCa>>;
let certFile: string;
let keyFile: string;
let server: WebhookServer;
const metrics = new Metrics({ processMetrics: false });
const logged: { level: string; msg: string; [k: string]: unknown }[] = [];
const logger = createLogger({
  level: 'debug',
  destination: { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[0]) },
});

const serving = () => issue(ca, 'CN=webhook', { server: { dns: ['localhost'], ips: ['127.0.0.1'] } });
async function writePair(pair: CertPair, files = { certFile, keyFile }): Promise<void> {
  await writeFile(files.certFile, pair.cert);
  await writeFile(files.keyFile, pair.key);
}

let seenSignal: AbortSignal | undefined;
const slow = validatingWebhook({
  name: 'slow.widgets.webhooks.example.com',
  resource: WidgetV2,
  failurePolicy: 'Fail',
  failurePolicyReason: 'test',
  timeoutSeconds: 2,
  validate: (req) => {
    seenSignal = req.signal;
    return new Promise(() => {});
  },
});
const throwing = validatingWebhook({
  name: 'throws.widgets.webhooks.example.com',
  resource: WidgetV2,
  failurePolicy: 'Fail',
  failurePolicyReason: 'test',
  validate: () => {
    throw new Error('the booking service is down');
  },
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bosun-webhook-'));
  ca = await createCa('CN=webhook-test-ca');
  certFile = join(dir, 'tls.crt');
  keyFile = join(dir, 'tls.key');
  await writePair(await serving());
  server = await startWebhookServer({
    webhooks: [sizeWebhook, defaultsWebhook, slow, throwing],
    versions: [widgetVersions],
    addr: '127.0.0.1:0',
    tls: { certFile, keyFile },
    maxBodyBytes: 64 * 1024,
    metrics,
    logger,
  });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
}

/** Posts as the API server does: HTTPS verified against the CA, JSON in and out. */
function post(
  path: string,
  body: unknown,
  opts: { method?: string; contentType?: string; raw?: Buffer; chunked?: boolean } = {},
): Promise<Reply> {
  const payload = opts.raw ?? Buffer.from(body === undefined ? '' : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.url}${path}`,
      {
        method: opts.method ?? 'POST',
        ca: ca.pair.cert,
        agent: false,
        headers: { 'Content-Type': opts.contentType ?? 'application/json', ...(opts.chunked ? {} : { 'Content-Length': payload.length }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) as unknown });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.method === 'GET') req.end();
    else if (opts.chunked) {
      // Written in pieces without a length, as a client that streams its body.
      for (let i = 0; i < payload.length; i += 16 * 1024) req.write(payload.subarray(i, i + 16 * 1024));
      req.end();
    } else req.end(payload);
  });
}

type Review = {
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string; details?: unknown };
    patch?: string;
    warnings?: string[];
  };
};

async function counted(webhook: string, result: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric('bosun_webhook_requests_total')!.get();
  return m.values.find((v) => v.labels.webhook === webhook && v.labels.result === result)?.value ?? 0;
}

void test('an allowed object is answered allowed over HTTPS, with the uid and the warning', async () => {
  const before = await counted(sizeWebhook.name, 'allowed');
  const res = await post(sizeWebhook.path, admissionReviewOf('CREATE', widget('w', { size: { value: 10, unit: 'cm' } })));
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.deepEqual(res.json(), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'e911857d-c318-11e8-bbad-025000000001', allowed: true, warnings: ['spec.color is not set: the widget will be grey'] },
  });
  assert.equal(await counted(sizeWebhook.name, 'allowed'), before + 1);
});

void test('a denied object is answered with the code, the message and the field, and counted as denied', async () => {
  const before = await counted(sizeWebhook.name, 'denied');
  const res = await post(sizeWebhook.path, admissionReviewOf('CREATE', widget('w', { size: { value: 101, unit: 'cm' } })));
  const review = res.json() as Review;
  assert.equal(review.response.allowed, false);
  assert.equal(review.response.status!.code, 422);
  assert.match(review.response.status!.message, /spec\.size\.value 101 cm is larger than the line takes/);
  assert.deepEqual((review.response.status!.details as { causes: { field: string }[] }).causes[0]!.field, 'spec.size.value');
  assert.equal(await counted(sizeWebhook.name, 'denied'), before + 1);
});

void test("a mutation's patch, applied to the object sent, gives the mutated object", async () => {
  const sent = widget('w', { size: { value: 30, unit: 'mm' } });
  const review = (await post(defaultsWebhook.path, admissionReviewOf('CREATE', sent))).json() as Review & {
    response: { patchType: string };
  };
  assert.equal(review.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(review.response.patch!, 'base64').toString()) as JsonPatchOperation[];
  const stored: Widget2 = applyJsonPatch(sent, patch);
  assert.equal(stored.spec!.color, 'grey');
  assert.deepEqual(stored.metadata.labels, { 'webhooks.example.com/unit': 'mm' });
  assert.equal(await counted(defaultsWebhook.name, 'patched'), 1);
});

void test('conversion both ways over HTTPS: v1 → v2 and back gives the object sent', async () => {
  const v1 = {
    apiVersion: 'webhooks.example.com/v1',
    kind: 'Widget',
    metadata: { name: 'a', namespace: 'default', uid: 'u', resourceVersion: '3' },
    spec: { sizeCm: 7 },
  };
  const up = (await post(widgetVersions.path, conversionReviewOf('webhooks.example.com/v2', [v1]))).json() as {
    response: { convertedObjects: Widget2[]; result: { status: string } };
  };
  assert.equal(up.response.result.status, 'Success');
  assert.deepEqual(up.response.convertedObjects[0]!.spec, { size: { value: 7, unit: 'cm' } });
  const down = (await post(widgetVersions.path, conversionReviewOf('webhooks.example.com/v1', up.response.convertedObjects))).json() as {
    response: { convertedObjects: unknown[] };
  };
  assert.deepEqual(down.response.convertedObjects, [v1]);
  assert.equal(await counted(widgetVersions.crdName, 'converted'), 2);
});

void test('a function that never answers is answered before the API server gives up, and its signal is aborted', async () => {
  // timeoutSeconds 2: the answer is due at 1.5 s; the API server would stop waiting at 2 s. The 500 ms
  // between them is the margin a loaded machine has; the answer cannot come earlier than 1.5 s.
  const started = performance.now();
  const res = await post(slow.path, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })));
  const elapsed = performance.now() - started;
  const review = res.json() as Review;
  assert.equal(review.response.allowed, false);
  assert.equal(review.response.status!.code, 504);
  assert.match(review.response.status!.message, /webhook slow\.widgets\.webhooks\.example\.com timed out after 1\.5 s/);
  assert.ok(elapsed >= 1500 && elapsed < 2000, `answered after ${Math.round(elapsed)} ms, not within [1500, 2000)`);
  assert.equal(seenSignal?.aborted, true);
  assert.equal(await counted(slow.name, 'timeout'), 1);
});

void test("a request the API server gives up on (the connection closed) aborts the function's signal", async () => {
  let entered!: (signal: AbortSignal) => void;
  const running = new Promise<AbortSignal>((r) => (entered = r));
  const hanging = validatingWebhook({
    name: 'hangs.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    timeoutSeconds: 30,
    validate: (req) => {
      entered(req.signal);
      return new Promise(() => {});
    },
  });
  const own = await startWebhookServer({ webhooks: [hanging], addr: '127.0.0.1:0', tls: { certFile, keyFile } });
  try {
    const req = https.request(`${own.url}${hanging.path}`, {
      method: 'POST',
      ca: ca.pair.cert,
      agent: false,
      headers: { 'Content-Type': 'application/json' },
    });
    req.on('error', () => {});
    req.end(JSON.stringify(admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } }))));
    const signal = await running;
    assert.equal(signal.aborted, false);
    req.destroy();
    await eventually('the signal aborted', async () => (signal.aborted ? true : undefined), 10_000);
    assert.match((signal.reason as Error).message, /the API server closed the connection before the answer/);
  } finally {
    await own.close();
  }
});

void test('a body over maxBodyBytes is refused with 413, with or without a Content-Length', async () => {
  const big = admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' }, color: 'x'.repeat(100 * 1024) }));
  const declared = await post(sizeWebhook.path, big);
  assert.equal(declared.status, 413);
  assert.match(declared.text, /larger than 65536 bytes \(maxBodyBytes\)/);
  const streamed = await post(sizeWebhook.path, big, { chunked: true });
  assert.equal(streamed.status, 413);
  // The server is still there for the next request.
  assert.equal((await post(sizeWebhook.path, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })))).status, 200);
});

void test('a throwing function is a denial with its message, logged and counted, and the server goes on', async () => {
  const res = await post(throwing.path, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })));
  const review = res.json() as Review;
  assert.equal(review.response.allowed, false);
  assert.match(review.response.status!.message, /failed on Widget default\/w: the booking service is down/);
  assert.equal(await counted(throwing.name, 'error'), 1);
  const line = logged.find((l) => l.msg === 'webhook function failed' && l.webhook === throwing.name);
  assert.equal(line?.level, 'error');
  assert.match(JSON.stringify(line?.err), /the booking service is down/);
  assert.equal((await post(sizeWebhook.path, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })))).status, 200);
});

void test('what is not a review call: 404 for an unknown path, 405 for GET, 415 for another content type, 400 for a bad body', async () => {
  assert.equal((await post('/validate/nothing.here.example.com', {})).status, 404);
  const get = await post(sizeWebhook.path, undefined, { method: 'GET' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal((await post(sizeWebhook.path, {}, { contentType: 'text/plain' })).status, 415);
  const notJson = await post(sizeWebhook.path, undefined, { raw: Buffer.from('{not json') });
  assert.equal(notJson.status, 400);
  assert.match(notJson.text, /the body is not JSON/);
  const v1beta1 = await post(sizeWebhook.path, { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } });
  assert.equal(v1beta1.status, 400);
  assert.match(v1beta1.text, /admissionReviewVersions: \[v1\]/);
});

void test('the metrics have a series per webhook and result from the start, and the duration histogram', async () => {
  const text = await metrics.metricsText();
  assert.match(
    text,
    /bosun_webhook_requests_total\{webhook="size\.widgets\.webhooks\.example\.com",type="validating",result="timeout"\} \d/,
  );
  assert.match(text, /bosun_webhook_requests_total\{webhook="widgets\.webhooks\.example\.com",type="conversion",result="error"\} 0/);
  assert.match(text, /bosun_webhook_duration_seconds_count\{webhook="size\.widgets\.webhooks\.example\.com"\} [1-9]/);
});

/** The serial number of the certificate the server presents on a new connection. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: ca.pair.cert, servername: 'localhost' }, () => {
      const serial = socket.getPeerX509Certificate()!.serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}
const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

void test('a rotated certificate is served without a restart; a pair that does not match keeps the old one', async () => {
  const first = await servedSerial();
  const next = await serving();
  const other = await serving();
  // A key that does not match the certificate: the server logs it and keeps serving the previous pair.
  const warned = logged.length;
  await writeFile(certFile, next.cert);
  await writeFile(keyFile, other.key);
  await eventually('the mismatched pair is refused', async () =>
    logged.slice(warned).some((l) => l.msg === 'webhook certificate not reloaded; serving the previous one') ? true : undefined,
  );
  assert.equal(await servedSerial(), first);
  // The key swapped in by rename, as a Secret volume swaps its files.
  const tmpKey = join(dir, '.tls.key.new');
  await writeFile(tmpKey, next.key);
  await rename(tmpKey, keyFile);
  const want = serialOf(next.cert);
  await eventually('the rotated certificate is served', async () => ((await servedSerial()) === want ? true : undefined), 15_000);
  assert.notEqual(first, want);
  assert.ok(logged.some((l) => l.msg === 'webhook certificate reloaded'));
  // New connections verify against the CA and are answered.
  assert.equal((await post(sizeWebhook.path, admissionReviewOf('CREATE', widget('w', { size: { value: 1, unit: 'cm' } })))).status, 200);
});

void test('a missing certificate file fails the start, naming the field and the file', async () => {
  await assert.rejects(
    startWebhookServer({ addr: '127.0.0.1:0', tls: { certFile: join(dir, 'missing.crt'), keyFile } }),
    (err: unknown) =>
      err instanceof WebhookCertificateError && /tls\.certFile .*missing\.crt does not exist \(ENOENT\)\. Fix: /.test(err.message),
  );
});

void test('a certificate with the key of another fails the start', async () => {
  const files = { certFile: join(dir, 'a.crt'), keyFile: join(dir, 'b.key') };
  await writeFile(files.certFile, (await serving()).cert);
  await writeFile(files.keyFile, (await serving()).key);
  await assert.rejects(
    startWebhookServer({ addr: '127.0.0.1:0', tls: files }),
    (err: unknown) => err instanceof WebhookCertificateError && /are not a PEM certificate and its private key/.test(err.message),
  );
});

void test('an address in use fails the start with WebhookListenError naming the address and the fix', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await assert.rejects(
      startWebhookServer({ addr: `127.0.0.1:${port}`, tls: { certFile, keyFile } }),
      (err: unknown) =>
        err instanceof WebhookListenError && err.message.includes(`127.0.0.1:${port} (EADDRINUSE): the address is in use. Fix:`),
    );
  } finally {
    blocker.close();
  }
});
