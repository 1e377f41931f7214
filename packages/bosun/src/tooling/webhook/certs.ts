// The certificates a webhook server needs when the API server reaches it on loopback (`bosun run`, envtest):
// a CA of its own and a serving certificate for 127.0.0.1 and localhost, kept in a directory and reused across
// runs, so the caBundle registered with the API server stays the same until the CA itself is renewed.
import { createPrivateKey, X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertPair, SigningCa } from '../cluster/pki.js';
import { withFileLock } from '../cluster/lock.js';

/** The certificate issuer, loaded when a certificate is read or made: @peculiar/x509 costs an operator process about 9 MiB. */
const pki = () => import('../cluster/pki.js');

/** The files under the certificate directory, named as a Kubernetes TLS Secret names its keys. */
export const WEBHOOK_CERT_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key' } as const;

const DAY_MS = 24 * 3600 * 1000;

/** Options of `ensureWebhookCerts`. */
export interface WebhookCertOptions {
  /** The current time in epoch ms (a fake clock in tests). */
  now?: () => number;
  /** Lifetime of a new serving certificate (default 365 days). */
  servingValidityMs?: number;
  /** Lifetime of a new CA (default 10 years). */
  caValidityMs?: number;
  /** A certificate expiring within this is renewed (default 30 days, or a third of its lifetime when shorter). */
  renewBeforeMs?: number;
  /** Where a line goes while another process holds the directory's lock. */
  log?: (line: string) => void;
}

/** The certificate files of a local webhook server and what the API server must trust. */
export interface WebhookCerts {
  dir: string;
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The CA certificate, base64 of its PEM: the `caBundle` of every clientConfig pointing at the server. */
  caBundle: string;
  /** When the serving certificate expires. */
  notAfter: Date;
  /** What this call wrote: nothing (all reused), a new serving certificate, or a new CA and serving certificate. */
  renewed: 'none' | 'serving' | 'all';
}

/** The names a loopback webhook server is reached by. */
const SERVING_NAMES = { dns: ['localhost'], ips: ['127.0.0.1', '::1'] };

async function readPair(certFile: string, keyFile: string): Promise<CertPair | undefined> {
  try {
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
  } catch {
    return undefined;
  }
}

function renewBefore(cert: NodeX509, opts: WebhookCertOptions): number {
  const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
  return opts.renewBeforeMs ?? Math.min(30 * DAY_MS, lifetime / 3);
}

/** Whether `cert` is valid now and for longer than the renewal margin. */
function fresh(cert: NodeX509, now: number, opts: WebhookCertOptions): boolean {
  return Date.parse(cert.validFrom) <= now && Date.parse(cert.validTo) - renewBefore(cert, opts) > now;
}

/** The CA on disk, if it parses, its key matches and it is fresh. */
async function usableCa(pair: CertPair | undefined, now: number, opts: WebhookCertOptions): Promise<SigningCa | undefined> {
  if (!pair) return undefined;
  try {
    const cert = new NodeX509(pair.cert);
    if (!cert.ca || !fresh(cert, now, opts) || !cert.checkPrivateKey(createPrivateKey(pair.key))) return undefined;
    const { loadCa } = await pki();
    return await loadCa(pair);
  } catch {
    return undefined;
  }
}

/** Whether the serving pair on disk is signed by `ca`, names the loopback addresses, matches its key and is fresh. */
async function usableServing(
  pair: CertPair | undefined,
  ca: SigningCa,
  now: number,
  opts: WebhookCertOptions,
): Promise<NodeX509 | undefined> {
  if (!pair) return undefined;
  try {
    const cert = new NodeX509(pair.cert);
    const caCert = new NodeX509(ca.cert.toString('pem'));
    const names = cert.subjectAltName ?? '';
    const covers = [...SERVING_NAMES.dns.map((d) => `DNS:${d}`), 'IP Address:127.0.0.1'].every((n) => names.split(', ').includes(n));
    if (!covers || !cert.verify(caCert.publicKey) || !fresh(cert, now, opts) || !cert.checkPrivateKey(createPrivateKey(pair.key)))
      return undefined;
    return cert;
  } catch {
    return undefined;
  }
}

// A reader (the webhook server re-reads its files when they change) must never see half a file.
async function writeAtomic(file: string, body: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, body, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Returns the CA and serving certificate under `dir` (tls.crt, tls.key, ca.crt; ca.key beside them), creating
 * them when missing and renewing what has expired, is about to, or does not fit: a serving certificate not
 * signed by the CA, not naming 127.0.0.1 and localhost, or not matching its key. A fresh CA is kept when only
 * the serving certificate is renewed, so registrations made with its caBundle stay valid. Processes sharing
 * `dir` take turns (a lock file), so parallel test files agree on one CA.
 */
export async function ensureWebhookCerts(dir: string, opts: WebhookCertOptions = {}): Promise<WebhookCerts> {
  const files = {
    certFile: join(dir, WEBHOOK_CERT_FILES.cert),
    keyFile: join(dir, WEBHOOK_CERT_FILES.key),
    caFile: join(dir, WEBHOOK_CERT_FILES.ca),
    caKeyFile: join(dir, WEBHOOK_CERT_FILES.caKey),
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return withFileLock(join(dir, '.lock'), opts.log ?? (() => {}), async () => {
    const now = (opts.now ?? Date.now)();
    let renewed: WebhookCerts['renewed'] = 'none';
    let ca = await usableCa(await readPair(files.caFile, files.caKeyFile), now, opts);
    if (!ca) {
      const { createCa } = await pki();
      const created = await createCa('CN=bosun-webhook-ca', { now, ms: opts.caValidityMs });
      await writeAtomic(files.caKeyFile, created.pair.key);
      await writeAtomic(files.caFile, created.pair.cert);
      ca = created;
      renewed = 'all';
    }
    let serving = renewed === 'all' ? undefined : await usableServing(await readPair(files.certFile, files.keyFile), ca, now, opts);
    if (!serving) {
      const { issue } = await pki();
      const pair = await issue(ca, 'CN=bosun-webhook', { server: SERVING_NAMES, validity: { now, ms: opts.servingValidityMs } });
      // The key first: a server reloading on the certificate's change then finds the matching key already there.
      await writeAtomic(files.keyFile, pair.key);
      await writeAtomic(files.certFile, pair.cert);
      serving = new NodeX509(pair.cert);
      if (renewed === 'none') renewed = 'serving';
    }
    const caPem = await readFile(files.caFile, 'utf8');
    return {
      dir,
      certFile: files.certFile,
      keyFile: files.keyFile,
      caFile: files.caFile,
      caBundle: Buffer.from(caPem).toString('base64'),
      notAfter: new Date(serving.validTo),
      renewed,
    };
  });
}
