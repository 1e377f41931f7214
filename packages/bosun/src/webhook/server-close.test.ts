// How long close() takes against connections the API server's Go client holds: it dials TLS connections ahead
// of need and keeps them (and used ones) open up to 90 s, with no request on them. close() must not wait for
// the client to give them up; a manager's shutdown waits for it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issue } from '../tooling/cluster/pki.js';
import { validatingWebhook, allow } from './declare.js';
import { startWebhookServer } from './server.js';
import { WidgetV2, admissionReviewOf, widget } from './testdata/widgets.js';

let dir: string;
let ca: Awaited<ReturnType<typeof createCa>>;
let tlsFiles: { certFile: string; keyFile: string };

/** Answers after `delayMs`, so a request can be in flight when close() is called. */
const delayed = (delayMs: number) =>
  validatingWebhook({
    name: 'delayed.widgets.webhooks.example.com',
    resource: WidgetV2,
    failurePolicy: 'Fail',
    failurePolicyReason: 'test',
    validate: () => new Promise((r) => setTimeout(() => r(allow()), delayMs)),
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bosun-webhook-close-'));
  ca = await createCa('CN=webhook-close-test-ca');
  const pair = await issue(ca, 'CN=webhook', { server: { dns: ['localhost'], ips: ['127.0.0.1'] } });
  tlsFiles = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await writeFile(tlsFiles.certFile, pair.cert);
  await writeFile(tlsFiles.keyFile, pair.key);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Resolves how long `p` took, or rejects once `ms` pass. */
async function within(what: string, p: Promise<unknown>, ms: number): Promise<number> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - t0;
}

/**
 * A TLS connection with the handshake done on both sides, as the API server's client keeps in its pool: the
 * session ticket a TLS 1.3 server sends once it has the client's Finished says the server side is done too.
 */
function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.cert.toString('pem'), servername: 'localhost' });
    socket.once('session', () => resolve(socket));
    socket.once('error', reject);
  });
}

const closed = (socket: tls.TLSSocket) => new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));

void test('close() does not wait for a connection that never sent a request (a Go client dials ahead and keeps it 90 s)', async () => {
  const server = await startWebhookServer({ webhooks: [delayed(0)], addr: '127.0.0.1:0', tls: tlsFiles });
  const socket = await connectTls(server.port);
  socket.on('error', () => {});
  try {
    const ms = await within('close() with an idle TLS connection open', server.close(), 2_000);
    await within('the server closing that connection', closed(socket), 1_000);
    assert.ok(ms < 2_000);
  } finally {
    socket.destroy();
  }
});

void test('close() lets a request in flight answer, then closes its keep-alive connection without waiting for the client', async () => {
  const webhook = delayed(300);
  const server = await startWebhookServer({ webhooks: [webhook], addr: '127.0.0.1:0', tls: tlsFiles });
  const agent = new https.Agent({ keepAlive: true, ca: ca.cert.toString('pem'), servername: 'localhost' });
  try {
    const body = JSON.stringify(admissionReviewOf('CREATE', widget('w', { size: { value: 5, unit: 'cm' } })));
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: webhook.path,
          method: 'POST',
          agent,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    // The request is being judged (300 ms) when close() is called.
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    const res = await answer;
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.text) as { response: { allowed: boolean } }).response.allowed, true);
    await within('close() after the answer, the keep-alive connection still held by the client', closing, 2_000);
  } finally {
    agent.destroy();
  }
});
