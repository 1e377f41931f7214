// The FlightTicket upgrade from v1 to v2, end to end, on a control plane of its own (the shared test cluster's
// CRDs are never touched): the release before (the v1-only CRD of config/crd, tickets written with kubectl and
// 1,000 stored for the migration), the upgrade (the operator's own FlightTicketVersions and
// flightTicketWebhooks served by bosun's webhook server on loopback, the multi-version CRD toMultiVersionCrd
// builds), what a user sees after it, the server stopped, and the release that moves storage to v2 with
// migrateStorageVersion interrupted once and resumed. The booking service runs as a process of its own.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CustomResourceDefinition } from '../../packages/bosun/src/client/resources.js';
import { createLogger } from '../../packages/bosun/src/telemetry/logger.js';
import { Metrics } from '../../packages/bosun/src/telemetry/metrics.js';
import { eventually, type KubectlResult } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import { MigrationInterruptedError, migrateStorageVersion } from '../../packages/bosun/src/tooling/evolve/migrate.js';
import { toMultiVersionCrd } from '../../packages/bosun/src/tooling/generate/crd.js';
import { ensureWebhookCerts, type WebhookCerts } from '../../packages/bosun/src/tooling/webhook/certs.js';
import { registerWebhooks, unregisterWebhooks } from '../../packages/bosun/src/tooling/webhook/register.js';
import { defineVersions, type ApiVersions } from '../../packages/bosun/src/webhook/declare.js';
import { startWebhookServer, type WebhookServer } from '../../packages/bosun/src/webhook/server.js';
import { FlightTicketV2, FlightTicketVersions, V2_FIELDS_ANNOTATION, flightTicketWebhooks } from '../../operators/flightticket/index.js';
import { startFaultCluster, type FaultCluster } from '../fault/lib/cluster.js';
import {
  BOOKING_SECRET,
  bookingProcess,
  createTickets,
  installFlightTickets,
  ticketSpec,
  type BookingProcess,
} from '../fault/lib/flighttickets.js';

/** Stored v1 tickets the storage-version migration rewrites. */
const STORED = 1_000;
/** The migration's list page; the interruption comes after INTERRUPT_AFTER_PAGES of them. */
const PAGE_SIZE = 100;
const INTERRUPT_AFTER_PAGES = 3;
/** The tickets users write (admission webhooks apply here only). */
const NS = 'upgrade-tickets';
/** The 1,000 stored tickets: no operator, no booking, no admission webhook (the migration's writes are no-ops to judge). */
const STORED_NS = 'upgrade-stored';
const REGISTRATION = 'flightticket-upgrade';
const CRD = FlightTicketVersions.crdName;
const v1 = `flighttickets.v1.flights.com`;
const v2 = `flighttickets.v2.flights.com`;

/** The release after the storage change: the same versions and conversion, stored at v2. */
const StorageV2Versions = defineVersions(FlightTicketV2, { spokes: [...FlightTicketVersions.spokes], storage: FlightTicketV2 });

let cluster: FaultCluster;
let booking: BookingProcess;
let certs: WebhookCerts;
let server: WebhookServer | undefined;
let metrics: Metrics;
const logs: string[] = [];

const v1Doc = (name: string, spec: { from: string; to: string; number: number }) =>
  `apiVersion: flights.com/v1\nkind: FlightTicket\nmetadata:\n  name: ${name}\n  namespace: ${NS}\nspec:\n  from: ${JSON.stringify(spec.from)}\n  to: ${JSON.stringify(spec.to)}\n  number: ${spec.number}\n`;

const v2Doc = (name: string, from: string, to: string, namespace = NS) =>
  `apiVersion: flights.com/v2\nkind: FlightTicket\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n  route:\n    from: ${from}\n    to: ${to}\n  passengers:\n  - name: Grace Hopper\n`;

/** Runs kubectl and says how long it took. */
async function timed(args: string[], input?: string): Promise<KubectlResult & { ms: number }> {
  const t0 = performance.now();
  const r = await cluster.kubectl(args, input);
  return { ...r, ms: performance.now() - t0 };
}

