// The one HTTPS server that answers the API server's admission and conversion calls for a manager. It routes
// by the paths the declarations carry, bounds every request (body size, the webhook's deadline), answers a
// failing or slow function instead of letting the API server time out, re-reads its certificate when the
// files change (cert-manager and kubelet rotate the mounted Secret in place), and counts every answer.
import https from 'node:https';
import tls from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, type Registry } from 'prom-client';
import { bosunError } from '../errors.js';
import { InvalidAddressError, parseAddress } from '../manager/health.js';
import { silentLogger, type Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { WebhookDefinitionError, type AdmissionWebhook, type ApiVersions } from './declare.js';
import {
  reviewAdmission,
  reviewConversion,
  WebhookRequestError,
  WebhookTimeoutError,
  type ReviewOutcome,
  type ReviewResult,
} from './review.js';

/** Options of startWebhookServer(). */
export interface WebhookServerOptions {
  /** The admission webhooks to serve, each on its own path (`/validate/<name>`, `/mutate/<name>`). */
  webhooks?: readonly AdmissionWebhook[];
  /** The multi-version CRDs to convert, each on `/convert/<plural>.<group>`. */
  versions?: readonly ApiVersions[];
  /** 'host:port'; port 0 picks a free one. */
  addr: string;
  /** PEM files, re-read when they change on disk (certificate rotation without restart). */
  tls: { certFile: string; keyFile: string };
  /** Largest request body accepted (default 8 MiB: an object may be 3 MiB, old and new both in one review). */
  maxBodyBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
}

/** A listening webhook server. */
export interface WebhookServer {
  /** The bound port (the one picked when `addr` asked for port 0). */
  readonly port: number;
  /** `https://<host>:<port>`, the base of the URLs to register (loopback when it listens on every interface). */
  readonly url: string;
  /** Resolves once a TLS handshake with the server succeeds: its readiness check (as controller-runtime's StartedChecker). */
  checkServing(): Promise<void>;
  /** Stops accepting requests, lets the ones in flight answer (each is bounded by its deadline), stops watching the certificate. */
  close(): Promise<void>;
}

/** The certificate or key of the webhook server is missing, unreadable, or not a matching PEM pair. */
export class WebhookCertificateError extends bosunError('BOSUN_WEBHOOK_CERTIFICATE') {
  override name = 'WebhookCertificateError';
}

/** The webhook server could not listen on its address (in use, not a local address, a privileged port). */
export class WebhookListenError extends bosunError('BOSUN_WEBHOOK_LISTEN') {
  override name = 'WebhookListenError';
}

const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** The API server waits 30 s for a conversion webhook; a CRD cannot change that. */
const CONVERSION_TIMEOUT_SECONDS = 30;
/** How long before the API server's deadline the answer is sent: the reply must still cross the network. */
const DEADLINE_MARGIN_MS = 500;
/** A safety net under the file watch: some volume mounts swap files in ways inotify does not report. */
const CERT_POLL_MS = 10_000;
/** Events of one rotation (a Secret's symlink swap is several) are taken together. */
const CERT_DEBOUNCE_MS = 100;

type Route =
  | { type: 'validating' | 'mutating'; name: string; timeoutSeconds: number; webhook: AdmissionWebhook }
  | { type: 'conversion'; name: string; timeoutSeconds: number; versions: ApiVersions };

function routesOf(opts: WebhookServerOptions): Map<string, Route> {
  const routes = new Map<string, Route>();
  const add = (path: string, route: Route) => {
    const taken = routes.get(path);
    if (taken)
      throw new WebhookDefinitionError(
        `webhook server: ${route.type} ${route.name} and ${taken.type} ${taken.name} both answer on ${path}. Fix: list each webhook and each defineVersions once, with distinct names`,
      );
    routes.set(path, route);
  };
  for (const webhook of opts.webhooks ?? [])
    add(webhook.path, { type: webhook.type, name: webhook.name, timeoutSeconds: webhook.timeoutSeconds, webhook });
  for (const versions of opts.versions ?? [])
    add(versions.path, { type: 'conversion', name: versions.crdName, timeoutSeconds: CONVERSION_TIMEOUT_SECONDS, versions });
  return routes;
}

/** The time a route's function gets: the webhook's timeout less the margin, at least three quarters of it. */
function deadlineMs(timeoutSeconds: number): number {
  const ms = timeoutSeconds * 1000;
  return ms - Math.min(DEADLINE_MARGIN_MS, ms / 4);
}

interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

async function readPair(files: { certFile: string; keyFile: string }): Promise<KeyPair> {
  const read = async (field: 'certFile' | 'keyFile') => {
    const file = files[field];
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const problem = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this process' : `cannot be read`;
      throw new WebhookCertificateError(
        `webhook server: tls.${field} ${file} ${problem} (${code ?? (err as Error).message}). Fix: point tls.${field} (bosun run --webhook-cert-dir) at the PEM ${field === 'certFile' ? 'serving certificate (tls.crt)' : 'private key (tls.key)'}; in a cluster, mount the cert-manager Secret there; locally, \`bosun run\` writes one`,
        { cause: err },
      );
    }
  };
  const [cert, key] = await Promise.all([read('certFile'), read('keyFile')]);
  return { cert, key };
}

