// The decisions of webhook certificate rotation, as pure functions of the certificates and the time: when a CA
// or a serving certificate is renewed, which CAs the caBundle carries, and when a serving certificate signed by
// a new CA may go into use (only once that CA has been in every caBundle for the overlap).
import { createPrivateKey, X509Certificate } from 'node:crypto';

const DAY_MS = 24 * 3600 * 1000;
/** A CA and the one before it: the bundle a rotation needs, and no CA retired longer than its own life. */
export const MAX_BUNDLE_CAS = 2;

/** The certificates of a PEM bundle, in order; blocks that do not parse are left out. */
export function parseBundle(pem: string | undefined): X509Certificate[] {
  const blocks = (pem ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const block of blocks) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // A corrupt block is dropped: the CAs that do parse still verify the serving certificate.
    }
  }
  return out;
}

/** The PEM text of a bundle. */
export function bundlePem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString().trim() + '\n').join('');
}

/** When a certificate starts and stops being valid, in epoch ms. */
export function validityOf(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** How long before its expiry a certificate is renewed: `renewBeforeMs`, or else a third of its lifetime, at most 30 days. */
export function renewalMarginMs(cert: X509Certificate, renewBeforeMs?: number): number {
  const { notBefore, notAfter } = validityOf(cert);
  return renewBeforeMs ?? Math.min(30 * DAY_MS, (notAfter - notBefore) / 3);
}

/** The time from which a certificate is due for renewal. */
export function renewAt(cert: X509Certificate, renewBeforeMs?: number): number {
  return validityOf(cert).notAfter - renewalMarginMs(cert, renewBeforeMs);
}

/** Whether `cert` is valid at `now`. */
export function validAt(cert: X509Certificate, now: number): boolean {
  const { notBefore, notAfter } = validityOf(cert);
  return notBefore <= now && now < notAfter;
}

/** Why a CA must be replaced (missing, not a CA, not yet or no longer valid, within its renewal margin), or undefined when it is fine. */
export function caProblem(ca: X509Certificate | undefined, now: number, renewBeforeMs?: number): string | undefined {
  if (!ca) return 'no CA with its key in the Secret';
  if (!ca.ca) return 'the CA certificate is not a CA';
  if (!validAt(ca, now)) return `the CA is not valid now (valid ${ca.validFrom} to ${ca.validTo})`;
  if (now >= renewAt(ca, renewBeforeMs)) return `the CA expires at ${ca.validTo}, within its renewal margin`;
  return undefined;
}

/** The CA of `bundle` whose private key is `keyPem`: the one that signs. */
export function signingCaOf(bundle: readonly X509Certificate[], keyPem: string | undefined): X509Certificate | undefined {
  if (!keyPem) return undefined;
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return undefined;
  }
  return bundle.find((c) => {
    try {
      return c.ca && c.checkPrivateKey(key);
    } catch {
      return false;
    }
  });
}

/**
 * The caBundle to inject: the signing CA first, then the other CAs of `previous` that are still valid and are
 * CAs, each once, at most MAX_BUNDLE_CAS. An old CA stays until it expires (or a second rotation displaces it), so a
 * replica still serving a certificate it signed is trusted until the end of that certificate's life.
 */
export function mergeBundle(signing: X509Certificate, previous: readonly X509Certificate[], now: number): X509Certificate[] {
  const out = [signing];
  for (const c of previous) {
    if (out.length >= MAX_BUNDLE_CAS) break;
    if (!c.ca || !validAt(c, now) || out.some((o) => o.fingerprint256 === c.fingerprint256)) continue;
    out.push(c);
  }
  return out;
}

/** The names a serving certificate for a Service answers to, as the API server dials it. */
export function serviceDnsNames(service: { namespace: string; name: string }): string[] {
  return [`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}.svc.cluster.local`];
}

/** What a serving certificate is checked against. */
export interface ServingCheck {
  /** The CAs the webhook clients trust (the caBundle). */
  bundle: readonly X509Certificate[];
  /** The CA new certificates are signed with. */
  signing: X509Certificate;
  dnsNames: readonly string[];
  now: number;
  renewBeforeMs?: number;
}

/** The verdict on a serving certificate: whether clients accept it now, and why it must be replaced if it must. */
export interface ServingVerdict {
  /** Clients trusting `bundle` accept it now: valid, names every DNS name, signed by a CA of the bundle, matching its key. */
  usable: boolean;
  /** Why it must be replaced; undefined when it is fine. */
  problem?: string;
}

