import type { KubeClient } from '../client/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../client/errors.js';
import { Lease as LeaseType } from '../client/resources.js';
import type { KubeObject } from '../client/types.js';
import { type Logger, silentLogger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';

/** The spec of a coordination.k8s.io/v1 Lease. */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

/** A coordination.k8s.io/v1 Lease. */
export type LeaseObject = KubeObject<LeaseSpec>;

/** Options of `LeaderElector`; durations default to controller-runtime's (15 s / 10 s / 2 s). */
export interface LeaderElectorOptions {
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease, shared by every replica of the operator. */
  name: string;
  /** This replica's identity, unique among replicas (pod name plus a random suffix is typical). */
  identity: string;
  /** How long a lease stays valid without renewal before others may take it. */
  leaseDurationMs?: number;
  /** The leader steps down if it could not renew for this long; must be below leaseDurationMs. */
  renewDeadlineMs?: number;
  /** How often to try acquiring and renewing. */
  retryPeriodMs?: number;
  /** Called when this replica becomes leader; `signal` aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => void;
  /**
   * Called when leadership is lost involuntarily (renewal failed for renewDeadline, or another holder
   * took the lease). Not called after `release()` or an aborted `run`: those are intended.
   */
  onStoppedLeading: () => void;
  /** Called when the observed holder changes (this replica included). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  /** When given, `leader_election_master_status{name}` follows this replica's leadership. */
  metrics?: Metrics;
  /** Time source in ms, injectable for tests. */
  now?: () => number;
}

/** Raised at construction for durations that cannot work together, or a missing name or identity. */
export class LeaderElectionConfigError extends Error {
  override readonly name = 'LeaderElectionConfigError';
}

/** How `run` ended: leadership lost, or stopped on purpose (signal or `release()`). */
export type LeaderElectionEnd = 'lost' | 'stopped';

// client-go's JitterFactor: acquisition retries wait retryPeriod × [1, 2.2) so replicas don't hit the API in lockstep.
const JITTER_FACTOR = 1.2;

/** MicroTime: RFC 3339 with microseconds, the format Lease times must use. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a lease is expired
 * when its record has not changed for leaseDuration as measured by *this* process's clock (so clock
 * skew between nodes cannot cause two leaders), writes use optimistic concurrency on resourceVersion,
 * and a leader that cannot renew within renewDeadline steps down before anyone else may take over.
 */
export class LeaderElector {
  private readonly client: KubeClient;
  private readonly opts: LeaderElectorOptions;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly log: Logger;
  private readonly now: () => number;

  private observedRaw = '';
  private observedAt = 0;
  private observedHolder = '';
  private lease: LeaseObject | undefined;
  private leading = false;
  private leadership: AbortController | undefined;
  private readonly stopper = new AbortController();
  private released: Promise<void> | undefined;
  private running: Promise<LeaderElectionEnd> | undefined;

  constructor(client: KubeClient, opts: LeaderElectorOptions) {
    this.client = client;
    this.opts = opts;
    this.leaseMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    if (!opts.namespace || !opts.name) throw new LeaderElectionConfigError('leader election needs the Lease namespace and name (e.g. --leader-election-namespace)');
    if (!opts.identity) throw new LeaderElectionConfigError(`leader election on Lease ${opts.namespace}/${opts.name} needs a non-empty identity, unique per replica`);
    if (this.leaseMs <= this.renewDeadlineMs) {
      throw new LeaderElectionConfigError(`leaseDurationMs (${this.leaseMs}) must be greater than renewDeadlineMs (${this.renewDeadlineMs}), or a stalled leader could overlap its successor`);
    }
    if (this.renewDeadlineMs <= JITTER_FACTOR * this.retryMs) {
      throw new LeaderElectionConfigError(`renewDeadlineMs (${this.renewDeadlineMs}) must be greater than ${JITTER_FACTOR} × retryPeriodMs (${this.retryMs}) to allow at least one retry`);
    }
    if (this.leaseMs < 1000) throw new LeaderElectionConfigError(`leaseDurationMs (${this.leaseMs}) must be at least 1000: the Lease stores whole seconds`);
    this.log = (opts.logger ?? silentLogger()).child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    opts.metrics?.leader(opts.name, false);
  }

  /** Whether this replica currently holds the lease. */
  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last observed on the Lease ('' when none). */
  getLeader(): string {
    return this.observedHolder;
  }

  /**
   * Campaigns until leading, then renews until leadership is lost or `signal` aborts (then releases the
   * lease). Resolves with how it ended; never rejects on API errors, which are retried.
   */
  run(signal?: AbortSignal): Promise<LeaderElectionEnd> {
    if (this.running) return this.running;
    if (signal) {
      if (signal.aborted) this.stopper.abort();
      else signal.addEventListener('abort', () => void this.release(), { once: true });
    }
    this.running = this.loop();
    return this.running;
  }

  /** Stops campaigning and, if leading, clears holderIdentity so the next replica takes over at once. */
  release(): Promise<void> {
    this.released ??= this.doRelease();
    return this.released;
  }

  private async loop(): Promise<LeaderElectionEnd> {
    const stop = this.stopper.signal;
    // Acquire.
    let acquired = false;
    while (!stop.aborted && !acquired) {
      acquired = await this.tryAcquireOrRenew(this.retryMs * 2);
      if (!acquired) await sleep(this.retryMs * (1 + Math.random() * JITTER_FACTOR), stop);
    }
    if (!acquired) return 'stopped';
    this.setLeading(true);
    // Stopped while the winning write was in flight: we hold the lease, so release() must clear it.
    if (stop.aborted) return 'stopped';
    this.log.info('became leader');
    try {
      this.opts.onStartedLeading(this.leadership!.signal);
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading threw');
    }
    // Renew.
    let lastRenew = this.now();
    while (!stop.aborted) {
      await sleep(this.retryMs, stop);
      if (stop.aborted) break;
      const remaining = lastRenew + this.renewDeadlineMs - this.now();
      const ok = remaining > 0 && (await this.tryAcquireOrRenew(remaining));
      if (stop.aborted) break;
      if (ok) {
        lastRenew = this.now();
        continue;
      }
      const heldByOther = this.observedHolder !== '' && this.observedHolder !== this.opts.identity;
      if (heldByOther || this.now() - lastRenew >= this.renewDeadlineMs) {
        this.setLeading(false);
        this.log.error({ holder: this.observedHolder, sinceRenewMs: this.now() - lastRenew }, heldByOther ? 'leadership lost: another replica holds the lease' : 'leadership lost: could not renew the lease within the renew deadline');
        try {
          this.opts.onStoppedLeading();
        } catch (err) {
          this.log.error({ err }, 'onStoppedLeading threw');
        }
        return 'lost';
      }
    }
    return 'stopped';
  }

  private async doRelease(): Promise<void> {
    this.stopper.abort();
    // Let an in-flight renew settle so our release is built on the latest resourceVersion.
    if (this.running) await this.running;
    if (!this.leading || !this.lease) {
      this.setLeading(false);
      return;
    }
    this.setLeading(false);
    const now = microTime(this.now());
    const spec = this.lease.spec ?? {};
    const body: LeaseObject = {
      ...this.lease,
      // client-go's release: no holder, a 1 s duration, transitions kept, so any replica may acquire immediately.
      spec: { ...spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
    };
    try {
      this.lease = await this.client.update<LeaseObject>(LeaseType, body, { signal: AbortSignal.timeout(this.renewDeadlineMs) });
      this.log.info('released leadership');
    } catch (err) {
      // The lease expires by itself after leaseDuration; release only speeds the handover up.
      this.log.warn({ err }, 'could not release the lease; the next leader takes over after it expires');
    }
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.opts.metrics?.leader(this.opts.name, v);
    if (v) this.leadership = new AbortController();
    else this.leadership?.abort();
  }

  /** One attempt: true when this replica holds the lease afterwards. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
    const nowMs = this.now();
    const now = microTime(nowMs);
    const durationSeconds = Math.round(this.leaseMs / 1000);
    try {
      let current: LeaseObject;
      try {
        current = await this.client.get<LeaseObject>(LeaseType, namespace, name, signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created = await this.client.create<LeaseObject>(
          LeaseType,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { namespace, name },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
          { signal },
        );
        this.observe(created);
        this.lease = created;
        return true;
      }
      this.observe(current);
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const expired = this.observedAt + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 <= this.now();
      if (holder !== '' && holder !== identity && !expired) return false;
      const renewing = holder === identity && this.leading;
      const next: LeaseObject = {
        ...current,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: now,
          acquireTime: renewing ? spec.acquireTime : now,
          leaseTransitions: renewing || holder === identity ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
        },
      };
      // update() sends metadata.resourceVersion from the read: a concurrent writer makes it fail with 409.
      const updated = await this.client.update<LeaseObject>(LeaseType, next, { signal });
      this.observe(updated);
      this.lease = updated;
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) this.log.debug({ err }, 'lease changed concurrently; retrying');
      else this.log.warn({ err }, 'lease acquire/renew failed');
      return false;
    }
  }

  /** Tracks when the lease record last changed, by our clock, and reports holder changes. */
  private observe(lease: LeaseObject): void {
    const spec = lease.spec ?? {};
    const raw = JSON.stringify([spec.holderIdentity ?? '', spec.renewTime ?? '', spec.acquireTime ?? '', spec.leaseTransitions ?? 0, spec.leaseDurationSeconds ?? 0]);
    if (raw !== this.observedRaw) {
      this.observedRaw = raw;
      this.observedAt = this.now();
    }
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder !== '') {
        this.log.info({ holder }, 'new leader observed');
        try {
          this.opts.onNewLeader?.(holder);
        } catch (err) {
          this.log.error({ err }, 'onNewLeader threw');
        }
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
