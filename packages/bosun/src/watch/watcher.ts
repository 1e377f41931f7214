import type { KubeClient, WatchEvent } from '../client/client.js';
import { ApiError, isGone, type Status } from '../client/errors.js';
import type { KubeObject, ResourceType } from '../client/types.js';
import { type Clock, realClock } from '../queue/clock.js';
import { bosunError } from '../errors.js';

/** One page of a list as the watcher needs it. */
export interface SourcePage<T extends KubeObject = KubeObject> {
  items: T[];
  resourceVersion: string;
  continue?: string | undefined;
}

/** Where a watcher lists and watches from; injected so tests can drive the state machine without a server. */
export interface ListWatcher<T extends KubeObject = KubeObject> {
  /** Lists one page; `continue` is the previous page's token. */
  list(opts: { limit: number; continue?: string | undefined; signal: AbortSignal }): Promise<SourcePage<T>>;
  /**
   * Opens a watch from `resourceVersion`; the iterable ends when the stream closes and must honour `signal`.
   * A source that can tell calls `onOpen` once the server has accepted the watch (answered 2xx), before
   * any event: the only sign of a healthy stream in a namespace where nothing changes.
   */
  watch(opts: WatchRequest, signal: AbortSignal): AsyncIterable<WatchEvent<T>>;
  /**
   * Whether `watch` honours `sendInitialEvents`: the stream starts with the current state as ADDED
   * events and a BOOKMARK annotated `k8s.io/initial-events-end`, so the watcher needs no list.
   */
  readonly initialEvents?: boolean;
}

/** What the watcher asks a source's `watch` for. */
export interface WatchRequest {
  resourceVersion: string;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number;
  onOpen?: () => void;
  /** Stream the current state first (`sendInitialEvents=true`, `resourceVersionMatch=NotOlderThan`); only asked of a source with `initialEvents`. */
  sendInitialEvents?: boolean;
}

/** The annotation on the BOOKMARK that ends a watch's initial events. */
export const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

/** What to list and watch through a KubeClient. */
export interface ClientListWatcherOptions {
  /** Namespace to watch; absent for all namespaces or cluster-scoped types. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Adapts a KubeClient and resource type into a ListWatcher. */
export function clientListWatcher<T extends KubeObject = KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  opts: ClientListWatcherOptions = {},
): ListWatcher<T> {
  const { namespace, labelSelector, fieldSelector } = opts;
  return {
    list: (o) =>
      client.list<T>(type, {
        namespace,
        labelSelector,
        fieldSelector,
        limit: o.limit || undefined,
        continue: o.continue,
        signal: o.signal,
      }),
    watch: (o, signal) => client.watch<T>(type, { namespace, labelSelector, fieldSelector, ...o }, signal),
    initialEvents: true,
  };
}

/** What the watcher tells its consumer: lists page by page (to replace a store), then single changes. */
export type WatcherEvent<T extends KubeObject = KubeObject> =
  /**
   * One page of a list, delivered before the next is fetched so no full copy is ever held: `first`
   * starts a list (a failed list starts over with a new first page), `last` completes it (what no
   * page had is gone), `initial` marks the watcher's first list (later ones follow a 410 Gone).
   */
  | { type: 'page'; objects: T[]; first: boolean; last: boolean; initial: boolean }
  | { type: 'applied'; object: T }
  | { type: 'deleted'; object: T };

/** Why a watch stream was re-established. */
export type RestartReason = 'gone' | 'error' | 'silent' | 'closed';

/** Observers for metrics and logs; synchronous, must not throw. */
export interface WatcherHooks {
  /** A new watch (or list) is about to start after `reason`, after waiting `delayMs`. */
  onRestart?(reason: RestartReason, info: { delayMs: number; error?: unknown }): void;
  /** A full list (or a watch's initial events) completed with `count` objects in `durationMs`. */
  onList?(count: number, durationMs: number): void;
  /**
   * The stream broke (`reason` is never 'closed'): from now on the consumer may be missing changes,
   * until `onCaughtUp`. Called again on each further failure while behind.
   */
  onBehind?(reason: RestartReason): void;
  /**
   * After `onBehind`: a relist stored its last page, or the resumed watch proved the server accepted
   * its resourceVersion (an event or bookmark came, or it stayed open `resumeConfirmMs` without an ERROR).
   */
  onCaughtUp?(): void;
}