function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** Judges the serving pair from the Secret (either may be absent). */
export function judgeServing(certPem: string | undefined, keyPem: string | undefined, check: ServingCheck): ServingVerdict {
  const [cert] = parseBundle(certPem);
  if (!cert || !keyPem) return { usable: false, problem: 'no serving certificate and key in the Secret' };
  let matches = false;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    matches = false;
  }
  if (!matches) return { usable: false, problem: 'tls.key is not the key of tls.crt' };
  const missing = check.dnsNames.filter((n) => cert.checkHost(n, { subject: 'never' }) === undefined);
  if (missing.length) return { usable: false, problem: `the serving certificate does not name ${missing.join(', ')}` };
  if (!validAt(cert, check.now))
    return { usable: false, problem: `the serving certificate is not valid now (valid ${cert.validFrom} to ${cert.validTo})` };
  if (!check.bundle.some((ca) => issuedBy(cert, ca)))
    return { usable: false, problem: 'the serving certificate is signed by no CA of ca.crt' };
  if (!issuedBy(cert, check.signing)) return { usable: true, problem: 'the serving certificate is signed by the previous CA' };
  if (check.now >= renewAt(cert, check.renewBeforeMs))
    return { usable: true, problem: `the serving certificate expires at ${cert.validTo}, within its renewal margin` };
  return { usable: true };
}

/** What to do with the serving certificate now. */
export type ServingAction =
  | { action: 'keep' }
  | { action: 'issue'; reason: string }
  /** Keep serving the current one until `at` (epoch ms; undefined: until the signing CA is in every caBundle). */
  | { action: 'wait'; at: number | undefined; reason: string };

/**
 * Whether to issue a new serving certificate now. One clients still accept is replaced only once the signing CA
 * has been in every caBundle for `overlapMs` (`trustedSince`: when this process saw it there), so no client meets
 * a certificate signed by a CA it does not trust yet; one they do not accept is replaced at once.
 */
export function servingAction(verdict: ServingVerdict, trustedSince: number | undefined, overlapMs: number, now: number): ServingAction {
  if (!verdict.problem) return { action: 'keep' };
  if (!verdict.usable) return { action: 'issue', reason: verdict.problem };
  if (trustedSince === undefined) return { action: 'wait', at: undefined, reason: verdict.problem };
  if (now < trustedSince + overlapMs) return { action: 'wait', at: trustedSince + overlapMs, reason: verdict.problem };
  return { action: 'issue', reason: verdict.problem };
}

/** The lifetime of a new serving certificate: `validityMs`, cut short so it never outlives the CA that signs it. */
export function servingValidityMs(signing: X509Certificate, validityMs: number, now: number): number {
  return Math.max(0, Math.min(validityMs, validityOf(signing).notAfter - now));
}

/** The longest the leader sleeps between checks, whatever the expiries say (timers, a clock that jumped). */
export const MAX_CHECK_MS = 3600_000;
/** The shortest wait for a change the leader cannot see coming (an injection not yet confirmed). */
export const MIN_CHECK_MS = 500;

/** When the leader next looks at the certificates, having done what `action` says at `now` (epoch ms). */
export function nextCheckAt(s: {
  ca: X509Certificate;
  serving: X509Certificate | undefined;
  bundle: readonly X509Certificate[];
  action: ServingAction;
  now: number;
  renewBeforeMs?: number;
  overlapMs: number;
}): number {
  // While an overlap runs the serving certificate may already be due: what is due is the overlap's end.
  if (s.action.action === 'wait') return Math.min(s.action.at ?? s.now + Math.max(MIN_CHECK_MS, s.overlapMs), s.now + MAX_CHECK_MS);
  const due = [renewAt(s.ca, s.renewBeforeMs), s.now + MAX_CHECK_MS];
  if (s.serving) due.push(renewAt(s.serving, s.renewBeforeMs));
  // The previous CA leaves the caBundle when it expires.
  for (const c of s.bundle.slice(1)) due.push(validityOf(c).notAfter);
  // A time already past would have the leader look again at once, and again: a certificate it cannot renew yet.
  return Math.max(Math.min(...due), s.now + MIN_CHECK_MS);
}