/** Serves the operator's webhooks and `versions` on loopback, as the manager of that release would. */
async function serve(versions: ApiVersions): Promise<WebhookServer> {
  const webhooks = flightTicketWebhooks(
    { bookingUrl: booking.url, apiKeySecret: { namespace: NS, name: BOOKING_SECRET } },
    { kubeClient: cluster.client },
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      cb();
    },
  });
  return startWebhookServer({
    webhooks,
    versions: [versions],
    addr: '127.0.0.1:0',
    tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    logger: createLogger({ destination: sink, level: 'info' }),
    metrics,
  });
}

/** Applies the multi-version CRD of `versions` converting through `srv`, registers the admission webhooks for NS. */
async function upgradeTo(versions: ApiVersions, srv: WebhookServer): Promise<void> {
  const crd = toMultiVersionCrd(versions, { clientConfig: { url: `${srv.url}${versions.path}`, caBundle: certs.caBundle } });
  await cluster.kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(crd));
  await cluster.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD}`]);
  await registerWebhooks({
    client: cluster.client,
    name: REGISTRATION,
    baseUrl: srv.url,
    caBundle: certs.caBundle,
    webhooks: flightTicketWebhooks({ bookingUrl: booking.url, apiKeySecret: { namespace: NS, name: BOOKING_SECRET } }),
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
  });
}

/**
 * Stops the running release's webhook server, as a manager does on shutdown. Nothing is in flight (every kubectl
 * has returned), so close() has only connections to end: 5 s is generous; before close() ended them itself it
 * waited for the API server's client to drop its pooled connections, up to 90 s.
 */
async function stopServer(t: { diagnostic(s: string): void }): Promise<void> {
  const t0 = performance.now();
  await server!.close();
  server = undefined;
  const ms = performance.now() - t0;
  t.diagnostic(`webhook server closed in ${Math.round(ms)} ms`);
  assert.ok(ms < 5_000, `close() took ${Math.round(ms)} ms`);
}

/** Waits until the API server's admission chain calls the registered route check (a dry run of an unflown route refused). */
async function untilAdmissionInEffect(): Promise<void> {
  let last: KubectlResult | undefined;
  try {
    await eventually(
      'the route webhook in effect',
      async () => {
        last = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], v1Doc('probe', { from: 'ICN', to: 'XYZ', number: 1 }));
        return last.code !== 0 && last.stderr.includes('does not fly ICN→XYZ') ? true : undefined;
      },
      30_000,
      200,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; the last dry run: exit ${last?.code}, ${last?.stdout.trim()} ${last?.stderr.trim()}; server log: ${logs.slice(-5).join('\n')}`,
    );
  }
}

/** The apiVersion each stored FlightTicket of `namespace` is encoded at in etcd, by name (the API server stores custom resources as JSON). */
async function etcdVersions(namespace: string): Promise<Map<string, string>> {
  const prefix = `/registry/flights.com/flighttickets/${namespace}/`;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // The range end is the prefix with its last byte incremented ('/' + 1 = '0').
  const res = await fetch(`${cluster.etcdUrl}/v3/kv/range`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: b64(prefix), range_end: b64(`${prefix.slice(0, -1)}0`) }),
  });
  assert.equal(res.status, 200, `etcd range: ${await res.clone().text()}`);
  const body = (await res.json()) as { kvs?: { key: string; value: string }[] };
  const out = new Map<string, string>();
  for (const kv of body.kvs ?? []) {
    const key = Buffer.from(kv.key, 'base64').toString('utf8');
    const obj = JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as { apiVersion: string };
    out.set(key.slice(prefix.length), obj.apiVersion);
  }
  return out;
}

