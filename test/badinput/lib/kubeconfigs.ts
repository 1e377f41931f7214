// Kubeconfigs that reach the test cluster with the wrong credentials: a bogus token, a client
// certificate from another CA, an expired certificate from the cluster's own CA, a ServiceAccount token.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { parse, stringify } from 'yaml';
import type { TestEnv } from 'bosun/envtest';
import { createPki, type ClusterPki } from '../../../packages/bosun/src/tooling/cluster/pki.js';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

type User = Record<string, unknown>;
interface Kubeconfig {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: User }[];
  contexts: { name: string; context: Record<string, unknown> }[];
  'current-context': string;
}

/** Writes a copy of the cluster's admin kubeconfig with another user (and optionally another server) to `file`. */
export function kubeconfigWith(env: TestEnv, file: string, userName: string, user: User, server?: string): string {
  const k = parse(readFileSync(env.kubeconfig, 'utf8')) as Kubeconfig;
  k.users = [{ name: userName, user }];
  for (const c of k.contexts) c.context.user = userName;
  if (server) for (const c of k.clusters) c.cluster.server = server;
  writeFileSync(file, stringify(k));
  return file;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A client certificate and key issued by a CA the cluster does not trust. */
export async function foreignClientCert(dir: string): Promise<User> {
  const pki = await createPki(dir, '10.0.0.1');
  return { 'client-certificate-data': b64(pki.admin.cert), 'client-key-data': b64(pki.admin.key) };
}

/** A system:masters client certificate from the cluster's own CA that expired yesterday. */
export async function expiredClientCert(env: TestEnv): Promise<User> {
  const pki = JSON.parse(readFileSync(join(env.dir, 'pki', 'pki.json'), 'utf8')) as ClusterPki;
  const caCert = new x509.X509Certificate(pki.ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pki.ca.key)[0]!, ALG, false, ['sign']);
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const day = 24 * 3600 * 1000;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0badc0de',
    subject: 'CN=bosun-expired, O=system:masters',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 2 * day),
    notAfter: new Date(Date.now() - day),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false)],
  });
  const key = x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { 'client-certificate-data': b64(cert.toString('pem')), 'client-key-data': b64(key) };
}

/** Creates a ServiceAccount and returns a kubeconfig user holding a 1-hour token for it. */
export async function serviceAccountUser(env: TestEnv, ns: string, name: string): Promise<User> {
  await env.kubectlOk(['create', 'serviceaccount', '-n', ns, name]);
  const token = (await env.kubectlOk(['create', 'token', '-n', ns, name, '--duration', '1h'])).trim();
  return { token };
}

/** A loopback TCP port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}