/**
 * Reconnect backoff: client-go's reflector defaults (800 ms ×2 up to 30 s, reset after 2 min without failure).
 * The watcher also resets it after a healthy stream fails (see `runWatcher`).
 */
export interface BackoffOptions {
  initialMs?: number;
  factor?: number;
  maxMs?: number;
  /** Each delay is multiplied by 1 + jitter × random() (default 0.5), then capped at maxMs. */
  jitter?: number;
  /** The backoff starts over when the previous failure was longer ago than this (default 120 s). */
  resetAfterMs?: number;
}

/** Options of a watcher. */
export interface WatcherOptions {
  /** List page size (default 500). */
  pageSize?: number;
  /** Bounds of the server-side watch timeout, randomised so many watchers do not reconnect in lockstep (300–600 s). */
  minTimeoutSeconds?: number;
  maxTimeoutSeconds?: number;
  /** A stream with no event or bookmark for this long is assumed dead and restarted (default 5 min). */
  idleTimeoutMs?: number;
  /**
   * A stream that closes cleanly sooner than this is treated as a failure and backed off (default 1 s); one
   * that lasted this long after the server accepted it (or delivered an event) was healthy and resets the
   * reconnect backoff.
   */
  minHealthyStreamMs?: number;
  backoff?: BackoffOptions;
  /**
   * How long a watch resumed after a failure must stay open without an ERROR to count as caught up
   * when no event or bookmark comes (default 1 s); see `onCaughtUp`.
   */
  resumeConfirmMs?: number;
  /**
   * Take the state from the watch itself where the source can (`ListWatcher.initialEvents`; the API
   * server's WatchList, served by the pinned v1.35) rather than from a list (default true).
   * The state then arrives one object at a time and no list answer is ever held whole; a server that
   * refuses the request as invalid (400, 422) is listed from then on.
   */
  watchList?: boolean;
  hooks?: WatcherHooks;
  clock?: Clock;
  /** Random source for jitter and timeouts, in [0, 1). */
  random?: () => number;
}

/** An ERROR event in a watch stream that is not 410 Gone. */
export class WatchStreamError extends bosunError('BOSUN_WATCH_STREAM') {
  override readonly name = 'WatchStreamError';
  /** The Status the server sent. */
  readonly status: Status;

  constructor(status: Status) {
    super(`watch stream error: ${status.code ?? '?'} ${status.reason ?? ''}: ${status.message ?? JSON.stringify(status)}`);
    this.status = status;
  }
}

/** Jittered exponential backoff that resets after a quiet period. */
export class Backoff {
  private attempt = 0;
  private lastFailure = -Infinity;
  private readonly o: Required<BackoffOptions>;

  constructor(
    opts: BackoffOptions,
    private readonly clock: Clock,
    private readonly random: () => number,
  ) {
    this.o = { initialMs: 800, factor: 2, maxMs: 30_000, jitter: 0.5, resetAfterMs: 120_000, ...opts };
  }

  /** The delay before the next attempt after a failure now. */
  next(): number {
    const now = this.clock.now();
    if (now - this.lastFailure > this.o.resetAfterMs) this.attempt = 0;
    this.lastFailure = now;
    const base = Math.min(this.o.initialMs * this.o.factor ** this.attempt, this.o.maxMs);
    this.attempt++;
    return Math.min(base * (1 + this.o.jitter * this.random()), this.o.maxMs);
  }

  /** Starts the sequence over: the next delay is the initial one. */
  reset(): void {
    this.attempt = 0;
  }

  /** The longest delay this backoff gives. */
  get maxMs(): number {
    return this.o.maxMs;
  }
}

type StreamOutcome = 'closed' | 'short' | 'gone' | 'silent';

/** What a watch stream showed before it ended, filled in by `watchOnce` even when it throws. */
interface StreamProgress {
  /** The server accepted it (the source's `onOpen`), or an event the sink accepted or a bookmark came on it. */
  accepted: boolean;
}

