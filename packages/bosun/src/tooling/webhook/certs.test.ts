import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ensureWebhookCerts, type WebhookCerts } from './certs.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'bosun-webhook-certs-'));
  dirs.push(d);
  return d;
}

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function contents(c: WebhookCerts): Promise<string[]> {
  return Promise.all([c.certFile, c.keyFile, c.caFile].map((f) => readFile(f, 'utf8')));
}

/** A TLS handshake and one request to a server using the files, trusting only ca.crt, at the given host. */
async function handshake(c: WebhookCerts, host: string): Promise<number> {
  const server = createServer({ cert: await readFile(c.certFile), key: await readFile(c.keyFile) }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const ca = Buffer.from(c.caBundle, 'base64');
    return await new Promise<number>((res, rej) => {
      const req = request({ host: '127.0.0.1', servername: host === '127.0.0.1' ? undefined : host, port, ca, path: '/' }, (r) => {
        r.resume();
        res(r.statusCode ?? 0);
      });
      req.on('error', rej);
      req.end();
    });
  } finally {
    server.close();
  }
}

void test('the certificates serve TLS for 127.0.0.1 and localhost to a client trusting only the caBundle', async () => {
  const c = await ensureWebhookCerts(await tempDir());
  assert.equal(c.renewed, 'all');
  assert.equal(await handshake(c, '127.0.0.1'), 200);
  assert.equal(await handshake(c, 'localhost'), 200);
  assert.equal(Buffer.from(c.caBundle, 'base64').toString(), await readFile(c.caFile, 'utf8'));
  assert.ok(new X509Certificate(await readFile(c.caFile)).ca);
});

void test('valid certificates are reused as they are, byte for byte', async () => {
  const dir = await tempDir();
  const first = await ensureWebhookCerts(dir, { now: () => T0, servingValidityMs: 10 * DAY });
  const again = await ensureWebhookCerts(dir, { now: () => T0 + 5 * DAY, servingValidityMs: 10 * DAY });
  assert.equal(again.renewed, 'none');
  assert.deepEqual(await contents(again), await contents(first));
  assert.equal(again.notAfter.getTime(), first.notAfter.getTime());
});

void test('a serving certificate within the renewal margin is renewed under the same CA', async () => {
  const dir = await tempDir();
  const opts = { servingValidityMs: 10 * DAY, renewBeforeMs: 2 * DAY };
  const first = await ensureWebhookCerts(dir, { ...opts, now: () => T0 });
  const [cert0, key0, ca0] = await contents(first);
  // 1 day before expiry is inside the 2-day margin.
  const later = await ensureWebhookCerts(dir, { ...opts, now: () => T0 + 9 * DAY });
  const [cert1, key1, ca1] = await contents(later);
  assert.equal(later.renewed, 'serving');
  assert.notEqual(cert1, cert0);
  assert.notEqual(key1, key0);
  assert.equal(ca1, ca0);
  assert.equal(later.caBundle, first.caBundle);
  assert.ok(later.notAfter.getTime() > T0 + 18 * DAY);
  assert.ok(new X509Certificate(cert1!).verify(new X509Certificate(ca1!).publicKey));
});

void test('an expired CA is replaced together with the serving certificate', async () => {
  const dir = await tempDir();
  const first = await ensureWebhookCerts(dir, { now: () => T0, caValidityMs: 20 * DAY, servingValidityMs: 10 * DAY });
  const later = await ensureWebhookCerts(dir, { now: () => T0 + 30 * DAY, caValidityMs: 20 * DAY, servingValidityMs: 10 * DAY });
  assert.equal(later.renewed, 'all');
  assert.notEqual(later.caBundle, first.caBundle);
  const [cert, , ca] = await contents(later);
  assert.ok(new X509Certificate(cert!).verify(new X509Certificate(ca!).publicKey));
});

void test('a serving certificate that does not fit (corrupt, foreign key, another CA) is replaced', async () => {
  const dir = await tempDir();
  const base = await ensureWebhookCerts(dir);
  await writeFile(base.certFile, 'not a certificate');
  const fixedCorrupt = await ensureWebhookCerts(dir);
  assert.equal(fixedCorrupt.renewed, 'serving');
  assert.equal(await handshake(fixedCorrupt, '127.0.0.1'), 200);

  // A key that is not the certificate's: TLS would fail to start.
  const other = await ensureWebhookCerts(await tempDir());
  await writeFile(base.keyFile, await readFile(other.keyFile));
  const fixedKey = await ensureWebhookCerts(dir);
  assert.equal(fixedKey.renewed, 'serving');
  assert.equal(await handshake(fixedKey, 'localhost'), 200);

  // A serving pair from another CA: the API server, trusting this CA, would refuse it.
  await writeFile(base.certFile, await readFile(other.certFile));
  await writeFile(base.keyFile, await readFile(other.keyFile));
  const fixedCa = await ensureWebhookCerts(dir);
  assert.equal(fixedCa.renewed, 'serving');
  assert.equal(fixedCa.caBundle, base.caBundle);
  assert.equal(await handshake(fixedCa, '127.0.0.1'), 200);
});

void test('parallel callers on one directory agree on one CA', async () => {
  const dir = await tempDir();
  const results = await Promise.all([ensureWebhookCerts(dir), ensureWebhookCerts(dir), ensureWebhookCerts(dir)]);
  assert.equal(new Set(results.map((r) => r.caBundle)).size, 1);
  assert.deepEqual(results.map((r) => r.renewed).sort(), ['all', 'none', 'none']);
  assert.equal(await handshake(results[0]!, '127.0.0.1'), 200);
});