/** Throws unless `pair` is a certificate with its own private key, in PEM: what a TLS server can serve. */
function checkPair(pair: KeyPair, files: { certFile: string; keyFile: string }): void {
  try {
    tls.createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    throw new WebhookCertificateError(
      `webhook server: tls.certFile ${files.certFile} and tls.keyFile ${files.keyFile} are not a PEM certificate and its private key (${(err as Error).message}). Fix: write both files from the same Secret (tls.crt and tls.key) or the same issued pair`,
      { cause: err },
    );
  }
}

function expiryOf(cert: Buffer): string | undefined {
  try {
    return new X509Certificate(cert).validTo;
  } catch {
    return undefined;
  }
}

interface WebhookMetrics {
  requests: Counter<'webhook' | 'type' | 'result'>;
  duration: Histogram<'webhook'>;
}

// Shared by every server on one registry: prom-client refuses a second metric of the same name.
function webhookMetrics(registry: Registry): WebhookMetrics {
  const requests =
    (registry.getSingleMetric('bosun_webhook_requests_total') as Counter<'webhook' | 'type' | 'result'> | undefined) ??
    new Counter({
      name: 'bosun_webhook_requests_total',
      help: 'Webhook requests answered, by webhook, type (validating, mutating, conversion) and result (allowed, denied, patched, converted, error, timeout)',
      labelNames: ['webhook', 'type', 'result'],
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('bosun_webhook_duration_seconds') as Histogram<'webhook'> | undefined) ??
    new Histogram({
      name: 'bosun_webhook_duration_seconds',
      help: 'Time from a webhook request arriving to its answer being sent, by webhook',
      labelNames: ['webhook'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers: [registry],
    });
  return { requests, duration };
}

const RESULTS: Record<Route['type'], readonly ReviewResult[]> = {
  validating: ['allowed', 'denied', 'error', 'timeout'],
  mutating: ['allowed', 'patched', 'denied', 'error', 'timeout'],
  conversion: ['converted', 'error', 'timeout'],
};

class BodyTooLarge extends Error {}

/** The request body, up to `max` bytes; rejects with BodyTooLarge past it, or with the signal's reason. */
function readBody(req: IncomingMessage, max: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: unknown) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', done);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(Buffer.concat(chunks, size));
      else reject(err as Error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) done(new BodyTooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onAbort = () => done(signal.reason);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', done);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Hosts that mean "every interface": the server is reached on loopback from this machine. */
const ANY_HOST = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * Starts the webhook server: resolves once it listens with a valid certificate, or rejects with
 * WebhookCertificateError (files missing or not a pair), WebhookListenError (address in use),
 * InvalidAddressError or WebhookDefinitionError (two routes on one path). Never rejects or throws later:
 * a failing request is answered, logged and counted.
 */
export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.logger ?? silentLogger();
  const routes = routesOf(opts);
  const addr = parseAddress(opts.addr, 'webhookServer.addr');
  if (!addr)
    throw new InvalidAddressError(
      `webhookServer.addr '0' would disable the webhook server; give 'host:port' (':0' for any free port), or leave webhookServer out to serve no webhooks`,
    );
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const files = { certFile: resolve(opts.tls.certFile), keyFile: resolve(opts.tls.keyFile) };
  let pair = await readPair(files);
  checkPair(pair, files);

  const metrics = opts.metrics ? webhookMetrics(opts.metrics.registry) : undefined;
  for (const route of routes.values())
    for (const result of RESULTS[route.type]) metrics?.requests.inc({ webhook: route.name, type: route.type, result }, 0);

  let closing = false;
  // Each connection and its requests in flight, so close() can end the ones with none: Node's
  // closeIdleConnections() misses a connection that never sent a request (the API server's Go client dials
  // ahead and keeps such connections up to 90 s) and one whose answer goes out after close().
  const connections = new Map<tls.TLSSocket, number>();
  const server = https.createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }, (req, res) => {
    if (closing) res.setHeader('Connection', 'close');
    const socket = req.socket as tls.TLSSocket;
    connections.set(socket, (connections.get(socket) ?? 0) + 1);
    res.once('close', () => {
      if (!connections.has(socket)) return;
      const inFlight = connections.get(socket)! - 1;
      connections.set(socket, inFlight);
      if (closing && inFlight === 0) socket.destroySoon();
    });
    handle(req, res).catch((err: unknown) => {
      // handle() answers every failure itself; this is the last guard that keeps the process up.
      log.error({ err, path: req.url }, 'webhook request failed');
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  // The API server keeps connections open between calls; a stalled client must not hold one for long.
  server.headersTimeout = 15_000;
  server.requestTimeout = (CONVERSION_TIMEOUT_SECONDS + 5) * 1000;
  server.keepAliveTimeout = 30_000;
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    // A handshake that was under way when close() was called.
    if (closing) return socket.destroy();
    connections.set(socket, 0);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'webhook TLS handshake failed'));
  server.on('clientError', (err, socket) => {
    log.debug({ err: err.message }, 'webhook client error');
    socket.destroy();
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = performance.now();
    const path = new URL(req.url ?? '/', 'https://localhost').pathname;
    const route = routes.get(path);
    if (!route) {
      sendText(res, 404, `no webhook is served on ${path}\n`);
      return;
    }
    const labels = { webhook: route.name, type: route.type };
    const finish = (result: ReviewResult) => {
      metrics?.requests.inc({ ...labels, result });
      metrics?.duration.observe({ webhook: route.name }, (performance.now() - start) / 1000);
    };
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendText(res, 405, `${path} takes POST only\n`);
      finish('error');
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      sendText(res, 415, `${path} takes Content-Type application/json, not '${type}'\n`);
      finish('error');
      return;
    }
    const tooLarge = () => {
      log.warn({ ...labels, maxBodyBytes }, 'webhook request body too large');
      res.setHeader('Connection', 'close');
      sendText(res, 413, `the request body is larger than ${maxBodyBytes} bytes (maxBodyBytes)\n`);
      finish('error');
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      tooLarge();
      req.resume();
      return;
    }

    const timeoutMs = deadlineMs(route.timeoutSeconds);
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      const what = route.type === 'conversion' ? `conversion of ${route.name}` : `webhook ${route.name}`;
      ctl.abort(
        new WebhookTimeoutError(
          `${what} timed out after ${timeoutMs / 1000} s (the API server gives up at ${route.timeoutSeconds} s${route.type === 'conversion' ? '' : ', the timeoutSeconds declared'})`,
        ),
      );
    }, timeoutMs);
    const onClose = () => {
      if (!res.writableFinished) ctl.abort(new Error('the API server closed the connection before the answer'));
    };
    res.on('close', onClose);
    try {
      let body: unknown;
      try {
        const raw = await readBody(req, maxBodyBytes, ctl.signal);
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        if (err instanceof BodyTooLarge) {
          tooLarge();
          req.resume();
          return;
        }
        if (ctl.signal.aborted) {
          // No review read, so no uid to answer with: the API server sees a failed call (failurePolicy).
          sendText(res, 504, `${messageOf(ctl.signal.reason)} while reading the request\n`);
          finish('timeout');
          return;
        }
        sendText(res, 400, `${path}: the body is not JSON (${messageOf(err)})\n`);
        finish('error');
        return;
      }
      let outcome: ReviewOutcome<unknown>;
      try {
        outcome =
          route.type === 'conversion'
            ? await reviewConversion(route.versions, body, ctl.signal)
            : await reviewAdmission(route.webhook, body, ctl.signal);
      } catch (err) {
        if (!(err instanceof WebhookRequestError)) throw err;
        log.warn({ ...labels, err: err.message }, 'webhook request is not a review');
        sendText(res, 400, `${err.message}\n`);
        finish('error');
        return;
      }
      const uid = (outcome.body as { response: { uid: string } }).response.uid;
      if (outcome.result === 'error') log.error({ ...labels, uid, err: outcome.error ?? outcome.body }, 'webhook function failed');
      else if (outcome.result === 'timeout') log.warn({ ...labels, uid, timeoutMs }, 'webhook timed out');
      else log.debug({ ...labels, uid, result: outcome.result }, 'webhook answered');
      if (res.destroyed) return finish(outcome.result);
      const json = JSON.stringify(outcome.body);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) });
      res.end(json);
      finish(outcome.result);
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
    }
  }

  await new Promise<void>((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const fix =
        err.code === 'EADDRINUSE'
          ? 'the address is in use. Fix: stop the process holding the port, or set webhookServer.addr (bosun run --webhook-addr) to another port; port 0 picks a free one'
          : err.code === 'EACCES'
            ? 'permission denied. Fix: use a port above 1024 (kubebuilder uses 9443) or grant the process CAP_NET_BIND_SERVICE'
            : err.code === 'EADDRNOTAVAIL'
              ? 'no interface of this machine has that address. Fix: use 127.0.0.1, 0.0.0.0 or one of its own addresses'
              : `${err.message}. Fix: check webhookServer.addr`;
      reject(new WebhookListenError(`webhook server cannot listen on ${opts.addr} (${err.code ?? 'error'}): ${fix}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: addr.host || undefined, port: addr.port }, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
  server.on('error', (err) => log.error({ err }, 'webhook server error'));
  const port = (server.address() as AddressInfo).port;
  const host = ANY_HOST.has(addr.host) ? '127.0.0.1' : addr.host;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

  // Rotation: the files are re-read on any change in their directories (a Secret volume swaps a symlink,
  // cert-manager rewrites the files) and every CERT_POLL_MS. A half-written pair keeps the old one in use.
  let reloading: Promise<void> | undefined;
  const reload = async () => {
    let next: KeyPair;
    try {
      next = await readPair(files);
      if (next.cert.equals(pair.cert) && next.key.equals(pair.key)) return;
      checkPair(next, files);
      server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'webhook certificate not reloaded; serving the previous one');
      return;
    }
    pair = next;
    log.info({ certFile: files.certFile, notAfter: expiryOf(next.cert) }, 'webhook certificate reloaded');
  };
  const scheduleReload = () => {
    reloading ??= new Promise<void>((r) => setTimeout(r, CERT_DEBOUNCE_MS)).then(reload).finally(() => (reloading = undefined));
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
    try {
      const w = watch(dir, () => {
        if (!closing) scheduleReload();
      });
      w.on('error', (err) => log.debug({ dir, err: err.message }, 'certificate directory watch failed; polling'));
      w.unref();
      watchers.push(w);
    } catch (err) {
      log.debug({ dir, err: messageOf(err) }, 'cannot watch the certificate directory; polling');
    }
  }
  const poll = setInterval(() => {
    if (!closing) scheduleReload();
  }, CERT_POLL_MS);
  poll.unref();

  log.info({ url, paths: [...routes.keys()], notAfter: expiryOf(pair.cert) }, 'webhook server listening');
  return {
    port,
    url,
    checkServing: () =>
      new Promise<void>((ok, fail) => {
        const socket = tls.connect({ host, port, rejectUnauthorized: false, timeout: 2_000 }, () => {
          socket.end();
          ok();
        });
        socket.on('timeout', () => socket.destroy(new Error(`no TLS handshake with the webhook server at ${url} within 2 s`)));
        socket.on('error', (err) => fail(err));
      }),
    close: async () => {
      if (closing) return;
      closing = true;
      clearInterval(poll);
      for (const w of watchers) w.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeIdleConnections();
        for (const [socket, inFlight] of connections) if (inFlight === 0) socket.destroy();
      });
      await reloading;
    },
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
