// Test doubles of the list/watch source function (not of the API server), shared by watcher and cache tests.
import type { WatchEvent } from '../client/client.js';
import type { KubeObject } from '../client/types.js';
import type { ListWatcher, SourcePage, WatchRequest } from './watcher.js';

/** A watch stream the test feeds by hand; it ends when the watcher aborts it, like a real request. */
export class FakeStream implements AsyncIterable<WatchEvent> {
  private buffered: IteratorResult<WatchEvent>[] = [];
  private failure: unknown;
  private waiting: { resolve: (r: IteratorResult<WatchEvent>) => void; reject: (e: unknown) => void } | undefined;
  aborted = false;

  constructor(
    signal: AbortSignal,
    private readonly honourAbort = true,
    private readonly onOpen?: () => void,
  ) {
    const onAbort = (): void => {
      this.aborted = true;
      if (this.honourAbort) this.end();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  /** Answers the request with 200 before any event, as the server accepting the watch; the watcher hears it through `onOpen`. */
  open(): void {
    this.onOpen?.();
  }

  /** Delivers one event to the watcher. */
  push(type: WatchEvent['type'], object: KubeObject): void {
    this.deliver({ done: false, value: { type, object } });
  }

  /** Closes the stream cleanly, like a server timeout. */
  end(): void {
    this.deliver({ done: true, value: undefined });
  }

  /** Breaks the stream with `err`, like a reset connection. */
  fail(err: unknown): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(err);
    } else this.failure = err;
  }

  private deliver(r: IteratorResult<WatchEvent>): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(r);
    } else this.buffered.push(r);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => {
        const r = this.buffered.shift();
        if (r) return Promise.resolve(r);
        if (this.failure !== undefined) {
          const f = this.failure;
          this.failure = undefined;
          return Promise.reject(f);
        }
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }
}

/** One watch the source was asked to open, with the stream the test drives. */
export interface WatchCall {
  resourceVersion: string;
  timeoutSeconds: number;
  allowWatchBookmarks: boolean;
  sendInitialEvents?: boolean;
  stream: FakeStream;
}

/** An in-memory list/watch source: lists return `pages`, watches return streams the test controls. */
export class FakeListWatcher implements ListWatcher {
  pages: SourcePage[] = [{ items: [], resourceVersion: '1' }];
  listCalls: { limit: number; continue?: string | undefined }[] = [];
  watchCalls: WatchCall[] = [];
  listError: unknown;
  watchError: unknown;
  honourAbort = true;
  /** Whether the watcher may ask this source for initial events (WatchList); the test then pushes them and the closing bookmark. */
  initialEvents = false;

  list(opts: { limit: number; continue?: string | undefined }): Promise<SourcePage> {
    this.listCalls.push({ limit: opts.limit, continue: opts.continue });
    if (this.listError !== undefined) {
      const e = this.listError;
      return Promise.reject(e);
    }
    const idx = opts.continue ? Number(opts.continue) : 0;
    return Promise.resolve(this.pages[idx]!);
  }

  watch(opts: WatchRequest, signal: AbortSignal): AsyncIterable<WatchEvent> {
    if (this.watchError !== undefined) {
      const e = this.watchError;
      this.watchError = undefined;
      // Like KubeClient.watch: the error surfaces on the first next().
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(e) }),
      };
    }
    const stream = new FakeStream(signal, this.honourAbort, opts.onOpen);
    const { onOpen: _onOpen, ...call } = opts;
    this.watchCalls.push({ ...call, stream });
    return stream;
  }

  /** The stream of the most recent watch. */
  lastStream(): FakeStream {
    const c = this.watchCalls.at(-1);
    if (!c) throw new Error('FakeListWatcher: no watch has been started yet');
    return c.stream;
  }
}
