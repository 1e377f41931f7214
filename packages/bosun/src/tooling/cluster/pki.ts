import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { createCa, exportPrivateKey as exportKey, issue, KEY_ALGORITHM as ALG, type CertPair } from '../../webhook/x509.js';

export { createCa, issue, loadCa, type CertPair, type SigningCa, type Validity } from '../../webhook/x509.js';

const crypto = webcrypto as unknown as Crypto;

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

async function exportPub(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
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
