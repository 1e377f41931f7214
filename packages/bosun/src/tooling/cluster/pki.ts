import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A PEM certificate with its PEM private key. */
export interface CertPair {
  cert: string;
  key: string;
}

/** Every credential a local control plane needs, as PEM files under `<dir>/pki`. */
export interface ClusterPki {
  dir: string;
  ca: CertPair;
  apiserver: CertPair;
  admin: CertPair;
  controllerManager: CertPair;
  scheduler: CertPair;
  kwok: CertPair;
  /** Service-account token signing key (private, PEM) and its public half. */
  serviceAccount: { key: string; pub: string };
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function exportPub(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

function serial(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** A CA that can sign: its certificate and private key. */
export interface SigningCa {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

/** When an issued certificate is valid: from an hour before `now` (clock skew between processes) for `ms`. */
export interface Validity {
  /** Epoch ms; default the current time. */
  now?: number;
  /** Lifetime in ms; default one year for a leaf, ten for a CA. */
  ms?: number;
}

/** Creates a self-signed CA (path length 0: it signs leaves only). */
export async function createCa(subject = 'CN=bosun-local-ca', validity: Validity = {}): Promise<SigningCa & { pair: CertPair }> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = validity.now ?? Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + (validity.ms ?? 10 * YEAR_MS)),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey, pair: { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) } };
}

/** Reads back a CA `createCa` made (its PEM certificate and key), to sign more leaves with it. */
export async function loadCa(pair: CertPair): Promise<SigningCa> {
  const der = x509.PemConverter.decodeFirst(pair.key);
  const privateKey = await crypto.subtle.importKey('pkcs8', der, { name: ALG.name, namedCurve: ALG.namedCurve }, true, ['sign']);
  return { cert: new x509.X509Certificate(pair.cert), privateKey };
}

/** Issues a leaf certificate signed by `ca`: a serving certificate for the given names and/or a client certificate. */
export async function issue(
  ca: SigningCa,
  subject: string,
  opts: { server?: { dns: string[]; ips: string[] }; client?: boolean; validity?: Validity },
): Promise<CertPair> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const usages: string[] = [];
  if (opts.server) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.client) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
  ];
  if (opts.server) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...opts.server.dns.map((value) => ({ type: 'dns' as const, value })),
        ...opts.server.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
    );
  }
  const now = opts.validity?.now ?? Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + (opts.validity?.ms ?? YEAR_MS)),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions,
  });
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** The file names under `pki/` for each credential, so processes and kubeconfigs can point at them. */
export const PKI_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  apiserverCert: 'apiserver.crt',
  apiserverKey: 'apiserver.key',
  saKey: 'sa.key',
  saPub: 'sa.pub',
} as const;

/**
 * Creates a fresh CA and the certificates the control plane needs: the API server's serving
 * certificate (loopback and in-cluster names), client certificates for the admin, the
 * controller-manager, the scheduler and kwok, and the service-account signing key.
 */
export async function createPki(dir: string, serviceIp: string): Promise<ClusterPki> {
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, { recursive: true, mode: 0o700 });
  const ca = await createCa();
  const [apiserver, admin, controllerManager, scheduler, kwok] = await Promise.all([
    issue(ca, 'CN=kube-apiserver', {
      server: {
        dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
        ips: ['127.0.0.1', serviceIp],
      },
    }),
    issue(ca, 'CN=bosun-admin, O=system:masters', { client: true }),
    issue(ca, 'CN=system:kube-controller-manager', { client: true }),
    issue(ca, 'CN=system:kube-scheduler', { client: true }),
    // kwok acts for every fake Node and Pod status; it needs cluster-wide writes, as a kubelet fleet would.
    issue(ca, 'CN=kwok, O=system:masters', { client: true }),
  ]);
  const saKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pki: ClusterPki = {
    dir: pkiDir,
    ca: ca.pair,
    apiserver: apiserver!,
    admin: admin!,
    controllerManager: controllerManager!,
    scheduler: scheduler!,
    kwok: kwok!,
    serviceAccount: { key: await exportKey(saKeys.privateKey), pub: await exportPub(saKeys.publicKey) },
  };
  const files: Record<string, string> = {
    [PKI_FILES.caCert]: pki.ca.cert,
    [PKI_FILES.caKey]: pki.ca.key,
    [PKI_FILES.apiserverCert]: pki.apiserver.cert,
    [PKI_FILES.apiserverKey]: pki.apiserver.key,
    [PKI_FILES.saKey]: pki.serviceAccount.key,
    [PKI_FILES.saPub]: pki.serviceAccount.pub,
  };
  await Promise.all(Object.entries(files).map(([name, body]) => writeFile(join(pkiDir, name), body, { mode: 0o600 })));
  await writeFile(join(pkiDir, 'pki.json'), JSON.stringify(pki), { mode: 0o600 });
  return pki;
}

/** Reads back the credentials `createPki` wrote, or undefined when the directory has none yet. */
export async function loadPki(dir: string): Promise<ClusterPki | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'pki', 'pki.json'), 'utf8')) as ClusterPki;
  } catch {
    return undefined;
  }
}