/**
 * Runs the list-then-watch state machine until `signal` fires, feeding `sink`. It never gives up:
 * 410 Gone relists, any other failure reconnects from the last resourceVersion after a backoff.
 * Where the source streams initial events (`watchList`), the "list" is the first part of a watch:
 * the same `page` events, one object each, the last one when the server's bookmark ends the state.
 * `sink` may be async; the watcher waits for it, and a throwing sink counts as a stream error
 * (the event is replayed, because the resourceVersion advances only after the sink accepted it).
 *
 * A failed stream that had been healthy starts the reconnect backoff over, so a path that breaks now
 * and then costs the initial delay each time, not a delay doubled from failures long recovered from.
 * Healthy means the server accepted it (answered 2xx, or an event or bookmark came) and it lasted
 * `minHealthyStreamMs` from the call, or it lasted the backoff's cap. Neither lets a failing path or
 * server be retried fast. A refused connect, an answered error (a 429 after a wait in an APF queue
 * included) and a stream that only carried an ERROR never reset. The minimum lifetime keeps a path
 * that drops every connection just after it opens to one attempt per minHealthyStreamMs + initialMs,
 * no faster than a server closing streams cleanly after minHealthyStreamMs is already re-watched
 * (at once). A stream that lasted the cap already spaced its attempts as far apart as the capped
 * backoff would, which covers sources that cannot report the server's answer. Requiring an event
 * instead would leave the watches of namespaces where nothing changes doubling across failures,
 * and a controller's reconciles held behind them.
 */
export async function runWatcher<T extends KubeObject = KubeObject>(
  source: ListWatcher<T>,
  sink: (ev: WatcherEvent<T>) => void | Promise<void>,
  signal: AbortSignal,
  opts: WatcherOptions = {},
): Promise<void> {
  const clock = opts.clock ?? realClock;
  const random = opts.random ?? Math.random;
  const pageSize = opts.pageSize ?? 500;
  const minT = opts.minTimeoutSeconds ?? 300;
  const maxT = opts.maxTimeoutSeconds ?? 600;
  // An idle watch still gets a BOOKMARK about once a minute (measured on v1.35), so 5 min means several missed.
  const idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
  const minHealthyStreamMs = opts.minHealthyStreamMs ?? 1000;
  const hooks = opts.hooks ?? {};
  const backoff = new Backoff(opts.backoff ?? {}, clock, random);
  // The API server refuses a watch from an expired resourceVersion at once, as the stream's first
  // line (410 from the watch cache's or etcd's own check), and a broken connection fails the request
  // within the connect; a resumed watch that neither delivers nor fails for this long was accepted
  // and is replaying the gap's events in order, so the consumer is no further behind than any watch.
  const resumeConfirmMs = opts.resumeConfirmMs ?? 1000;

  let watchList = (opts.watchList ?? true) && source.initialEvents === true;
  let rv: string | undefined;
  let listed = false;
  let needList = true;
  let lastWasGone = false;
  // Whether the consumer may be missing changes: a stream broke and nothing has shown it current since.
  let behind = false;
  const caughtUp = (): void => {
    if (!behind || signal.aborted) return;
    behind = false;
    hooks.onCaughtUp?.();
  };

  while (!signal.aborted) {
    let reason: RestartReason;
    let error: unknown;
    let delayMs = 0;
    // The state comes from this stream itself: the watcher is current only once its initial events end.
    const streaming = needList && watchList;
    try {
      if (needList && !watchList) {
        const started = clock.now();
        const listedAt = await listPages(source, pageSize, signal, !listed, sink);
        if (signal.aborted || listedAt === undefined) return;
        hooks.onList?.(listedAt.count, clock.now() - started);
        listed = true;
        needList = false;
        rv = listedAt.resourceVersion;
        caughtUp();
      }
      const timeoutSeconds = Math.floor(minT + random() * (maxT - minT));
      const confirm = behind && !streaming ? { afterMs: resumeConfirmMs, confirmed: caughtUp } : undefined;
      const progress: StreamProgress = { accepted: false };
      const opened = clock.now();
      const initial: InitialEvents | undefined = streaming
        ? {
            first: !listed,
            synced: (atRv, count) => {
              hooks.onList?.(count, clock.now() - opened);
              listed = true;
              needList = false;
              rv = atRv;
              caughtUp();
            },
          }
        : undefined;
      let outcome: StreamOutcome;
      try {
        outcome = await watchOnce(
          source,
          // A relist after 410 asks for the current state, as a list would, not for a window that has passed.
          streaming ? '' : (rv ?? ''),
          timeoutSeconds,
          idleTimeoutMs,
          minHealthyStreamMs,
          clock,
          signal,
          sink,
          (v) => {
            rv = v;
          },
          progress,
          confirm,
          initial,
        );
      } finally {
        const lived = clock.now() - opened;
        if ((progress.accepted && lived >= minHealthyStreamMs) || lived >= backoff.maxMs) {
          backoff.reset();
          // A 410 after a healthy stream is the routine one, not a repeat of the last.
          lastWasGone = false;
        }
      }
      if (signal.aborted) return;
      if (outcome === 'gone') {
        needList = true;
        reason = 'gone';
        // One 410 is routine (the window moved on); back-to-back 410s mean something is wrong, so slow down.
        delayMs = lastWasGone ? backoff.next() : 0;
        lastWasGone = true;
      } else {
        lastWasGone = false;
        reason = outcome === 'short' ? 'closed' : outcome;
        delayMs = outcome === 'closed' ? 0 : backoff.next();
      }
    } catch (err) {
      if (signal.aborted) return;
      if (streaming && err instanceof ApiError && (err.status === 400 || err.status === 422)) {
        // A server without WatchList refuses sendInitialEvents as invalid: list instead, at once and from now on.
        watchList = false;
        reason = 'error';
        delayMs = 0;
      } else if (isGone(err)) {
        needList = true;
        reason = 'gone';
        delayMs = lastWasGone ? backoff.next() : 0;
        lastWasGone = true;
      } else {
        lastWasGone = false;
        reason = 'error';
        delayMs = backoff.next();
      }
      error = err;
    }
    // A server timeout closes a healthy stream cleanly: the watch resumes at once from the last
    // resourceVersion and replays what it missed, so that is no gap. Anything else may be one.
    if (reason !== 'closed' || delayMs > 0) {
      behind = true;
      hooks.onBehind?.(reason);
    }
    hooks.onRestart?.(reason, error === undefined ? { delayMs } : { delayMs, error });
    if (delayMs > 0) await sleep(delayMs, clock, signal);
  }
}

