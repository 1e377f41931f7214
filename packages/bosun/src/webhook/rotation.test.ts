// The rotation decisions on certificates made for a fixed clock: renewal margins, the bundle kept across a CA
// rotation, what makes a serving certificate unusable, and the overlap before a new CA's certificate is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCa, issue } from './x509.js';
import {
  bundlePem,
  caProblem,
  judgeServing,
  MAX_BUNDLE_CAS,
  MAX_CHECK_MS,
  mergeBundle,
  nextCheckAt,
  parseBundle,
  renewalMarginMs,
  renewAt,
  serviceDnsNames,
  servingAction,
  servingValidityMs,
  signingCaOf,
} from './rotation.js';

const DAY = 24 * 3600 * 1000;
// Whole seconds: certificates carry no milliseconds.
const T0 = Date.parse('2030-01-01T00:00:00Z');
const names = serviceDnsNames({ namespace: 'ops', name: 'hooks' });

async function ca(now: number, ms: number) {
  const c = await createCa('CN=test-ca', { now, ms });
  return { ...c, x509: new X509Certificate(c.pair.cert) };
}

async function serving(signer: Awaited<ReturnType<typeof ca>>, now: number, ms: number, dns = names) {
  return issue(signer, 'CN=hooks', { server: { dns, ips: [] }, validity: { now, ms } });
}

void test('the renewal margin is a third of the lifetime, at most 30 days, unless renewBeforeMs says otherwise', async () => {
  const short = await ca(T0, 30 * DAY);
  // createCa backdates by an hour for clock skew: the lifetime is 30 days and an hour.
  assert.equal(renewalMarginMs(short.x509), (30 * DAY + 3600_000) / 3);
  const long = await ca(T0, 3650 * DAY);
  assert.equal(renewalMarginMs(long.x509), 30 * DAY);
  assert.equal(renewalMarginMs(long.x509, 5_000), 5_000);
  assert.equal(renewAt(long.x509, 5_000), T0 + 3650 * DAY - 5_000);
});

void test('a CA is replaced when missing, not yet or no longer valid, or within its renewal margin', async () => {
  const c = await ca(T0, 100_000);
  assert.equal(caProblem(c.x509, T0, 10_000), undefined);
  assert.equal(caProblem(c.x509, T0 + 89_000, 10_000), undefined);
  assert.match(caProblem(c.x509, T0 + 90_000, 10_000)!, /within its renewal margin/);
  assert.match(caProblem(c.x509, T0 + 100_000, 10_000)!, /not valid now/);
  assert.match(caProblem(c.x509, T0 - 2 * 3600_000, 10_000)!, /not valid now/);
  assert.match(caProblem(undefined, T0)!, /no CA/);
  const leaf = new X509Certificate((await serving(c, T0, 50_000)).cert);
  assert.match(caProblem(leaf, T0)!, /not a CA/);
});

void test('the signing CA is the one of the bundle whose key the Secret holds', async () => {
  const a = await ca(T0, DAY);
  const b = await ca(T0, DAY);
  const bundle = parseBundle(bundlePem([a.x509, b.x509]));
  assert.equal(bundle.length, 2);
  assert.equal(signingCaOf(bundle, b.pair.key)?.fingerprint256, b.x509.fingerprint256);
  assert.equal(signingCaOf(bundle, a.pair.key)?.fingerprint256, a.x509.fingerprint256);
  assert.equal(signingCaOf(bundle, (await ca(T0, DAY)).pair.key), undefined);
  assert.equal(signingCaOf(bundle, 'not a key'), undefined);
  assert.equal(signingCaOf(bundle, undefined), undefined);
});

void test('the bundle puts the signing CA first, keeps the previous CA while it is valid, and holds at most two', async () => {
  const old = await ca(T0, 10_000);
  const cur = await ca(T0, 100_000);
  const next = await ca(T0 + 5_000, 100_000);
  assert.deepEqual(
    mergeBundle(next.x509, [cur.x509, next.x509, old.x509], T0 + 6_000).map((c) => c.fingerprint256),
    [next.x509.fingerprint256, cur.x509.fingerprint256],
    'the newest first, the one it replaces next, the oldest displaced',
  );
  assert.equal(MAX_BUNDLE_CAS, 2);
  assert.deepEqual(
    mergeBundle(cur.x509, [old.x509], T0 + 10_000).map((c) => c.fingerprint256),
    [cur.x509.fingerprint256],
    'an expired CA is dropped',
  );
  assert.deepEqual(
    mergeBundle(cur.x509, [cur.x509], T0).map((c) => c.fingerprint256),
    [cur.x509.fingerprint256],
  );
  const leaf = new X509Certificate((await serving(cur, T0, 50_000)).cert);
  assert.equal(mergeBundle(cur.x509, [leaf], T0).length, 1, 'a leaf in ca.crt is not kept as a CA');
  assert.equal(parseBundle('garbage -----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----').length, 0);
});

