// The small part of X.509 both the runtime (the webhook certificate rotator) and the tooling (the local control
// plane, local webhook certificates) need: a self-signed CA and leaves it signs, ECDSA P-256 throughout.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

/** The key algorithm of every key and signature bosun makes. */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A PEM certificate with its PEM private key. */
export interface CertPair {
  cert: string;
  key: string;
}

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

const YEAR_MS = 365 * 24 * 3600 * 1000;
const SKEW_MS = 3600_000;

/** A private key as PEM (PKCS #8). */
export async function exportPrivateKey(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

/** Creates a self-signed CA (path length 0: it signs leaves only). */
export async function createCa(subject = 'CN=bosun-local-ca', validity: Validity = {}): Promise<SigningCa & { pair: CertPair }> {
  const keys = (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = validity.now ?? Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: subject,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + (validity.ms ?? 10 * YEAR_MS)),
    signingAlgorithm: KEY_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey, pair: { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) } };
}

/** Reads back a CA `createCa` made (its PEM certificate and key), to sign more leaves with it. */
export async function loadCa(pair: CertPair): Promise<SigningCa> {
  const der = x509.PemConverter.decodeFirst(pair.key);
  const privateKey = await crypto.subtle.importKey('pkcs8', der, { name: KEY_ALGORITHM.name, namedCurve: KEY_ALGORITHM.namedCurve }, true, [
    'sign',
  ]);
  return { cert: new x509.X509Certificate(pair.cert), privateKey };
}

/** Issues a leaf certificate signed by `ca`: a serving certificate for the given names and/or a client certificate. */
export async function issue(
  ca: SigningCa,
  subject: string,
  opts: { server?: { dns: string[]; ips: string[] }; client?: boolean; validity?: Validity },
): Promise<CertPair> {
  const keys = (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
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
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + (opts.validity?.ms ?? YEAR_MS)),
    signingAlgorithm: KEY_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions,
  });
  return { cert: cert.toString('pem'), key: await exportPrivateKey(keys.privateKey) };
}