/** Lists every page, handing each to `sink` before fetching the next; undefined if aborted part-way. */
async function listPages<T extends KubeObject>(
  source: ListWatcher<T>,
  limit: number,
  signal: AbortSignal,
  initial: boolean,
  sink: (ev: WatcherEvent<T>) => void | Promise<void>,
): Promise<{ resourceVersion: string; count: number } | undefined> {
  let cont: string | undefined;
  let count = 0;
  let first = true;
  for (;;) {
    let page: SourcePage<T>;
    try {
      page = await source.list({ limit, continue: cont, signal });
    } catch (err) {
      // An expired continue token: paging again would likely expire again, so one full list, as client-go's pager does.
      if (cont === undefined || !isGone(err)) throw err;
      page = await source.list({ limit: 0, signal });
      if (signal.aborted) return undefined;
      await sink({ type: 'page', objects: page.items, first: true, last: true, initial });
      return { resourceVersion: page.resourceVersion, count: page.items.length };
    }
    if (signal.aborted) return undefined;
    cont = page.continue || undefined;
    count += page.items.length;
    await sink({ type: 'page', objects: page.items, first, last: cont === undefined, initial });
    first = false;
    if (cont === undefined) return { resourceVersion: page.resourceVersion, count };
  }
}

/** A stream that starts with the current state (`sendInitialEvents`), and what to do once it has all of it. */
interface InitialEvents {
  /** Whether this is the watcher's first state (its `page` events carry `initial`). */
  first: boolean;
  /** The initial events ended at resourceVersion `rv`, after `count` objects. */
  synced(rv: string, count: number): void;
}

