import type { KubeClient } from '../client/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../client/errors.js';
import { Lease as LeaseType, type Lease } from '../client/resources.js';
import { type Logger, silentLogger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { type Clock, realClock } from '../queue/clock.js';
import { bosunError } from '../errors.js';

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
  /**
   * Monotonic time and timers for every lease duration (default performance.now() and Node's timers), so a
   * step of the wall clock neither hides failed renews nor makes a healthy lease look expired.
   */
  clock?: Clock;
  /** Wall time in ms, used only for the MicroTime strings written into the Lease (default Date.now). */
  wallClock?: () => number;
}

/** Raised at construction for durations that cannot work together, or a missing name or identity. */
export class LeaderElectionConfigError extends bosunError('BOSUN_LEADER_ELECTION_CONFIG') {
  override readonly name = 'LeaderElectionConfigError';
}

/**
 * The lease timings with their defaults (15 s, 10 s, 2 s, as client-go's), or a LeaderElectionConfigError naming the
 * flag to change: checked when a Manager is made, so a wrong setting fails at once, not after the caches sync.
 */
export function leaseTimings(opts: Pick<LeaderElectorOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>): {
  leaseMs: number;
  renewDeadlineMs: number;
  retryMs: number;
} {
  const leaseMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
  const retryMs = opts.retryPeriodMs ?? 2_000;
  if (leaseMs <= renewDeadlineMs) {
    throw new LeaderElectionConfigError(
      `the lease duration (leaseDurationMs, bosun run --leader-elect-lease-duration) ${leaseMs} ms must be greater than the renew deadline (renewDeadlineMs, --leader-elect-renew-deadline) ${renewDeadlineMs} ms, or a stalled leader could overlap its successor. Fix: lengthen the lease or shorten the deadline`,
    );
  }
  if (renewDeadlineMs <= JITTER_FACTOR * retryMs) {
    throw new LeaderElectionConfigError(
      `the renew deadline (renewDeadlineMs, --leader-elect-renew-deadline) ${renewDeadlineMs} ms must be greater than ${JITTER_FACTOR} × the retry period (retryPeriodMs, --leader-elect-retry-period) ${retryMs} ms, to allow at least one retry. Fix: lengthen the deadline or shorten the retry period`,
    );
  }
  if (leaseMs < 1000)
    throw new LeaderElectionConfigError(
      `the lease duration (leaseDurationMs, --leader-elect-lease-duration) ${leaseMs} ms must be at least 1000: the Lease stores whole seconds. Fix: use 1s or more`,
    );
  return { leaseMs, renewDeadlineMs, retryMs };
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
 * when its record has not changed for leaseDuration as measured by *this* process's monotonic clock
 * (so neither clock skew between nodes nor a wall-clock step can cause two leaders), writes use
 * optimistic concurrency on resourceVersion, and a leader steps down at lastRenew + renewDeadline
 * by a timer, whatever request is still in flight, before anyone else may take over.
 */
export class LeaderElector {
  private readonly client: KubeClient;
  private readonly opts: LeaderElectorOptions;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly wallClock: () => number;

  private observedRaw = '';
  private observedAt = 0;
  private observedHolder = '';
  /** The observed record's leaseDurationSeconds, in ms. */
  private observedDurationMs = 0;
  private lease: Lease | undefined;
  private leading = false;
  private leadership: AbortController | undefined;
  private deadlineTimer: unknown;
  /** lastRenew + renewDeadline of the current term, on our monotonic clock. */
  private termEndsAt = 0;
  /** Set when the term ended by the deadline or another holder, not by stop or release. */
  private lostInvoluntarily = false;
  private readonly stopper = new AbortController();
  private released: Promise<void> | undefined;
  private running: Promise<LeaderElectionEnd> | undefined;

  constructor(client: KubeClient, opts: LeaderElectorOptions) {
    this.client = client;
    this.opts = opts;
    ({ leaseMs: this.leaseMs, renewDeadlineMs: this.renewDeadlineMs, retryMs: this.retryMs } = leaseTimings(opts));
    this.clock = opts.clock ?? realClock;
    this.wallClock = opts.wallClock ?? Date.now;
    if (!opts.namespace || !opts.name)
      throw new LeaderElectionConfigError('leader election needs the Lease namespace and name (e.g. --leader-election-namespace)');
    if (!opts.identity)
      throw new LeaderElectionConfigError(
        `leader election on Lease ${opts.namespace}/${opts.name} needs a non-empty identity, unique per replica`,
      );
    this.log = (opts.logger ?? silentLogger()).child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    opts.metrics?.leader(opts.name, false);
  }

  /** Whether this replica currently holds the lease. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Whether this replica leads and its term has not run out by its monotonic clock, read now rather
   * than from the step-down timer: after a freeze (SIGSTOP, a VM pause) code that resumes before the
   * timer fires must not act as leader. Check it right before each write.
   */
  holdsLease(): boolean {
    return this.leading && this.clock.now() < this.termEndsAt;
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
    let lastRenew = 0;
    let acquired = false;
    while (!stop.aborted && !acquired) {
      const started = this.clock.now();
      acquired = await this.tryAcquireOrRenew(this.renewDeadlineMs, undefined);
      if (acquired) lastRenew = started;
      else await this.sleep(this.acquireDelay(), stop);
    }
    if (!acquired) return 'stopped';
    this.setLeading(true);
    const term = this.leadership!.signal;
    this.armDeadline(lastRenew);
    // Stopped while the winning write was in flight: we hold the lease, so release() must clear it.
    if (stop.aborted) return 'stopped';
    this.log.info('became leader');
    try {
      this.opts.onStartedLeading(term);
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading threw');
    }
    // Renew. The deadline timer ends the term on its own; this loop only extends it.
    const stopOrLost = AbortSignal.any([stop, term]);
    while (!stopOrLost.aborted) {
      await this.sleep(this.retryMs, stopOrLost);
      if (stopOrLost.aborted) break;
      // Measured from before the request: the server may have written it any time after this.
      const started = this.clock.now();
      const ok = await this.tryAcquireOrRenew(lastRenew + this.renewDeadlineMs - started, term);
      if (stopOrLost.aborted) break;
      if (ok) {
        lastRenew = started;
        this.armDeadline(lastRenew);
        continue;
      }
      if (this.observedHolder !== '' && this.observedHolder !== this.opts.identity) {
        this.stepDown('leadership lost: another replica holds the lease');
      }
    }
    return stop.aborted && !this.lostInvoluntarily ? 'stopped' : 'lost';
  }

  /**
   * How long to wait before the next acquisition attempt: the jittered retry period, or less when the
   * lease another replica holds runs out sooner by our clock, so a dead leader's lease is taken the
   * moment it expires rather than up to a jittered period later.
   */
  private acquireDelay(): number {
    const jittered = this.retryMs * (1 + Math.random() * JITTER_FACTOR);
    if (this.observedHolder === '' || this.observedHolder === this.opts.identity) return jittered;
    const expiresIn = this.observedAt + this.observedDurationMs - this.clock.now();
    return expiresIn >= 0 && expiresIn < jittered ? expiresIn : jittered;
  }

  /** (Re)arms the step-down timer at lastRenew + renewDeadline. */
  private armDeadline(lastRenew: number): void {
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    const at = lastRenew + this.renewDeadlineMs;
    this.termEndsAt = at;
    this.deadlineTimer = this.clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      this.stepDown('leadership lost: could not renew the lease within the renew deadline', at);
    }, at - this.clock.now());
  }

  /** Ends the term now; a loss during an intended stop is not reported as one. */
  private stepDown(why: string, deadline?: number): void {
    if (!this.leading) return;
    const intended = this.stopper.signal.aborted;
    this.setLeading(false);
    if (intended) return;
    this.lostInvoluntarily = true;
    this.log.error({ holder: this.observedHolder, pastDeadlineMs: deadline === undefined ? undefined : this.clock.now() - deadline }, why);
    try {
      this.opts.onStoppedLeading();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading threw');
    }
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
    const now = microTime(this.wallClock());
    const spec = this.lease.spec ?? {};
    const body: Lease = {
      ...this.lease,
      // client-go's release: no holder, a 1 s duration, transitions kept, so any replica may acquire immediately.
      spec: { ...spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
    };
    const ac = this.timeout(this.renewDeadlineMs, undefined);
    try {
      this.lease = await abortable(this.client.update<Lease>(LeaseType, body, { signal: ac.signal }), ac.signal);
      this.log.info('released leadership');
    } catch (err) {
      // The lease expires by itself after leaseDuration; release only speeds the handover up.
      this.log.warn({ err }, 'could not release the lease; the next leader takes over after it expires');
    } finally {
      ac.done();
    }
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.opts.metrics?.leader(this.opts.name, v);
    if (v) this.leadership = new AbortController();
    else {
      if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
      this.leadership?.abort();
    }
  }

  /** An abort signal that fires after `ms` on our clock, or when `also` fires. */
  private timeout(ms: number, also: AbortSignal | undefined): { signal: AbortSignal; done: () => void } {
    const ac = new AbortController();
    const t = this.clock.setTimeout(() => ac.abort(new Error(`lease request timed out after ${Math.round(ms)} ms`)), Math.max(1, ms));
    const onAlso = (): void => ac.abort(also?.reason);
    if (also?.aborted) onAlso();
    else also?.addEventListener('abort', onAlso, { once: true });
    return {
      signal: ac.signal,
      done: () => {
        this.clock.clearTimeout(t);
        also?.removeEventListener('abort', onAlso);
      },
    };
  }

  /**
   * One attempt: true when this replica holds the lease afterwards. Gives up after `timeoutMs` or when
   * `term` aborts, even if the request itself does not honour its signal.
   */
  private async tryAcquireOrRenew(timeoutMs: number, term: AbortSignal | undefined): Promise<boolean> {
    if (timeoutMs <= 0) return false;
    const ac = this.timeout(timeoutMs, term);
    try {
      return await abortable(this.attempt(ac.signal), ac.signal);
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) this.log.debug({ err }, 'lease changed concurrently; retrying');
      else this.log.warn({ err }, 'lease acquire/renew failed');
      return false;
    } finally {
      ac.done();
    }
  }

  private async attempt(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const now = microTime(this.wallClock());
    const durationSeconds = Math.round(this.leaseMs / 1000);
    let current: Lease;
    try {
      current = await this.client.get<Lease>(LeaseType, namespace, name, signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      signal.throwIfAborted();
      const created = await this.client.create<Lease>(
        LeaseType,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { namespace, name },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        },
        { signal },
      );
      signal.throwIfAborted();
      this.observe(created);
      this.lease = created;
      return true;
    }
    signal.throwIfAborted();
    this.observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const expired = this.observedAt + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 <= this.clock.now();
    if (holder !== '' && holder !== identity && !expired) return false;
    const renewing = holder === identity && this.leading;
    // A renew after the term ran out (the process was frozen since the read) is not sent: the term is over.
    if (renewing && !this.holdsLease()) return false;
    const next: Lease = {
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
    const updated = await this.client.update<Lease>(LeaseType, next, { signal });
    // A reply after the deadline must not count: the timer has already stepped down.
    signal.throwIfAborted();
    this.observe(updated);
    this.lease = updated;
    return true;
  }

  /** Tracks when the lease record last changed, by our monotonic clock, and reports holder changes. */
  private observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    const raw = JSON.stringify([
      spec.holderIdentity ?? '',
      spec.renewTime ?? '',
      spec.acquireTime ?? '',
      spec.leaseTransitions ?? 0,
      spec.leaseDurationSeconds ?? 0,
    ]);
    if (raw !== this.observedRaw) {
      this.observedRaw = raw;
      this.observedAt = this.clock.now();
      this.observedDurationMs = (spec.leaseDurationSeconds ?? Math.round(this.leaseMs / 1000)) * 1000;
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

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = this.clock.setTimeout(done, ms);
      const clock = this.clock;
      function done(): void {
        clock.clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Settles with `p`, or rejects with the abort reason as soon as `signal` fires, even if `p` never settles. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
