import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CacheSet, type CacheTransform, type Informer, type WatchScope, labelSelectorOf } from '../cache/informer.js';
import { CONTROLLER_INDEX } from '../cache/store.js';
import { KubeClient } from '../client/client.js';
import { ApiError, TransportError } from '../client/errors.js';
import { keyOf, type ResourceType } from '../client/types.js';
import type { ControllerSpec } from '../controller/builder.js';
import { ReconcileContext, type CacheReader, type EventSink } from '../writes/context.js';
import { OwnWrites } from '../writes/own-writes.js';
import { Controller, DEFAULT_WORKERS } from '../controller/controller.js';
import { EventRecorder } from '../writes/events.js';
import { enqueueMapped, enqueueObject, enqueueOwner } from '../controller/enqueue.js';
import { requestFromKey } from '../controller/request.js';
import { HealthChecks, metricsRoutes, startHttpServer, type RunningHttpServer } from './health.js';
import { LeaderElector, leaseTimings } from './lease.js';
import { createLogger, objectLogger, type Logger } from '../telemetry/logger.js';
import { Metrics } from '../telemetry/metrics.js';
import { probeReachability, type ServerUnreachableError } from './reachability.js';
import { bosunError } from '../errors.js';
import { startWebhookServer, type WebhookServer, type WebhookServerOptions } from '../webhook/server.js';
import { WebhookCertRotator, WebhookCertsConfigError, type WebhookCertsOptions } from '../webhook/rotator.js';

/** Leader election settings; a Lease in `namespace` named `name`. */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** This replica's identity; default hostname plus a random suffix. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** Options of a manager. */
export interface ManagerOptions {
  /** API client; default one built from the kubeconfig chain. */
  client?: KubeClient;
  /** Kubeconfig file and context, when no client is given. */
  kubeconfig?: string;
  context?: string;
  /** User-Agent of the client built from the kubeconfig (default `bosun`): tells replicas apart in the API server's audit log. */
  userAgent?: string;
  /** Namespaces to watch; absent or empty for all. */
  namespaces?: string[];
  /** Server-side-apply field manager and Event source; default 'bosun'. */
  fieldManager?: string;
  /** Leader election; absent for none (standalone). With it, the client refuses every write but the Lease's while this replica does not hold the Lease. */
  leaderElection?: LeaderElectionOptions;
  /** '/metrics' address ('host:port', ':port', '0' off); default '0'. */
  metricsAddr?: string;
  /** '/healthz' and '/readyz' address; default '0'. */
  healthAddr?: string;
  /** Default concurrent reconciles per controller. */
  workers?: number;
  logger?: Logger;
  /** How long graceful shutdown waits for in-flight reconciles, in ms, before aborting their signals (default 30 s). */
  shutdownTimeoutMs?: number;
  /** How long the caches may take to list every watched kind before start() fails, in ms (default 2 min, as controller-runtime). */
  cacheSyncTimeoutMs?: number;
  /**
   * Whether the caches take their state from the watch (WatchList; see `WatcherOptions.watchList`) rather than
   * from a list (default true). False for an API server that ignores `sendInitialEvents` (before Kubernetes 1.27).
   */
  watchList?: boolean;
  /**
   * The admission and conversion webhooks to serve over HTTPS; absent for none. Served on every replica (the
   * API server calls any of them), from before the caches start (their lists may need the conversion) until last.
   */
  webhookServer?: Omit<WebhookServerOptions, 'logger' | 'metrics'>;
  /** Called once the webhook server listens, before the caches start: where to register its URL (its port when `addr` asked for 0). */
  onWebhookServerStarted?: (server: WebhookServer) => void | Promise<void>;
  /**
   * Certificates without cert-manager: the webhook server's certificate kept in a Secret (the leader creates and
   * rotates it and injects its CA; every replica writes it to `webhookServer.tls` and serves it). The server then
   * starts once the first certificate is written, not before the caches, and `webhook-server` is not ready until then.
   */
  webhookCerts?: WebhookCertsOptions;
}

/** Raised when this replica loses its Lease: it must stop, as another replica may now act. */
export class LeaderElectionLostError extends bosunError('BOSUN_LEADERSHIP_LOST') {
  override name = 'LeaderElectionLostError';
}

/** Raised when a second controller of a name already added is added: names key metrics, field managers and logs. */
export class DuplicateControllerError extends bosunError('BOSUN_DUPLICATE_CONTROLLER') {
  override name = 'DuplicateControllerError';
}

