import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../client/client.js';
import { isNotFound } from '../client/errors.js';
import { Event as EventType } from '../client/resources.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import type { ObjectReference } from '../client/resources.js';
import { type Logger, silentLogger } from '../telemetry/logger.js';
import { bosunError } from '../errors.js';

/** The two event types Kubernetes knows. */
export type EventKind = 'Normal' | 'Warning';

/** A core/v1 Event as the recorder writes it. */
export interface CoreEvent extends KubeObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  type: EventKind;
  source: { component: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

/** Options of `EventRecorder`. */
export interface EventRecorderOptions {
  /** Who reports: shown by `kubectl describe` as the event's source, e.g. 'message-controller'. */
  component: string;
  /** The reporting instance (pod or node name); default: $POD_NAME, $HOSTNAME, or the component. */
  host?: string;
  logger?: Logger;
  /** How many distinct events are remembered for aggregation (default 4096, as client-go). */
  cacheSize?: number;
  /** Repeats within this window bump `count` on the existing Event (default 10 min). */
  aggregateWindowMs?: number;
  /** Writes still pending beyond this are dropped, so an unreachable API server cannot pile up memory (default 256). */
  maxInFlight?: number;
  /** Events one object may get at once before the spam filter drops them (default 25, as client-go). */
  spamBurst?: number;
  /** The spam filter gives an object back one event per this many ms (default 5 min, as client-go). */
  spamRefillMs?: number;
  /** Time source in ms, injectable for tests. */
  now?: () => number;
}

/** Raised at construction for unusable options; recording itself never throws. */
export class EventRecorderConfigError extends bosunError('BOSUN_EVENT_RECORDER_CONFIG') {
  override readonly name = 'EventRecorderConfigError';
}

/** Messages longer than this are cut: the events.k8s.io API caps `note` at 1 KiB and long messages bloat etcd. */
export const MAX_MESSAGE_LENGTH = 1024;

/** A token bucket of the spam filter. */
interface Bucket {
  tokens: number;
  at: number;
}

interface Remembered {
  namespace: string;
  /** Undefined until the create succeeded. */
  name: string | undefined;
  count: number;
  firstAt: number;
  /** Serializes writes of one event so a repeat never races its own create. */
  chain: Promise<void>;
}

/**
 * Writes core/v1 Events about objects, aggregating identical repeats into one Event with a count and
 * limiting each object to a token bucket (25 at once, one more per 5 minutes) as client-go does.
 * Best effort: failures are logged at debug and dropped, never thrown to the caller.
 */
export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly host: string;
  private readonly log: Logger;
  private readonly cacheSize: number;
  private readonly windowMs: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;
  /** Insertion-ordered, re-inserted on use: the first key is the least recently used. */
  private readonly seen = new Map<string, Remembered>();
  private readonly pending = new Set<Promise<void>>();
  /** Spam-filter buckets per source and object, least recently used first. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly spamBurst: number;
  private readonly spamRefillMs: number;
  private seq = 0;
  private readonly nameSalt = randomBytes(2).toString('hex');

  constructor(client: KubeClient, opts: EventRecorderOptions) {
    if (!opts.component)
      throw new EventRecorderConfigError('EventRecorder needs a component (the controller name shown as the event source)');
    this.client = client;
    this.component = opts.component;
    this.host = opts.host ?? process.env.POD_NAME ?? process.env.HOSTNAME ?? opts.component;
    this.log = opts.logger ?? silentLogger();
    this.cacheSize = opts.cacheSize ?? 4096;
    this.windowMs = opts.aggregateWindowMs ?? 10 * 60_000;
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.now = opts.now ?? Date.now;
    this.spamBurst = opts.spamBurst ?? 25;
    this.spamRefillMs = opts.spamRefillMs ?? 5 * 60_000;
    if (!(this.spamBurst >= 1) || !(this.spamRefillMs > 0)) {
      throw new EventRecorderConfigError(
        `spamBurst (${this.spamBurst}) must be at least 1 and spamRefillMs (${this.spamRefillMs}) above 0`,
      );
    }
  }

  /** Records a Normal event: something expected happened (created, scaled, synced). */
  normal(obj: KubeObject, reason: string, message: string): void {
    this.record(obj, 'Normal', reason, message);
  }

  /** Records a Warning event: something the object's owner should look at. */
  warning(obj: KubeObject, reason: string, message: string): void {
    this.record(obj, 'Warning', reason, message);
  }

  /** Records an event of either type; returns at once, the write happens in the background. */
  record(obj: KubeObject, type: EventKind, reason: string, message: string): void {
    try {
      this.enqueue(obj, type, reason, message);
    } catch (err) {
      // Building the event from a malformed object must not break the reconcile that reports it.
      this.log.debug({ err, reason }, 'event dropped');
    }
  }

  /** Resolves when every event recorded so far has been written or dropped (for tests and shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private enqueue(obj: KubeObject, type: EventKind, reason: string, rawMessage: string): void {
    const message = rawMessage.length > MAX_MESSAGE_LENGTH ? `${rawMessage.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : rawMessage;
    const meta = obj.metadata;
    const involved: ObjectReference = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    };
    this.log.debug({ namespace: meta.namespace, name: meta.name, kind: obj.kind, type, reason, message }, 'event');
    // client-go's EventSourceObjectSpamFilter: one hot object must not flood etcd with Events.
    const spamKey = JSON.stringify([this.component, this.host, obj.kind, meta.namespace, meta.name, meta.uid, obj.apiVersion]);
    if (!this.takeToken(spamKey)) {
      this.log.debug(
        { reason, namespace: meta.namespace, name: meta.name },
        'event dropped by the spam filter: too many events for this object',
      );
      return;
    }
    if (this.pending.size >= this.maxInFlight) {
      this.log.debug({ reason, inFlight: this.pending.size }, 'event dropped: too many event writes in flight');
      return;
    }
    // Cluster-scoped objects' events live in 'default', as client-go puts them.
    const namespace = meta.namespace || 'default';
    const key = JSON.stringify([meta.uid ?? `${namespace}/${meta.name ?? ''}/${obj.kind ?? ''}`, type, reason, message]);
    const now = this.now();
    let entry = this.seen.get(key);
    if (entry) {
      this.seen.delete(key);
      if (now - entry.firstAt > this.windowMs) entry = undefined;
    }
    const e: Remembered = entry ?? { namespace, name: undefined, count: 0, firstAt: now, chain: Promise.resolve() };
    this.seen.set(key, e);
    while (this.seen.size > this.cacheSize) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
    const write = e.chain.then(() => this.write(e, involved, type, reason, message));
    e.chain = write;
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  /** Takes a token from the object's bucket; false when it is empty. */
  private takeToken(key: string): boolean {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.spamBurst, at: now };
    this.buckets.delete(key);
    b.tokens = Math.min(this.spamBurst, b.tokens + Math.max(0, now - b.at) / this.spamRefillMs);
    b.at = now;
    this.buckets.set(key, b);
    while (this.buckets.size > this.cacheSize) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Creates the Event, or bumps the count of the one written before; never rejects. */
  private async write(e: Remembered, involved: ObjectReference, type: EventKind, reason: string, message: string): Promise<void> {
    const ts = rfc3339(this.now());
    const signal = AbortSignal.timeout(10_000);
    try {
      if (e.name !== undefined) {
        try {
          await this.client.patch(EventType, e.namespace, e.name, { count: e.count + 1, lastTimestamp: ts }, 'merge', {
            signal,
            metadataOnly: true,
          });
          e.count++;
          return;
        } catch (err) {
          // Events expire (1 h by default) or are deleted; start a fresh one.
          if (!isNotFound(err)) throw err;
        }
      }
      const name = this.eventName(involved.name ?? 'unknown');
      const ev: CoreEvent = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: e.namespace },
        involvedObject: stripUndefined(involved),
        reason,
        message,
        type,
        source: stripUndefined({ component: this.component, host: this.host }),
        reportingComponent: this.component,
        reportingInstance: this.host,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      };
      // Nothing of the answer is read.
      await this.client.create(EventType as ResourceType<CoreEvent>, ev, { signal, metadataOnly: true });
      e.name = name;
      e.count = 1;
    } catch (err) {
      this.log.debug({ err, namespace: e.namespace, reason }, 'event write failed; dropped');
    }
  }

  private eventName(objName: string): string {
    // client-go names events '<object>.<hex nanoseconds>'; a salt and sequence keep names unique across replicas.
    const suffix = `${(BigInt(this.now()) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16)}${this.nameSalt}`;
    return `${objName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
  }
}

/** RFC 3339 with second precision, the format of metav1.Time. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;
}