function countBy(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** bosun_webhook_requests_total of `webhook` and `result`, summed. */
async function requests(webhook: string, result?: string): Promise<number> {
  const m = await metrics.registry.getSingleMetricAsString('bosun_webhook_requests_total');
  let sum = 0;
  for (const line of m.split('\n')) {
    if (line.startsWith('#') || !line.includes(`webhook="${webhook}"`)) continue;
    if (result && !line.includes(`result="${result}"`)) continue;
    sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** The spec of `name` at `resource` as kubectl prints it (`-o jsonpath={.spec}`): text to compare byte for byte. */
async function specText(resource: string, name: string): Promise<string> {
  return cluster.kubectlOk(['get', resource, name, '-n', NS, '-o', 'jsonpath={.spec}']);
}

interface TicketJson {
  apiVersion: string;
  metadata: { annotations?: Record<string, string>; resourceVersion: string; generation: number };
  spec: Record<string, unknown>;
}

const getJson = async (resource: string, name: string) =>
  JSON.parse(await cluster.kubectlOk(['get', resource, name, '-n', NS, '-o', 'json'])) as TicketJson;

/** The v1 spec of the ticket created before the upgrade, as kubectl printed it then. */
let beforeSpec: string;

describe('FlightTicket v1 → v2 upgrade on a control plane of its own', () => {
  before(async () => {
    const t0 = performance.now();
    cluster = await startFaultCluster({ prefix: 'upgrade' });
    booking = bookingProcess({ dir: cluster.dir, faults: {} });
    await booking.start();
    metrics = new Metrics({ processMetrics: false });
    await cluster.namespace(NS);
    await cluster.namespace(STORED_NS);
    // The release before the upgrade: config/crd's FlightTicket, serving v1 alone (v2's schema in it, not served).
    await installFlightTickets(cluster, NS);
    const crd = await cluster.client.get(CustomResourceDefinition, undefined, CRD);
    assert.deepEqual(
      crd.spec?.versions.map((v) => [v.name, v.served]),
      [
        ['v1', true],
        ['v2', false],
      ],
      'config/crd serves FlightTicket at v1 alone',
    );
    await cluster.kubectlOk(['apply', '-f', '-'], v1Doc('before', { from: 'ICN', to: 'NRT', number: 3 }));
    beforeSpec = await specText(v1, 'before');
    const t1 = performance.now();
    const names = Array.from({ length: STORED }, (_, i) => `stored-${String(i).padStart(4, '0')}`);
    await createTickets(cluster.client, STORED_NS, names, (n) => ticketSpec(Number(n.slice(7))), 32);
    const createdMs = performance.now() - t1;
    // The upgrade: the operator's release with v2 served beside v1 (storage still v1).
    certs = await ensureWebhookCerts(join(cluster.dir, 'webhook'));
    server = await serve(FlightTicketVersions);
    await upgradeTo(FlightTicketVersions, server);
    await untilAdmissionInEffect();
    process.stderr.write(
      `upgrade: control plane, booking service and ${STORED} stored v1 tickets ready in ${Math.round(performance.now() - t0)} ms (the ${STORED} created in ${Math.round(createdMs)} ms, ${Math.round((STORED * 1000) / createdMs)}/s)\n`,
    );
  });

  after(async () => {
    await server?.close();
    if (cluster) await unregisterWebhooks(cluster.client, REGISTRATION).catch(() => undefined);
    await booking?.stop();
    await cluster?.destroy();
  });

  test('a v1 ticket created before the upgrade reads as v2 and back as v1 unchanged; written at v2, read at v1 and again at v2', async (t) => {
    const asV2 = await getJson(v2, 'before');
    assert.equal(asV2.apiVersion, 'flights.com/v2');
    assert.deepEqual(asV2.spec, {
      route: { from: 'ICN', to: 'NRT' },
      passengers: [{ name: 'Passenger 1' }, { name: 'Passenger 2' }, { name: 'Passenger 3' }],
      cabin: 'economy',
    });
    assert.equal(asV2.metadata.annotations?.[V2_FIELDS_ANNOTATION], undefined);
    assert.equal(await specText(v1, 'before'), beforeSpec, 'the v1 spec, byte for byte, as before the upgrade');
    assert.equal(beforeSpec, '{"from":"ICN","number":3,"to":"NRT"}');

    // A v2 client names the first passenger.
    const patched = await timed([
      'patch',
      v2,
      'before',
      '-n',
      NS,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/spec/passengers/0/name', value: 'Ada Lovelace' }]),
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.equal(patched.stdout.trim(), 'flightticket.flights.com/before patched');
    const asV1 = await getJson(v1, 'before');
    assert.equal(asV1.apiVersion, 'flights.com/v1');
    assert.deepEqual(asV1.spec, { from: 'ICN', to: 'NRT', number: 3 });
    assert.equal(
      asV1.metadata.annotations?.[V2_FIELDS_ANNOTATION],
      '{"passengers":[{"name":"Ada Lovelace"},{"name":"Passenger 2"},{"name":"Passenger 3"}],"cabin":"economy"}',
    );
    const again = await getJson(v2, 'before');
    assert.deepEqual(again.spec.passengers, [{ name: 'Ada Lovelace' }, { name: 'Passenger 2' }, { name: 'Passenger 3' }]);
    assert.equal(again.metadata.annotations?.[V2_FIELDS_ANNOTATION], undefined, 'the annotation is v1 only');
    t.diagnostic(`v2 patch through conversion and admission: kubectl ${Math.round(patched.ms)} ms`);
  });

  test('kubectl apply of a ticket whose route the booking service does not fly is refused with the route webhook message', async (t) => {
    const r = await timed(['apply', '-f', '-'], v1Doc('nowhere', { from: 'ICN', to: 'XYZ', number: 2 }));
    t.diagnostic(`refused in ${Math.round(r.ms)} ms: ${r.stderr.trim()}`);
    assert.equal(r.code, 1);
    // A 422 with the field as its cause: kubectl prints the cause (field: message) after "The request is invalid".
    assert.equal(
      r.stderr.trim(),
      'The request is invalid: spec.route.to: spec.route.to (v1: spec.to): the booking service does not fly ICN→XYZ; ' +
        'routes from ICN: JFK, LAX, NRT. Fix: set spec.route.to to one of those',
    );
    assert.equal((await cluster.kubectl(['get', v1, 'nowhere', '-n', NS])).code, 1, 'nothing stored');
  });

  test('the mutating webhook normalises what a v1 client writes: lower-case airport codes stored upper case (kubectl get -o yaml)', async () => {
    const r = await cluster.kubectl(['apply', '-f', '-'], v1Doc('lower', { from: ' icn', to: 'nrt', number: 1 }));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'flightticket.flights.com/lower created');
    const yaml = await cluster.kubectlOk(['get', v1, 'lower', '-n', NS, '-o', 'yaml']);
    assert.match(yaml, /^spec:\n {2}from: ICN\n {2}number: 1\n {2}to: NRT\n/m);
    assert.deepEqual((parseYaml(yaml) as TicketJson).spec, { from: 'ICN', to: 'NRT', number: 1 });
  });

  test('the webhook server of the storage-v1 release stopped: conversion fails at once with the API server message, for reads at v2 and for every write', async (t) => {
    const port = server!.port;
    // kubectl's own cost on this machine, with nothing to convert (a v1 read of a ticket stored at v1).
    const baseline = await timed(['get', v1, 'before', '-n', NS, '-o', 'json']);
    await stopServer(t);
    // A refused connection is answered at once; a conversion webhook that hangs holds the request for the API
    // server's fixed 30 s. kubectl's baseline plus 5 s for scheduling on a loaded machine stays far below that.
    const bound = baseline.ms + 5_000;
    const converting = (from: string) =>
      `conversion webhook for flights.com/${from}, Kind=FlightTicket failed: Post "https://127.0.0.1:${port}/convert/${CRD}?timeout=30s": ` +
      `dial tcp 127.0.0.1:${port}: connect: connection refused`;

    const read = await timed(['get', v2, 'before', '-n', NS, '-o', 'json']);
    t.diagnostic(`v2 read: exit ${read.code} in ${Math.round(read.ms)} ms (bound ${Math.round(bound)}): ${read.stderr.trim()}`);
    const stillV1 = await timed(['get', v1, 'before', '-n', NS, '-o', 'jsonpath={.spec}']);
    t.diagnostic(`v1 read: exit ${stillV1.code} in ${Math.round(stillV1.ms)} ms`);
    const write = await timed(['apply', '-f', '-'], v1Doc('while-down', { from: 'ICN', to: 'NRT', number: 1 }));
    t.diagnostic(`v1 write: exit ${write.code} in ${Math.round(write.ms)} ms: ${write.stderr.trim()}`);
    const writeV2 = await timed(['apply', '-f', '-'], v2Doc('while-down-v2', 'ICN', 'NRT'));
    t.diagnostic(`v2 write: exit ${writeV2.code} in ${Math.round(writeV2.ms)} ms: ${writeV2.stderr.trim()}`);

    assert.equal(read.code, 1);
    assert.equal(read.stderr.trim(), `Error from server: ${converting('v1')}`);
    assert.equal(stillV1.code, 0, stillV1.stderr);
    assert.equal(stillV1.stdout, '{"from":"ICN","number":3,"to":"NRT"}', 'a read at the storage version converts nothing');
    // The admission webhooks are on v2: a v1 write is converted for them before any is called, so their
    // failurePolicy (Ignore) never comes into play; a v2 write is converted to v1 to be stored.
    // (The API server wraps the admission conversion's InternalError in another: the phrase is doubled.)
    assert.equal(write.code, 1);
    assert.equal(
      write.stderr.trim(),
      `Error from server (InternalError): error when creating "STDIN": Internal error occurred: Internal error occurred: ${converting('v1')}`,
    );
    assert.equal(writeV2.code, 1);
    assert.equal(writeV2.stderr.trim(), `Error from server: error when creating "STDIN": ${converting('v2')}`);
    for (const r of [read, write, writeV2]) assert.ok(r.ms < bound, `kubectl took ${Math.round(r.ms)} ms; bound ${Math.round(bound)} ms`);
  });

  test(`the storage version moves to v2: migrateStorageVersion over ${STORED} stored v1 tickets, interrupted once and resumed`, async (t) => {
    server = await serve(StorageV2Versions);
    await upgradeTo(StorageV2Versions, server);
    const crd = await cluster.client.get(CustomResourceDefinition, undefined, CRD);
    assert.deepEqual(crd.status?.storedVersions, ['v1', 'v2']);
    const atStart = countBy((await etcdVersions(STORED_NS)).values());
    assert.deepEqual(atStart, { 'flights.com/v1': STORED });

    const ctl = new AbortController();
    const t0 = performance.now();
    const conversions0 = await requests(CRD, 'converted');
    let err: unknown;
    try {
      await migrateStorageVersion({
        client: cluster.client,
        crd: CRD,
        pageSize: PAGE_SIZE,
        signal: ctl.signal,
        progress: (p) => {
          if (p.done >= PAGE_SIZE * INTERRUPT_AFTER_PAGES) ctl.abort();
        },
      });
    } catch (e) {
      err = e;
    }
    const firstMs = performance.now() - t0;
    assert.ok(err instanceof MigrationInterruptedError, `interrupted: ${String(err)}`);
    const interruptedAt = err.done;
    const mid = countBy((await etcdVersions(STORED_NS)).values());
    t.diagnostic(`interrupted after ${interruptedAt} objects (${Math.round(firstMs)} ms): etcd ${JSON.stringify(mid)}; ${err.message}`);
    assert.equal(interruptedAt, PAGE_SIZE * INTERRUPT_AFTER_PAGES);
    assert.deepEqual(mid, { 'flights.com/v1': STORED - interruptedAt, 'flights.com/v2': interruptedAt });
    assert.deepEqual((await cluster.client.get(CustomResourceDefinition, undefined, CRD)).status?.storedVersions, ['v1', 'v2']);

    const t1 = performance.now();
    const result = await migrateStorageVersion({ client: cluster.client, crd: CRD, pageSize: PAGE_SIZE });
    const resumedMs = performance.now() - t1;
    const end = countBy((await etcdVersions(STORED_NS)).values());
    const ticketsNs = countBy((await etcdVersions(NS)).values());
    const conversions = (await requests(CRD, 'converted')) - conversions0;
    t.diagnostic(
      `resumed: ${result.rewritten} rewritten, ${result.conflicts} conflicts, ${result.restarts} restarts in ${Math.round(resumedMs)} ms ` +
        `(${Math.round((result.rewritten * 1000) / resumedMs)}/s); interrupted run ${Math.round(firstMs)} ms; ${conversions} ConversionReviews answered; ` +
        `etcd ${JSON.stringify(end)}, ${NS} ${JSON.stringify(ticketsNs)}; storedVersions ${JSON.stringify(result.storedVersionsBefore)} → ${JSON.stringify(result.storedVersions)}`,
    );
    assert.deepEqual(end, { 'flights.com/v2': STORED });
    assert.deepEqual(Object.keys(ticketsNs), ['flights.com/v2']);
    assert.equal(result.rewritten + result.gone, STORED + Object.values(ticketsNs).reduce((a, b) => a + b, 0));
    assert.equal(result.gone, 0);
    assert.deepEqual(result.storedVersions, ['v2']);
    assert.deepEqual((await cluster.client.get(CustomResourceDefinition, undefined, CRD)).status?.storedVersions, ['v2']);
  });

  test('the webhook server of the storage-v2 release stopped: failurePolicy Ignore admits a v2 write unchecked, without a hang; a v1 write fails on conversion', async (t) => {
    const port = server!.port;
    // kubectl's own cost: the same v2 write as a dry run where no webhook applies and nothing converts (storage is v2).
    const baseline = await timed(['apply', '--dry-run=server', '-f', '-'], v2Doc('baseline', 'ICN', 'NRT', STORED_NS));
    assert.equal(baseline.code, 0, baseline.stderr);
    await stopServer(t);
    // At worst the API server waits out each webhook in turn: normalize (2 s) then route (5 s). A stopped server
    // refuses the connection at once, so this is far above what it needs, and far below a hung kubectl.
    const [normalize, route] = flightTicketWebhooks({ bookingUrl: booking.url, apiKeySecret: { namespace: NS, name: BOOKING_SECRET } });
    const bound = (normalize.timeoutSeconds + route.timeoutSeconds) * 1000 + baseline.ms + 2_000;
    // An unflown route: with the webhooks down nothing refuses it.
    const write = await timed(['apply', '-f', '-'], v2Doc('unchecked', 'ICN', 'XYZ'));
    t.diagnostic(
      `v2 write: exit ${write.code} in ${Math.round(write.ms)} ms (bound ${Math.round(bound)} ms): ${write.stdout.trim()} ${write.stderr.trim()}`,
    );
    const writeV1 = await timed(['apply', '-f', '-'], v1Doc('unchecked-v1', { from: 'ICN', to: 'NRT', number: 1 }));
    t.diagnostic(`v1 write: exit ${writeV1.code} in ${Math.round(writeV1.ms)} ms: ${writeV1.stderr.trim()}`);
    assert.equal(write.code, 0, write.stderr);
    assert.equal(write.stdout.trim(), 'flightticket.flights.com/unchecked created');
    assert.equal(write.stderr, '');
    assert.ok(write.ms < bound, `kubectl took ${Math.round(write.ms)} ms; bound ${Math.round(bound)} ms`);
    assert.deepEqual((await getJson(v2, 'unchecked')).spec.route, { from: 'ICN', to: 'XYZ' }, 'admitted unchecked');
    assert.equal(writeV1.code, 1);
    assert.equal(
      writeV1.stderr.trim(),
      `Error from server (InternalError): error when creating "STDIN": Internal error occurred: Internal error occurred: conversion webhook for flights.com/v1, Kind=FlightTicket failed: ` +
        `Post "https://127.0.0.1:${port}/convert/${CRD}?timeout=30s": dial tcp 127.0.0.1:${port}: connect: connection refused`,
    );
    assert.ok(writeV1.ms < bound, `kubectl took ${Math.round(writeV1.ms)} ms; bound ${Math.round(bound)} ms`);
  });
});