async function watchOnce<T extends KubeObject>(
  source: ListWatcher<T>,
  resourceVersion: string,
  timeoutSeconds: number,
  idleTimeoutMs: number,
  minHealthyStreamMs: number,
  clock: Clock,
  signal: AbortSignal,
  sink: (ev: WatcherEvent<T>) => void | Promise<void>,
  setRv: (rv: string) => void,
  progress: StreamProgress,
  confirm?: { afterMs: number; confirmed: () => void },
  initial?: InitialEvents,
): Promise<StreamOutcome> {
  const ctrl = new AbortController();
  const started = clock.now();
  // The idle watchdog and the caller's abort race each next(): a dead TCP stream may never settle on its own.
  // Each next() gets a promise of its own, settled by whichever comes first. Racing one promise that lives as
  // long as the stream (Promise.race) would add a reaction to it per event, each holding that event's object
  // until the stream ends: minutes of every watched object's raw JSON, megabytes at a few thousand objects.
  let stopped = false;
  let wakeNext: ((v: 'stop') => void) | undefined;
  const wake = (): void => {
    stopped = true;
    wakeNext?.('stop');
  };
  const next = (): Promise<IteratorResult<WatchEvent<T>> | 'stop'> =>
    new Promise((resolve, reject) => {
      if (stopped) return resolve('stop');
      wakeNext = resolve;
      iter.next().then(resolve, reject);
    });
  const onAbort = (): void => {
    ctrl.abort(signal.reason);
    wake();
  };
  // An abort that fired before this point (e.g. while the sink ran) sends no event; check it now.
  if (signal.aborted) return 'closed';
  signal.addEventListener('abort', onAbort, { once: true });
  let silent = false;
  let timer: unknown;
  const arm = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      silent = true;
      ctrl.abort(new Error(`no watch event for ${idleTimeoutMs} ms`));
      wake();
    }, idleTimeoutMs);
  };
  const disarm = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
  };
  let confirmTimer: unknown;
  const confirmed = (): void => {
    if (confirmTimer !== undefined) clock.clearTimeout(confirmTimer);
    confirmTimer = undefined;
    const c = confirm;
    confirm = undefined;
    c?.confirmed();
  };
  if (confirm) confirmTimer = clock.setTimeout(confirmed, confirm.afterMs);

  const onOpen = (): void => {
    progress.accepted = true;
  };
  // While the initial events come, each is one page of the state (so the store replaces what it held with
  // exactly them) and the resourceVersion stays put: theirs are the objects' own, in no order, and a stream
  // broken part-way starts the state over rather than resuming from one of them.
  let streamingState = initial !== undefined;
  let firstPage = true;
  let stateCount = 0;
  const request: WatchRequest = { resourceVersion, allowWatchBookmarks: true, timeoutSeconds, onOpen };
  if (initial) request.sendInitialEvents = true;
  const iter = source.watch(request, ctrl.signal)[Symbol.asyncIterator]();
  try {
    arm();
    for (;;) {
      const got = await next();
      wakeNext = undefined;
      if (got === 'stop') return silent ? 'silent' : 'closed';
      if (got.done) return clock.now() - started < minHealthyStreamMs ? 'short' : 'closed';
      disarm();
      const ev = got.value;
      const evRv = ev.object?.metadata?.resourceVersion;
      switch (ev.type) {
        case 'ERROR': {
          const status = ev.object as unknown as Status;
          if (status.code === 410) return 'gone';
          throw new WatchStreamError(status);
        }
        case 'BOOKMARK':
          if (streamingState && ev.object?.metadata?.annotations?.[INITIAL_EVENTS_END] === 'true') {
            await sink({ type: 'page', objects: [], first: firstPage, last: true, initial: initial!.first });
            streamingState = false;
            initial!.synced(evRv ?? '', stateCount);
          }
          break;
        case 'ADDED':
        case 'MODIFIED':
          if (streamingState) {
            await sink({ type: 'page', objects: [ev.object], first: firstPage, last: false, initial: initial!.first });
            firstPage = false;
            stateCount++;
          } else await sink({ type: 'applied', object: ev.object });
          break;
        case 'DELETED':
          await sink({ type: 'deleted', object: ev.object });
          break;
        default:
          throw new WatchStreamError({ message: `unknown watch event type ${String(ev.type)}` });
      }
      if (evRv && !streamingState) setRv(evRv);
      progress.accepted = true;
      // After the sink: the first event of a resumed stream is in the store when the consumer hears it is current.
      confirmed();
      if (signal.aborted) return 'closed';
      arm();
    }
  } finally {
    disarm();
    if (confirmTimer !== undefined) clock.clearTimeout(confirmTimer);
    signal.removeEventListener('abort', onAbort);
    ctrl.abort();
    // Not awaited: on a hung stream return() would queue behind the pending next().
    void Promise.resolve(iter.return?.()).catch(() => undefined);
  }
}

function sleep(ms: number, clock: Clock, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const t = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clock.clearTimeout(t);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