/** The abort reason reconciles see when a graceful shutdown outlasted `shutdownTimeoutMs`. */
export class ShutdownTimeoutError extends bosunError('BOSUN_SHUTDOWN_TIMEOUT') {
  override name = 'ShutdownTimeoutError';
}

/** How long shutdown waits for Event writes still in flight. */
const EVENT_FLUSH_TIMEOUT_MS = 5_000;

/** A kind the caches could not list within `cacheSyncTimeoutMs`, and why. */
export interface UnsyncedKind {
  /** The resource, as `plural.group` (`plural` for the core group). */
  resource: string;
  /** The last list or watch error, if any request failed. */
  error: unknown;
}

/**
 * Raised by `Manager.start` when some kind's cache did not sync in time: a kind that can never be
 * listed (RBAC, missing CRD) would otherwise block the controllers and leader election forever.
 */
export class CacheSyncTimeoutError extends bosunError('BOSUN_CACHE_SYNC_TIMEOUT') {
  override name = 'CacheSyncTimeoutError';
  /** The kinds that had not synced. */
  readonly kinds: UnsyncedKind[];

  /** Set when no connection to the API server could be made: why the kinds without an error did not sync. */
  readonly unreachable: ServerUnreachableError | undefined;

  constructor(timeoutMs: number, kinds: UnsyncedKind[], unreachable?: ServerUnreachableError) {
    // A watch fails its connect at once where a list retries it: either way the server is what is missing.
    const silent = unreachable ? kinds.filter((k) => k.error === undefined || k.error instanceof TransportError) : [];
    const reasons = kinds.filter((k) => !silent.includes(k)).map(explainUnsynced);
    // One server behind every silent kind: say it once, not per kind.
    if (silent.length) reasons.unshift(`${unreachable!.message} (${silent.map((k) => k.resource).join(', ')} not listed)`);
    super(`caches did not sync within ${timeoutMs} ms (cacheSyncTimeoutMs): ${reasons.join('; ')}`);
    this.kinds = kinds;
    this.unreachable = unreachable;
  }
}

