import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueMetrics } from '../queue/workqueue.js';

/** How a reconcile ended, as controller-runtime labels it in `controller_runtime_reconcile_total`. */
export type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after';

/** Options of `Metrics`. */
export interface MetricsOptions {
  /** Collect the prom-client process metrics (CPU, memory, event loop lag, GC); default true. */
  processMetrics?: boolean;
  /** Labels added to every series, e.g. `{ operator: 'messages' }`. */
  defaultLabels?: Record<string, string>;
}

const RESULTS: readonly ReconcileResult[] = ['success', 'error', 'requeue', 'requeue_after'];

// controller-runtime's buckets, so dashboards built for Go operators read bosun's histograms unchanged.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5,
  4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// client-go's workqueue buckets: 10 ns to 1000 s, ×10.
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number(`1e${i - 8}`));

/**
 * The metrics of one manager, in a registry of its own: two managers in one process (tests,
 * benchmarks) must not collide on prom-client's global registry.
 */
export class Metrics {
  /** The registry; operators register their own metrics here so `/metrics` serves them too. */
  readonly registry: Registry;

  private readonly reconcileTotal: Counter<'controller' | 'result'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcileTime: Histogram<'controller'>;
  private readonly activeWorkers: Gauge<'controller'>;
  private readonly maxConcurrent: Gauge<'controller'>;
  private readonly queueDepth: Gauge<'name'>;
  private readonly queueAdds: Counter<'name'>;
  private readonly queueLatency: Histogram<'name'>;
  private readonly queueWork: Histogram<'name'>;
  private readonly queueRetries: Counter<'name'>;
  private readonly watchRestarts: Counter<'resource' | 'reason'>;
  private readonly cacheObjectsGauge: Gauge<'resource'>;
  private readonly leaderStatus: Gauge<'name'>;
  private readonly reconcilesHeldGauge: Gauge<'controller'>;
  private readonly reconcileHolds: Counter<'controller'>;
  private cacheSource: (() => Iterable<{ resource: string; count: number }>) | undefined;

  constructor(opts: MetricsOptions = {}) {
    this.registry = new Registry();
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];

    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.maxConcurrent = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });
    this.queueDepth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers });
    this.queueAdds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    this.queueLatency = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.queueWork = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.queueRetries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'bosun_watch_restarts_total',
      help: 'Watch streams restarted, by resource and reason (gone = relist after 410, error, closed, silent)',
      labelNames: ['resource', 'reason'],
      registers,
    });
    const cacheSource = () => this.cacheSource;
    this.cacheObjectsGauge = new Gauge({
      name: 'bosun_cache_objects',
      help: 'Objects held in the informer cache per resource',
      labelNames: ['resource'],
      registers,
      // Read at scrape time: counting on every cache change would tax the hot path for a rarely read number.
      collect() {
        const source = cacheSource();
        if (!source) return;
        const sums = new Map<string, number>();
        for (const { resource, count } of source()) sums.set(resource, (sums.get(resource) ?? 0) + count);
        this.reset();
        for (const [resource, count] of sums) this.set({ resource }, count);
      },
    });
    this.leaderStatus = new Gauge({
      name: 'leader_election_master_status',
      help: 'Whether this process currently holds the leader election lease (1) or not (0)',
      labelNames: ['name'],
      registers,
    });
    this.reconcilesHeldGauge = new Gauge({
      name: 'bosun_reconciles_held',
      help: 'Whether the controller is holding its reconciles (1) until a cache it reads catches up after a watch gap, or not (0)',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileHolds = new Counter({
      name: 'bosun_reconcile_holds_total',
      help: 'Times the controller began holding its reconciles for a cache that fell behind',
      labelNames: ['controller'],
      registers,
    });
  }

  /**
   * Declares a controller so its series exist at zero before the first reconcile, as
   * controller-runtime does: alerts on `rate(...)` need the series to exist.
   */
  registerController(controller: string, maxConcurrentReconciles = 1): void {
    for (const result of RESULTS) this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc({ controller }, 0);
    this.activeWorkers.set({ controller }, 0);
    this.maxConcurrent.set({ controller }, maxConcurrentReconciles);
    this.reconcilesHeldGauge.set({ controller }, 0);
    this.reconcileHolds.inc({ controller }, 0);
  }

  /** Records that `controller` began (`behind` names the caches) or stopped (empty) holding its reconciles. */
  reconcilesHeld(controller: string, behind: readonly string[]): void {
    const held = behind.length > 0;
    if (held) this.reconcileHolds.inc({ controller });
    this.reconcilesHeldGauge.set({ controller }, held ? 1 : 0);
  }

  /** Records one finished reconcile: its outcome and how long it took; errors also count in the errors total. */
  reconcileDone(controller: string, result: ReconcileResult, seconds: number): void {
    this.reconcileTotal.inc({ controller, result });
    if (result === 'error') this.reconcileErrors.inc({ controller });
    this.reconcileTime.observe({ controller }, seconds);
  }

  /** Sets the number of reconciles running for `controller` (a controller's `workersActive` observer). */
  workersActive(controller: string, n: number): void {
    this.activeWorkers.set({ controller }, n);
  }

  /** The observers to pass as a `WorkQueue`'s `metrics` option, labelled with the queue's `name`. */
  queueHooks(name: string): Required<QueueMetrics> {
    // Children are resolved once: label lookup on every add/get is measurable on a busy queue.
    const adds = this.queueAdds.labels({ name });
    const latency = this.queueLatency.labels({ name });
    const work = this.queueWork.labels({ name });
    const retries = this.queueRetries.labels({ name });
    const depth = this.queueDepth.labels({ name });
    adds.inc(0);
    retries.inc(0);
    depth.set(0);
    return {
      onAdd: () => adds.inc(),
      onGet: (_key, waitMs) => latency.observe(waitMs / 1000),
      onDone: (_key, workMs) => work.observe(workMs / 1000),
      onRetry: () => retries.inc(),
      onDepth: (n) => depth.set(n),
    };
  }

  /** Counts a restarted watch; `reason` is a short fixed word (gone, error, closed, silent) to bound cardinality. */
  watchRestarted(resource: string, reason: string): void {
    this.watchRestarts.inc({ resource, reason });
  }

  /** Sets the number of objects the cache holds for `resource`; unused once `cacheObjectsFrom` gives a source. */
  cacheObjects(resource: string, count: number): void {
    this.cacheObjectsGauge.set({ resource }, count);
  }

  /** Makes `bosun_cache_objects` read `source` at every scrape; counts of one resource are summed. */
  cacheObjectsFrom(source: () => Iterable<{ resource: string; count: number }>): void {
    this.cacheSource = source;
  }

  /** Records whether this process leads the election `name`. */
  leader(name: string, isLeader: boolean): void {
    this.leaderStatus.set({ name }, isLeader ? 1 : 0);
  }

  /** The Prometheus text exposition of every metric in the registry, for `/metrics`. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type header value matching `metricsText()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
