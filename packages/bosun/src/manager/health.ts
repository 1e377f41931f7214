import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../telemetry/metrics.js';
import { type Logger, silentLogger } from '../telemetry/logger.js';
import { bosunError } from '../errors.js';

/** Handles one request; a rejected promise becomes a 500. */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

/** Path → handler; a handler registered for `/x` also receives `/x/anything`. */
export type Routes = Record<string, RouteHandler>;

/** Options of `startHttpServer`. */
export interface HttpServerOptions {
  /** 'host:port', ':port' (all interfaces), ':0' (a free port), or '0' to disable the server. */
  address: string;
  routes: Routes;
  logger?: Logger;
}

/** A listening server: the port it got (useful when ':0' was asked) and how to stop it. */
export interface RunningHttpServer {
  /** The bound port. */
  port: number;
  /** The bound host ('' when listening on all interfaces). */
  host: string;
  /** Stops accepting connections and closes idle keep-alive ones; resolves when closed. */
  close(): Promise<void>;
}

/** Raised for an address that is not 'host:port', ':port' or '0'. */
export class InvalidAddressError extends bosunError('BOSUN_ADDRESS') {
  override readonly name = 'InvalidAddressError';
}

/**
 * Parses a bind address; `undefined` means disabled ('0', as controller-runtime's `--metrics-bind-address=0`).
 * `what` names the address in the error (the flag it came from, for a CLI).
 */