/** The resource label of a type: `plural.group`, or `plural` for the core group. */
export function resourceName(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

/** A watch or list error for the log: a 404 says which CRD is missing rather than the server's '404 page not found'. */
function describeWatchError(resource: string, err: unknown): string {
  if (err instanceof ApiError && err.status === 404) return explainUnsynced({ resource, error: err });
  return (err as Error).message ?? String(err);
}

function explainUnsynced(k: UnsyncedKind): string {
  const err = k.error;
  if (err instanceof ApiError) {
    const failed = `cannot ${err.target.verb} ${k.resource}: ${err.status}${err.reason ? ` ${err.reason}` : ''}`;
    if (err.status === 403)
      return `${failed}; grant list and watch on ${k.resource} to the ServiceAccount the operator runs as (bosun generate writes the RBAC into config/rbac)`;
    if (err.status === 404) return `${failed}: the CRD is not installed or does not serve this version (kubectl apply -f config/crd)`;
    if (err.status === 401) return `${failed}: the credentials were refused; check the kubeconfig or the ServiceAccount token`;
    return `${failed}: ${err.body?.message ?? err.message}`;
  }
  const verb = err instanceof TransportError ? err.target.verb : 'list';
  if (err !== undefined) return `cannot ${verb} ${k.resource}: ${err instanceof Error ? err.message : String(err)}`;
  return `the first state of ${k.resource} has not arrived (no error reported: a slow API server or a very large list; raise cacheSyncTimeoutMs)`;
}

/**
 * Runs controllers in one process: it owns the API client, the shared caches, metrics, health
 * probes and leader election, starts controllers once their caches have synced (and, with leader
 * election, once this replica leads), and on shutdown drains in-flight reconciles before it stops.
 */
export class Manager {
  /** The API client every controller writes through. */
  readonly client: KubeClient;
  /** The shared informers, one per watched type. */
  readonly caches: CacheSet;
  /** Prometheus metrics served at /metrics. */
  readonly metrics: Metrics;
  /** Health and readiness checks served at /healthz and /readyz. */
  readonly health: HealthChecks;
  /** The manager's logger. */
  readonly log: Logger;
  private readonly opts: ManagerOptions;
  private readonly specs: ControllerSpec[] = [];
  private readonly controllers: Controller[] = [];
  /** The watches each controller declared, by controller name: what its cache reader reads. */
  private readonly readers = new Map<string, WatchScope[]>();
  private readonly recorder: EventRecorder;
  /** The last list/watch error per resource, cleared by a successful list: why a cache has not synced. */
  private readonly watchErrors = new Map<string, unknown>();
  private readonly fieldManager: string;
  private webhooks: WebhookServer | undefined;
  private readonly certRotator: WebhookCertRotator | undefined;

  constructor(opts: ManagerOptions = {}) {
    this.opts = opts;
    if (opts.leaderElection) leaseTimings(opts.leaderElection);
    this.log = opts.logger ?? createLogger({});
    this.client = opts.client ?? KubeClient.fromConfig({ kubeconfig: opts.kubeconfig, context: opts.context, userAgent: opts.userAgent });
    this.metrics = new Metrics();
    this.health = new HealthChecks();
    this.fieldManager = opts.fieldManager ?? 'bosun';
    if (opts.webhookCerts) {
      if (!opts.webhookServer)
        throw new WebhookCertsConfigError(
          'webhookCerts is set without webhookServer: there is no server whose certificate to keep. Fix: set webhookServer (its tls files are where the certificate is written), or drop webhookCerts',
        );
      this.certRotator = new WebhookCertRotator(this.client, {
        ...opts.webhookCerts,
        files: opts.webhookServer.tls,
        logger: this.log,
        fieldManager: `${this.fieldManager}-cert-rotator`,
      });
    }
    this.caches = new CacheSet(this.client, {
      defaultNamespaces: opts.namespaces,
      watcherFor: (type) => {
        const resource = resourceName(type);
        return {
          watchList: opts.watchList,
          hooks: {
            onRestart: (reason, info) => {
              this.metrics.watchRestarted(resource, reason);
              if (info.error !== undefined) this.watchErrors.set(resource, info.error);
              if (info.error)
                this.log.warn(
                  { resource, reason, delayMs: info.delayMs, err: describeWatchError(resource, info.error) },
                  'watch restarting',
                );
            },
            onList: () => this.watchErrors.delete(resource),
          },
        };
      },
      onSubscriberError: (err, type, change) =>
        this.log.error(
          { kind: type.kind, event: change.type, key: keyOf(change.object), err: (err as Error).message },
          'change subscriber failed',
        ),
      onObjectError: (err, type, obj) =>
        this.log.error(
          { kind: type.kind, key: keyOf(obj), err: (err as Error).message },
          'object skipped: the cache transform or an indexer threw',
        ),
    });
    this.recorder = new EventRecorder(this.client, { component: this.fieldManager, logger: this.log });
    this.metrics.cacheObjectsFrom(() =>
      this.caches.entries().map((e) => ({ resource: resourceName(e.type), count: e.informer.store.size })),
    );
  }

  /** Adds a controller declared with `controller(name).for(...)...reconcile(fn)`. */
  add(spec: ControllerSpec): this {
    if (this.specs.some((s) => s.name === spec.name))
      throw new DuplicateControllerError(
        `a controller named '${spec.name}' is already added; controller names must be unique (rename one in controller('<name>'))`,
      );
    this.specs.push(spec);
    const reconcile = spec.setup();
    const { watches } = spec;
    let reader: CacheReader | undefined;
    let sink: EventSink | undefined;
    const ownWrites = new OwnWrites();
    const primary = this.informer(spec.name, spec.forType);
    const workers = spec.workers ?? this.opts.workers;
    const ctrl = new Controller(
      {
        name: spec.name,
        workers,
        logger: this.log,
        queueMetrics: this.metrics.queueHooks(spec.name),
        observer: {
          reconcileDone: (c, r, s) => this.metrics.reconcileDone(c, r, s),
          workersActive: (c, n) => this.metrics.workersActive(c, n),
          reconcilesHeld: (c, behind) => this.metrics.reconcilesHeld(c, behind),
        },
        beforeReconcile: (key, signal) => {
          const req = requestFromKey(key);
          const ns = spec.forType.namespaced ? req.namespace : undefined;
          const cache = (reader ??= this.cacheReader(spec.name));
          return ownWrites.untilSeen(key, () => cache.get(spec.forType, ns, req.name), signal);
        },
      },
      async (req, signal) => {
        // One reader and one event sink per manager; each reconcile only adds its logger and context.
        reader ??= this.cacheReader(spec.name);
        sink ??= this.events();
        const log = objectLogger(
          this.log,
          { kind: spec.forType.kind, metadata: { namespace: req.namespace, name: req.name } },
          { controller: spec.name },
        );
        const fieldManager = ReconcileContext.fieldManagerFor(this.fieldManager, spec.name);
        const ctx = new ReconcileContext(
          spec.name,
          this.client,
          reader,
          log,
          sink,
          fieldManager,
          signal,
          { type: spec.forType, namespace: req.namespace, name: req.name },
          ownWrites,
        );
        return reconcile(req, ctx);
      },
    );
    this.metrics.registerController(spec.name, Math.max(1, workers ?? DEFAULT_WORKERS));
    primary.subscribe((c) => ownWrites.changed(keyOf(c.object)));
    ctrl.watch(primary, enqueueObject(), spec.forPredicates);
    for (const o of spec.owns) {
      ctrl.watch(this.informer(spec.name, o.type, o.labels, true, o.transform), enqueueOwner(spec.forType), o.predicates);
    }
    for (const w of watches) {
      ctrl.watch(this.informer(spec.name, w.type, w.labels, false, w.transform), enqueueMapped(w.map ?? (() => [])), w.predicates);
    }
    this.controllers.push(ctrl);
    return this;
  }

  /** The webhook server while start() runs it, undefined before and after. */
  get webhookServer(): WebhookServer | undefined {
    return this.webhooks;
  }

  /** The declared controllers, for tools such as RBAC generation. */
  get controllerSpecs(): readonly ControllerSpec[] {
    return this.specs;
  }

  /** The shared informer of a watch, recorded as one of `controller`'s reads; owned types get the controller index its ownedBy needs. */
  private informer(
    controller: string,
    type: ResourceType,
    labels?: Record<string, string>,
    owned = false,
    transform?: CacheTransform,
  ): Informer {
    const scope = { labelSelector: labelSelectorOf(labels), transform };
    const declared = this.readers.get(controller) ?? [];
    declared.push({ type, scope });
    this.readers.set(controller, declared);
    return this.caches.informerFor(type, scope, { indexes: owned ? [CONTROLLER_INDEX] : [] });
  }

  /**
   * Read access to the caches: for `controller`, exactly the kinds and scopes its watches declared
   * (so its reads never land in another controller's filtered cache); without it, every cache.
   */
  cacheReader(controller?: string): CacheReader {
    if (controller === undefined) return this.caches.reader(this.caches.entries(), 'this manager');
    return this.caches.reader(this.readers.get(controller) ?? [], `controller '${controller}'`);
  }

  /** The Event sink controllers write through. */
  events(): EventSink {
    return {
      normal: (obj, reason, message) => this.recorder.normal(obj, reason, message),
      warning: (obj, reason, message) => this.recorder.warning(obj, reason, message),
    };
  }

  /**
   * Runs until `signal` aborts (or leadership is lost): serves metrics and probes, then the webhooks
   * (every replica, leader or not), starts the caches, waits for leadership if configured, then runs the
   * controllers; the webhook server is the last thing it stops. On abort it stops taking
   * work and lets in-flight reconciles finish for up to `shutdownTimeoutMs`, then aborts their
   * signals; only then does it release the Lease, so the next leader never acts beside a reconcile
   * of this one. Losing the Lease aborts in-flight reconciles at once and rejects with
   * LeaderElectionLostError.
   */
  async start(signal: AbortSignal): Promise<void> {
    const servers: RunningHttpServer[] = [];
    let webhookSrv: WebhookServer | undefined;
    const cacheAbort = new AbortController();
    // drain: take no more work, let in-flight reconciles finish. kill: abort the signal reconciles got.
    const drain = new AbortController();
    const kill = new AbortController();
    // The elector keeps renewing through the drain; it stops (and releases) only after the controllers.
    const electorStop = new AbortController();
    const shutdownTimeoutMs = this.opts.shutdownTimeoutMs ?? 30_000;
    let killTimer: NodeJS.Timeout | undefined;
    const onStop = () => {
      if (drain.signal.aborted) return;
      drain.abort();
      killTimer = setTimeout(() => {
        this.log.warn({ shutdownTimeoutMs }, 'shutdown timeout: aborting the reconciles still running');
        kill.abort(new ShutdownTimeoutError(`reconcile aborted: shutdown took longer than shutdownTimeoutMs (${shutdownTimeoutMs} ms)`));
      }, shutdownTimeoutMs);
    };
    if (signal.aborted) onStop();
    else signal.addEventListener('abort', onStop, { once: true });
    let lost: LeaderElectionLostError | undefined;
    // The certificate rotator: `serve` on every replica until the end, `lead` while this replica leads.
    const rotatorStop = new AbortController();
    const rotatorLeadStop = new AbortController();
    let rotatorServing: Promise<void> | undefined;
    let rotatorLeading: Promise<void> | undefined;
    let webhookStarting: Promise<void> | undefined;
    let webhookFailure: unknown;
    let elector: LeaderElector | undefined;
    let electorRun: Promise<unknown> | undefined;
    try {
      this.health.addHealthCheck('ping', () => true);
      this.health.addReadyCheck('caches-synced', () => this.caches.hasSynced());
      const metricsSrv = await startHttpServer({
        address: this.opts.metricsAddr ?? '0',
        routes: metricsRoutes(this.metrics),
        logger: this.log,
      });
      if (metricsSrv) servers.push(metricsSrv);
      const healthSrv = await startHttpServer({ address: this.opts.healthAddr ?? '0', routes: this.health.routes(), logger: this.log });
      if (healthSrv) servers.push(healthSrv);
      if (metricsSrv) this.log.info({ port: metricsSrv.port }, 'serving /metrics');
      if (healthSrv) this.log.info({ port: healthSrv.port }, 'serving /healthz and /readyz');
      const rotator = this.certRotator;
      if (this.opts.webhookServer && rotator) {
        const webhookOpts = this.opts.webhookServer;
        const secret = `${this.opts.webhookCerts!.secret.namespace}/${this.opts.webhookCerts!.secret.name}`;
        rotatorServing = rotator.serve(rotatorStop.signal);
        this.health.addReadyCheck('webhook-server', () => {
          if (!webhookSrv) throw new Error(`no serving certificate yet: waiting for the Secret ${secret} (written by the leader)`);
          return webhookSrv.checkServing();
        });
        // The first certificate may come from another replica, after this one's caches sync: not awaited here.
        webhookStarting = rotator
          .certificateWritten(rotatorStop.signal)
          .then(async () => {
            webhookSrv = await startWebhookServer({ ...webhookOpts, logger: this.log, metrics: this.metrics });
            this.webhooks = webhookSrv;
            await this.opts.onWebhookServerStarted?.(webhookSrv);
          })
          .catch((err: unknown) => {
            if (rotatorStop.signal.aborted) return;
            webhookFailure = err;
            this.log.error({ err: (err as Error).message }, 'webhook server failed to start');
            onStop();
          });
        if (!this.opts.leaderElection) rotatorLeading = rotator.lead(rotatorLeadStop.signal);
      } else if (this.opts.webhookServer) {
        webhookSrv = await startWebhookServer({ ...this.opts.webhookServer, logger: this.log, metrics: this.metrics });
        this.webhooks = webhookSrv;
        const serving = webhookSrv;
        this.health.addReadyCheck('webhook-server', () => serving.checkServing());
        await this.opts.onWebhookServerStarted?.(webhookSrv);
      }

      // Caches start before leadership so a standby replica takes over with a warm cache.
      const cachesDone = this.caches.start(cacheAbort.signal);
      const synced = await this.waitForCaches(drain.signal);
      if (synced) this.log.info({ controllers: this.specs.map((s) => s.name) }, 'caches synced');

      if (this.opts.leaderElection && !drain.signal.aborted) {
        const le = this.opts.leaderElection;
        const identity = le.identity ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
        let leading!: () => void;
        const becameLeader = new Promise<void>((r) => (leading = r));
        elector = new LeaderElector(this.client, {
          namespace: le.namespace,
          name: le.name,
          identity,
          leaseDurationMs: le.leaseDurationMs,
          renewDeadlineMs: le.renewDeadlineMs,
          retryPeriodMs: le.retryPeriodMs,
          logger: this.log,
          metrics: this.metrics,
          onStartedLeading: () => leading(),
          onStoppedLeading: () => {
            // Another replica may act from now on: stop every write of ours at once, drain or not.
            lost = new LeaderElectionLostError(
              `lost the Lease ${le.namespace}/${le.name}; stopping so that only the new leader acts (restart the process to campaign again)`,
            );
            this.log.error({ lease: `${le.namespace}/${le.name}`, identity }, 'leadership lost: aborting in-flight reconciles');
            kill.abort(lost);
            drain.abort();
          },
        });
        const lease = elector;
        // The step-down timer may run only after code that resumed first from a freeze: each write checks the term itself.
        this.client.setWriteGate((target) =>
          (target.kind === 'Lease' && target.namespace === le.namespace && target.name === le.name) || lease.holdsLease()
            ? undefined
            : new LeaderElectionLostError(
                `refused to ${target.verb} ${target.kind ?? ''} ${target.namespace ?? ''}/${target.name ?? ''}: this replica does not hold the Lease ${le.namespace}/${le.name} (its term ran out by its own clock, as after a freeze, or it never led); only the leader writes`,
              ),
        );
        electorRun = elector.run(electorStop.signal);
        this.log.info({ lease: `${le.namespace}/${le.name}`, identity }, 'waiting for leadership');
        await Promise.race([becameLeader, new Promise<void>((r) => drain.signal.addEventListener('abort', () => r(), { once: true }))]);
        if (rotator && !drain.signal.aborted) rotatorLeading = rotator.lead(AbortSignal.any([rotatorLeadStop.signal, kill.signal]));
      }

      if (!drain.signal.aborted) {
        await Promise.all(this.controllers.map((c) => c.start(drain.signal, kill.signal)));
      }
      // Controllers have drained (or were killed); now the caches and the rest can stop.
      cacheAbort.abort();
      await cachesDone;
    } finally {
      if (killTimer) clearTimeout(killTimer);
      cacheAbort.abort();
      signal.removeEventListener('abort', onStop);
      // The rotator's writes are the leader's too: done before the Lease goes.
      rotatorLeadStop.abort();
      await rotatorLeading;
      // Events of the last reconciles are writes too: out before the Lease goes.
      await this.flushEvents();
      // Released only now, after the last reconcile: the next leader never overlaps our writes.
      electorStop.abort();
      if (elector)
        await elector.release().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not release the Lease'));
      if (electorRun) await electorRun;
      await Promise.all(servers.map((s) => s.close()));
      rotatorStop.abort();
      await Promise.all([rotatorServing, webhookStarting]);
      this.client.close();
      // Last: the API server may call it for conversions and admissions until the very end.
      if (webhookSrv) await webhookSrv.close();
      this.webhooks = undefined;
    }
    if (lost) throw lost;
    if (webhookFailure) throw webhookFailure;
  }

  /** Waits for every cache to sync; throws CacheSyncTimeoutError naming the kinds that did not in time. */
  private async waitForCaches(stop: AbortSignal): Promise<boolean> {
    const timeoutMs = this.opts.cacheSyncTimeoutMs ?? 120_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    // The client retries refused connections within its own deadline, so the lists report nothing
    // until long after this timeout: a plain connect finds a server that is not there at once.
    let unreachable: ServerUnreachableError | undefined;
    const probing = new AbortController();
    const server = this.client.server;
    void probeReachability(server, AbortSignal.any([stop, probing.signal]), (err) => {
      unreachable = err;
      this.log.warn({ server, errno: err.errno }, err.message);
    })
      .then((last) => {
        if (!last) unreachable = undefined;
      })
      .catch((err: unknown) => this.log.debug({ server, err: (err as Error).message }, 'could not probe the API server address'));
    let synced: boolean;
    try {
      synced = await this.caches.waitForSync(AbortSignal.any([stop, timeout]));
    } finally {
      probing.abort();
    }
    if (synced || stop.aborted) return synced;
    const kinds = this.caches
      .entries()
      .filter((e) => !e.informer.hasSynced())
      .map((e) => resourceName(e.type))
      .filter((r, i, all) => all.indexOf(r) === i)
      .map((resource) => ({ resource, error: this.watchErrors.get(resource) }));
    throw new CacheSyncTimeoutError(timeoutMs, kinds, unreachable);
  }

  /** Waits for pending Event writes, bounded so an unreachable API server cannot hold shutdown up. */
  private async flushEvents(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, EVENT_FLUSH_TIMEOUT_MS)));
    await Promise.race([this.recorder.flush(), bound]);
    clearTimeout(timer);
  }
}