void test('a serving certificate the clients accept is replaced only after the overlap; one they do not accept at once', async () => {
  const old = await ca(T0, 100 * DAY);
  const cur = await ca(T0, 100 * DAY);
  const check = { bundle: [cur.x509, old.x509], signing: cur.x509, dnsNames: names, now: T0, renewBeforeMs: 10_000 };

  const good = await serving(cur, T0, 60_000);
  assert.deepEqual(judgeServing(good.cert, good.key, check), { usable: true });
  const late = judgeServing(good.cert, good.key, { ...check, now: T0 + 50_000 });
  assert.deepEqual([late.usable, /renewal margin/.test(late.problem!)], [true, true]);

  const byOld = await serving(old, T0, 60_000);
  const verdict = judgeServing(byOld.cert, byOld.key, check);
  assert.deepEqual(verdict, { usable: true, problem: 'the serving certificate is signed by the previous CA' });
  assert.deepEqual(servingAction(verdict, undefined, 5_000, T0), { action: 'wait', at: undefined, reason: verdict.problem });
  assert.deepEqual(servingAction(verdict, T0, 5_000, T0 + 4_999), { action: 'wait', at: T0 + 5_000, reason: verdict.problem });
  assert.deepEqual(servingAction(verdict, T0, 5_000, T0 + 5_000), { action: 'issue', reason: verdict.problem });
  assert.deepEqual(servingAction(judgeServing(good.cert, good.key, check), undefined, 5_000, T0), { action: 'keep' });

  const unusable: [string, { cert: string; key: string } | undefined, RegExp, Partial<typeof check>?][] = [
    ['missing', undefined, /no serving certificate/],
    ['another key', { cert: good.cert, key: byOld.key }, /not the key/],
    ['other names', await serving(cur, T0, 60_000, ['hooks.other.svc']), /does not name hooks\.ops\.svc, hooks\.ops\.svc\.cluster\.local/],
    ['expired', good, /not valid now/, { now: T0 + 60_000 }],
    ['signed by a CA not in the bundle', await serving(await ca(T0, DAY), T0, 60_000), /no CA of ca\.crt/],
  ];
  for (const [what, pair, problem, at] of unusable) {
    const v = judgeServing(pair?.cert, pair?.key, { ...check, ...at });
    assert.equal(v.usable, false, what);
    assert.match(v.problem!, problem, what);
    assert.equal(servingAction(v, undefined, 5_000, T0).action, 'issue', `${what}: issued without waiting`);
  }
});

void test('a new serving certificate never outlives the CA that signs it', async () => {
  const c = await ca(T0, 100_000);
  assert.equal(servingValidityMs(c.x509, 60_000, T0), 60_000);
  assert.equal(servingValidityMs(c.x509, 60_000, T0 + 70_000), 30_000);
  assert.equal(servingValidityMs(c.x509, 60_000, T0 + 200_000), 0);
});

void test('the next check: the earliest renewal or expiry, the end of an overlap, never a time already past', async () => {
  const old = await ca(T0, 40_000);
  const cur = await ca(T0, 100_000);
  const leaf = new X509Certificate((await serving(cur, T0, 60_000)).cert);
  const base = { ca: cur.x509, serving: leaf, bundle: [cur.x509], now: T0, renewBeforeMs: 10_000, overlapMs: 1_000 };
  assert.equal(nextCheckAt({ ...base, action: { action: 'keep' } }), T0 + 50_000, 'the serving certificate is due first');
  assert.equal(nextCheckAt({ ...base, bundle: [cur.x509, old.x509], action: { action: 'keep' } }), T0 + 40_000, 'the old CA expires first');
  assert.equal(nextCheckAt({ ...base, serving: undefined, action: { action: 'keep' } }), T0 + 90_000);
  // Waiting out the overlap while the certificate is already due: the wait's end, not the past renewal time.
  const late = T0 + 55_000;
  const wait = { action: 'wait' as const, at: late + 1_000, reason: 'signed by the previous CA' };
  assert.equal(nextCheckAt({ ...base, now: late, action: wait }), late + 1_000);
  assert.equal(
    nextCheckAt({ ...base, now: late, action: { ...wait, at: undefined } }),
    late + 1_000,
    'an unconfirmed injection: retried after the overlap',
  );
  assert.ok(nextCheckAt({ ...base, now: T0 + 10 * 3600_000, action: { action: 'keep' } }) > T0 + 10 * 3600_000, 'never in the past');
  assert.equal(
    nextCheckAt({ ...base, ca: (await ca(T0, 1000 * DAY)).x509, serving: undefined, action: { action: 'keep' } }),
    T0 + MAX_CHECK_MS,
  );
});