export function parseAddress(address: string, what = 'bind address'): { host: string; port: number } | undefined {
  if (address === '0') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidAddressError(
      `${what} '${address}' is invalid; use 'host:port', ':port' (all interfaces), ':0' (any free port) or '0' (disabled)`,
    );
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

/**
 * Starts a small HTTP server for probes and metrics, or returns undefined when `address` is '0'.
 * Resolves once listening, so a port conflict fails startup instead of surfacing later.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer | undefined> {
  const addr = parseAddress(opts.address);
  if (!addr) return undefined;
  const log = opts.logger ?? silentLogger();
  const paths = Object.keys(opts.routes).sort((a, b) => b.length - a.length);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = paths.find((p) => url.pathname === p || url.pathname.startsWith(p.endsWith('/') ? p : `${p}/`));
    const handler = path === undefined ? undefined : opts.routes[path];
    if (!handler) {
      send(res, 404, `404 page not found\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        log.error({ err, path: url.pathname }, 'http handler failed');
        if (!res.headersSent) send(res, 500, 'internal error\n');
        else res.destroy();
      });
  });
  // Probes come every few seconds from the kubelet; a short keep-alive avoids piling idle sockets.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: addr.host || undefined, port: addr.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'http server error'));
  const bound = server.address() as AddressInfo;
  log.debug({ address: opts.address, port: bound.port }, 'http server listening');
  return {
    port: bound.port,
    host: addr.host,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The `/metrics` route serving a Metrics registry in the Prometheus text format. */
export function metricsRoutes(metrics: Metrics): Routes {
  return {
    '/metrics': async (_req, res) => {
      const text = await metrics.metricsText();
      send(res, 200, text, metrics.contentType);
    },
  };
}

/** A health or readiness check: resolves (or returns true) when healthy; throws or returns false when not. */
export type HealthCheck = () => void | boolean | Promise<void | boolean>;

/** Raised when a check name is empty, malformed or already taken. */
export class HealthCheckNameError extends bosunError('BOSUN_HEALTH_CHECK_NAME') {
  override readonly name = 'HealthCheckNameError';
}

/** Options of `HealthChecks`. */
export interface HealthChecksOptions {
  /** A check that takes longer than this fails (default 5 s): a hung check must not hang the probe. */
  timeoutMs?: number;
  logger?: Logger;
}

/** The outcome of one named check; `reason` is for logs, never served. */
export interface CheckOutcome {
  name: string;
  ok: boolean;
  reason?: string;
}

/** Named liveness and readiness checks, served as `/healthz` and `/readyz` in the API server's format. */
export class HealthChecks {
  private readonly health = new Map<string, HealthCheck>();
  private readonly ready = new Map<string, HealthCheck>();
  private readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(opts: HealthChecksOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.log = opts.logger ?? silentLogger();
  }

  /** Adds a liveness check; a failing one makes the kubelet restart the container. */
  addHealthCheck(name: string, check: HealthCheck): void {
    add(this.health, 'health', name, check);
  }

  /** Adds a readiness check; a failing one takes the pod out of Service endpoints. */
  addReadyCheck(name: string, check: HealthCheck): void {
    add(this.ready, 'ready', name, check);
  }

  /** Runs the liveness checks; `exclude` skips checks by name. */
  runHealthChecks(exclude: string[] = []): Promise<{ ok: boolean; results: CheckOutcome[] }> {
    return this.runAll(this.health, exclude);
  }

  /** Runs the readiness checks; `exclude` skips checks by name. */
  runReadyChecks(exclude: string[] = []): Promise<{ ok: boolean; results: CheckOutcome[] }> {
    return this.runAll(this.ready, exclude);
  }

  /** The `/healthz` and `/readyz` routes (with `/<path>/<check>`, `?verbose` and `?exclude=<check>`). */
  routes(): Routes {
    return {
      '/healthz': (_req, res, url) => this.serve('healthz', this.health, res, url),
      '/readyz': (_req, res, url) => this.serve('readyz', this.ready, res, url),
    };
  }

  private async runAll(checks: Map<string, HealthCheck>, exclude: string[]): Promise<{ ok: boolean; results: CheckOutcome[] }> {
    const entries = [...checks].filter(([name]) => !exclude.includes(name));
    const results = await Promise.all(entries.map(([name, fn]) => this.runOne(name, fn)));
    return { ok: results.every((r) => r.ok), results };
  }

  private async runOne(name: string, fn: HealthCheck): Promise<CheckOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`check timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      const r = await Promise.race([Promise.resolve().then(fn), timeout]);
      if (r === false) return { name, ok: false, reason: 'check returned false' };
      return { name, ok: true };
    } catch (err) {
      return { name, ok: false, reason: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async serve(kind: 'healthz' | 'readyz', checks: Map<string, HealthCheck>, res: http.ServerResponse, url: URL): Promise<void> {
    const sub = url.pathname.slice(kind.length + 2);
    if (sub) {
      // `/readyz/<name>` runs one check, as the API server and controller-runtime allow.
      const fn = checks.get(sub);
      if (!fn) {
        send(res, 404, `404 page not found: no ${kind} check named '${sub}'\n`);
        return;
      }
      const r = await this.runOne(sub, fn);
      if (!r.ok) this.log.info({ check: sub, reason: r.reason }, `${kind} check failed`);
      send(res, r.ok ? 200 : 500, r.ok ? 'ok\n' : `internal server error: ${kind} check '${sub}' failed\n`);
      return;
    }
    const exclude = url.searchParams.getAll('exclude');
    const { ok, results } = await this.runAll(checks, exclude);
    for (const r of results) if (!r.ok) this.log.info({ check: r.name, reason: r.reason }, `${kind} check failed`);
    // Like the API server: the listing on failure or on ?verbose, reasons withheld because probes are unauthenticated.
    if (ok && !url.searchParams.has('verbose')) {
      send(res, 200, 'ok');
      return;
    }
    const lines = results.map((r) => (r.ok ? `[+]${r.name} ok` : `[-]${r.name} failed: reason withheld`));
    for (const name of exclude) if (checks.has(name)) lines.push(`[+]${name} excluded: ok`);
    lines.push(ok ? `${kind} check passed` : `${kind} check failed`);
    send(res, ok ? 200 : 500, `${lines.join('\n')}\n`);
  }
}

function add(map: Map<string, HealthCheck>, what: string, name: string, check: HealthCheck): void {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/i.test(name)) {
    throw new HealthCheckNameError(
      `${what} check name '${name}' is invalid; use letters, digits, '-' and '.', as it becomes a URL path segment`,
    );
  }
  if (map.has(name)) throw new HealthCheckNameError(`${what} check '${name}' is already registered; give each check a distinct name`);
  map.set(name, check);
}
