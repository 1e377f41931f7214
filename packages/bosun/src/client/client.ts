import { setMaxListeners } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { type ClientCertificate, type ClusterConfig, clientNodeCredentials, importClientNode, loadClusterConfig } from './kubeconfig.js';
import {
  ApiError,
  KubeConfigError,
  ObjectNameRequiredError,
  type RequestTarget,
  RequestTimeoutError,
  type Status,
  TransportError,
  parseRetryAfter,
} from './errors.js';
import { LineSplitter } from './lines.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, retryDelay } from './retry.js';
import { type Transport, type TransportKind, type TransportResponse, transportError } from './transport.js';
import { createTransport, transportFromEnv } from './transport-auto.js';
import { type KubeObject, type ResourceType, apiVersionOf } from './types.js';

export type { TransportKind } from './transport.js';

/** How to find the cluster: an explicit kubeconfig file and/or context, else the default chain. */
export interface KubeClientConfig {
  /** Path to a kubeconfig; when absent: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** Context to use instead of the kubeconfig's current-context. */
  context?: string;
  /** HTTP/1.1 only: upper bound on concurrent non-watch connections (default 64); watches have their own pool. */
  maxSockets?: number;
  /**
   * Default deadline of non-watch requests in ms (default 60 s), counted from the call, retries and
   * waiting for a connection included; watches are bounded by their own timeoutSeconds.
   */
  requestTimeoutMs?: number;
  /** User-Agent header (default `bosun`). */
  userAgent?: string;
  /** HTTP version: 'auto' (default, or $BOSUN_TRANSPORT) uses HTTP/2 when the server agrees by ALPN, else HTTP/1.1. */
  transport?: TransportKind;
  /**
   * HTTP/2: PING a connection nothing was read from for this long (default 25 s). With the PING timeout
   * a dead connection is dropped 35 s after its last byte, leaving the reconnect and relist inside 45 s.
   */
  readIdleTimeoutMs?: number;
  /**
   * HTTP/2: drop a connection whose PING is not answered within this (default 10 s),
   * failing its requests and watches. HTTP/1.1: a request's socket that reads nothing for readIdle + ping is dropped.
   */
  pingTimeoutMs?: number;
  /**
   * HTTP/1.1: drop a watch socket (with bookmarks) that reads nothing for this long (default 90 s: the
   * API server sends a bookmark about once a minute, so a healthy watch is never this quiet).
   */
  watchIdleTimeoutMs?: number;
  /** Retries of throttled (429), failed (5xx) and, for GETs, unanswered requests; default 10 as in client-go. */
  maxRetries?: number;
}

/** Options of a list request. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the server returns a `continue` token when more remain. */
  limit?: number;
  /** Token from a previous page. */
  continue?: string;
  /** '' or absent for a consistent read, '0' for any cached version. */
  resourceVersion?: string;
  signal?: AbortSignal;
}

/** One page of a list: the objects, the collection resourceVersion to watch from, and the next-page token. */
export interface ListResult<T extends KubeObject = KubeObject> {
  items: T[];
  resourceVersion: string;
  /** Non-empty when more pages remain. */
  continue: string | undefined;
}

/** Options of a watch request. */
export interface WatchOptions {
  namespace?: string;
  /** Start after this resourceVersion; events older than the server's window yield 410 Gone. */
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** Server-side timeout after which the server closes the stream cleanly. */
  timeoutSeconds?: number;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called once the server has accepted the watch (answered 2xx), before any event is read. */
  onOpen?: () => void;
  /**
   * Start with the current state (WatchList): ADDED events for every object, then a BOOKMARK annotated
   * `k8s.io/initial-events-end` at the state's resourceVersion. Sent with `resourceVersionMatch=NotOlderThan`
   * and bookmarks, as the API requires.
   */
  sendInitialEvents?: boolean;
}

/** The event types a watch stream carries. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One line of a watch stream; for ERROR the object is a Status. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  object: T;
}

/** Options of a server-side apply. */
export interface ApplyOptions {
  /** The owner of the applied fields; required by the API. */
  fieldManager: string;
  /** Take ownership of fields other managers own instead of failing with a conflict. */
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** See `WriteOptions.metadataOnly`. */
  metadataOnly?: boolean;
}

/** Options of writes other than apply. */
export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  /**
   * Ask for the written object's metadata only (the API server answers a `PartialObjectMetadata`:
   * name, uid, resourceVersion, labels, annotations, managedFields): less for the API server to encode
   * and for this process to parse, when the caller needs nothing of the answer but its metadata.
   */
  metadataOnly?: boolean;
}

/** The Accept header asking the API server to answer with an object's metadata only. */
const METADATA_ONLY_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

function acceptFor(opts: { metadataOnly?: boolean }): Record<string, string> | undefined {
  return opts.metadataOnly ? { Accept: METADATA_ONLY_ACCEPT } : undefined;
}

/** The patch formats the API accepts. */
export type PatchType = 'merge' | 'json' | 'strategic';

/** Options of a patch. */
export interface PatchOptions extends WriteOptions {
  /** e.g. 'status' or 'scale'. */
  subresource?: string;
}

/** Options of a delete. */
export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  /** Delete only if the object still has this uid/resourceVersion. */
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** A raw request to the API server. */
/**
 * Decides, right before each attempt of a write (any method but GET) is sent, whether it may go out;
 * an Error refuses it and is what the caller gets. A leader uses it to send nothing once its term is over.
 */
export type WriteGate = (target: RequestTarget) => Error | undefined;

export interface RawRequest {
  method: string;
  /** Path beginning with '/', without query. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Serialized with JSON.stringify unless it is already a string or Buffer. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Overrides the client's request timeout; 0 disables it. */
  timeoutMs?: number;
  /** Describes the request in error messages. */
  target?: RequestTarget;
}

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** Cached credentials refresh this often, so rotated tokens (exec plugins, projected SA tokens) are picked up. */
const AUTH_TTL_MS = 60_000;

/** The URL path of a collection or object of `type`. */
export function resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let p = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  if (type.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${type.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

/** An API server client doing its own HTTP over a keep-alive agent; the hot path of every controller. */
export class KubeClient {
  /** The API server base URL. */
  readonly server: string;
  /** The cluster, context and credentials this client uses. */
  readonly config: ClusterConfig;
  private readonly base: URL;
  private readonly transport: Transport;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly retry: RetryPolicy;
  private creds: Promise<Record<string, string>> | undefined;
  private credsFetchedAt = 0;
  /** Bumped on every credential fetch, so a burst of 401s triggers one refresh, not one each. */
  private credsGeneration = 0;
  private execCert: ClientCertificate | undefined;
  private writeGate: WriteGate | undefined;

  private constructor(config: ClusterConfig, opts: KubeClientConfig) {
    this.config = config;
    this.server = config.server;
    this.base = new URL(this.server);
    this.transport = createTransport(opts.transport ?? transportFromEnv() ?? 'auto', {
      origin: this.base,
      ca: config.ca,
      cert: config.cert,
      key: config.key,
      skipTLSVerify: config.skipTLSVerify,
      servername: config.tlsServerName,
      maxSockets: opts.maxSockets ?? 64,
      readIdleTimeoutMs: opts.readIdleTimeoutMs ?? 25_000,
      pingTimeoutMs: opts.pingTimeoutMs ?? 10_000,
      watchIdleTimeoutMs: opts.watchIdleTimeoutMs ?? 90_000,
    });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.userAgent = opts.userAgent ?? 'bosun';
    this.retry = { ...DEFAULT_RETRY_POLICY, maxRetries: opts.maxRetries ?? DEFAULT_RETRY_POLICY.maxRetries };
  }

  /** The HTTP version in use: 'h2' or 'http/1.1' ('auto' before the first connection decided). */
  get protocol(): 'h2' | 'http/1.1' | 'auto' {
    return this.transport.protocol;
  }

  /** Builds a client from a kubeconfig file or the default chain ($KUBECONFIG, ~/.kube/config, in-cluster). */
  static fromConfig(opts: KubeClientConfig = {}): KubeClient {
    return new KubeClient(loadClusterConfig({ kubeconfig: opts.kubeconfig, context: opts.context }), opts);
  }

  /** Builds a client from a ClusterConfig (see `loadClusterConfig`). */
  static fromClusterConfig(config: ClusterConfig, opts: KubeClientConfig = {}): KubeClient {
    return new KubeClient(config, opts);
  }

  /** Builds a client from a `@kubernetes/client-node` KubeConfig someone already loaded. */
  static fromKubeConfig(kc: KubeConfig, opts: KubeClientConfig = {}): KubeClient {
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new KubeConfigError(`kubeconfig context '${kc.getCurrentContext()}' has no cluster; fix the context's cluster entry`);
    const user = kc.getCurrentUser();
    const read = (file?: string, data?: string): Buffer | undefined =>
      data ? Buffer.from(data, 'base64') : file ? readFileSyncSafe(file) : undefined;
    const ctx = kc.getContextObject(kc.getCurrentContext());
    const creds = clientNodeCredentials(async (refresh) => {
      if (!refresh) return kc;
      // A refresh must not hit the exec credential client-node cached in `kc`.
      const { KubeConfig: KC } = await importClientNode(
        `the KubeConfig of context '${kc.getCurrentContext()}' is refreshed through its exec plugin, which`,
      );
      const fresh = new KC();
      fresh.loadFromString(kc.exportConfig());
      fresh.setCurrentContext(kc.getCurrentContext());
      return fresh;
    });
    return new KubeClient(
      {
        server: cluster.server.replace(/\/+$/, ''),
        namespace: ctx?.namespace ?? 'default',
        context: kc.getCurrentContext(),
        ca: read(cluster.caFile, cluster.caData),
        cert: read(user?.certFile, user?.certData),
        key: read(user?.keyFile, user?.keyData),
        skipTLSVerify: cluster.skipTLSVerify,
        tlsServerName: cluster.tlsServerName,
        authHeaders: creds.authHeaders,
        clientCertificate: creds.clientCertificate,
      },
      opts,
    );
  }

  /** Installs (or, with undefined, removes) the check every write must pass as it is sent, retries included. */
  setWriteGate(gate: WriteGate | undefined): void {
    this.writeGate = gate;
  }

  /**
   * Throws what the write gate answers for `target` now, as a write would get it: for an action this
   * client does not send (a call to an outside service) that must be fenced like the writes it does.
   */
  checkWrite(target: RequestTarget): void {
    const refused = this.writeGate?.(target);
    if (refused) throw refused;
  }

  /** Closes every connection (HTTP/2 sessions and HTTP/1.1 pools); requests and watches in flight fail. */
  close(): void {
    this.transport.close();
  }

  /** The namespace of the current kubeconfig context, or 'default'. */
  defaultNamespace(): string {
    return this.config.namespace;
  }

  /** Lists one page of `type`; follow `continue` for more. */
  async list<T extends KubeObject>(type: ResourceType<T>, opts: ListOptions = {}): Promise<ListResult<T>> {
    const res = await this.request<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>({
      method: 'GET',
      path: resourcePath(type, opts.namespace),
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
      signal: opts.signal,
      target: { verb: 'list', kind: type.kind, namespace: opts.namespace },
    });
    const items = res.items ?? [];
    // List items arrive without apiVersion/kind; handlers and owner references need them.
    const apiVersion = apiVersionOf(type);
    for (const it of items) {
      it.apiVersion ??= apiVersion;
      it.kind ??= type.kind;
    }
    return { items, resourceVersion: res.metadata?.resourceVersion ?? '', continue: res.metadata?.continue || undefined };
  }

  /**
   * Opens a watch and yields its events as they arrive, parsing newline-delimited JSON incrementally.
   * Ends when the server closes the stream or `signal` fires; throws ApiError if the server refuses it.
   */
  async *watch<T extends KubeObject>(
    type: ResourceType<T>,
    opts: WatchOptions,
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const target: RequestTarget = { verb: 'watch', kind: type.kind, namespace: opts.namespace };
    // One controller for the stream's life: the caller's abort ends the stream and the connection's read.
    const ctrl = new AbortController();
    const onAbort = (): void => ctrl.abort(signal?.reason);
    if (signal?.aborted) return;
    signal?.addEventListener('abort', onAbort, { once: true });
    let res: TransportResponse | undefined;
    try {
      const req: RawRequest = {
        method: 'GET',
        path: resourcePath(type, opts.namespace),
        query: {
          watch: 1,
          resourceVersion: opts.resourceVersion,
          allowWatchBookmarks: opts.allowWatchBookmarks || opts.sendInitialEvents ? true : undefined,
          sendInitialEvents: opts.sendInitialEvents ? true : undefined,
          resourceVersionMatch: opts.sendInitialEvents ? 'NotOlderThan' : undefined,
          timeoutSeconds: opts.timeoutSeconds,
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
        },
        target,
      };
      const watch = { bookmarks: opts.allowWatchBookmarks === true || opts.sendInitialEvents === true };
      const gen = this.credsGeneration;
      res = await this.send(req, ctrl.signal, watch);
      if (res.status === 401) {
        res.body.destroy();
        await this.refreshCredentials(gen);
        res = await this.send(req, ctrl.signal, watch);
      }
      if (res.status >= 300) throw toApiError(target, res.status, res.headers, await readBody(res.body));
      opts.onOpen?.();
      const lines = new LineSplitter();
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        for (const line of lines.push(chunk)) yield JSON.parse(line) as WatchEvent<T>;
      }
      for (const line of lines.end()) yield JSON.parse(line) as WatchEvent<T>;
    } catch (err) {
      if (signal?.aborted) return;
      if (err instanceof ApiError) throw err;
      throw transportError(target, err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // A consumer that stops early must not leave the stream open.
      res?.body.destroy();
    }
  }

  /** Reads one object; throws ApiError 404 if absent. */
  get<T extends KubeObject>(type: ResourceType<T>, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'GET',
      path: resourcePath(type, namespace, name),
      signal,
      target: { verb: 'get', kind: type.kind, namespace, name },
    });
  }

  /** Creates an object (POST); `metadata.generateName` works. */
  create<T extends KubeObject>(type: ResourceType<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = obj.metadata.namespace;
    return this.request<T>({
      method: 'POST',
      path: resourcePath(type, ns),
      query: { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined },
      body: withTypeMeta(type, obj),
      headers: acceptFor(opts),
      signal: opts.signal,
      target: { verb: 'create', kind: type.kind, namespace: ns, name: obj.metadata.name ?? obj.metadata.generateName },
    });
  }

  /** Replaces an object (PUT); fails with 409 if `metadata.resourceVersion` is stale. */
  update<T extends KubeObject>(type: ResourceType<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(type, obj, undefined, 'update', opts);
  }

  /** Replaces the status subresource (PUT …/status); spec changes in `obj` are ignored by the server. */
  replaceStatus<T extends KubeObject>(type: ResourceType<T>, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(type, obj, 'status', 'replaceStatus', opts);
  }

  /** Server-side apply: sends the fields this manager owns; apiVersion/kind are filled in from `type`. */
  apply<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    return this.applyTo<T>(type, obj, undefined, opts);
  }

  /** Server-side apply on the status subresource. */
  applyStatus<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    return this.applyTo<T>(type, obj, 'status', opts);
  }

  /** Patches an object with a merge, JSON or strategic-merge patch, optionally on a subresource. */
  patch<T extends KubeObject>(
    type: ResourceType<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    patchType: PatchType = 'merge',
    opts: PatchOptions = {},
  ): Promise<T> {
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(type, namespace, name, opts.subresource),
      query: { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined },
      body: patch,
      contentType: PATCH_CONTENT_TYPES[patchType],
      headers: acceptFor(opts),
      signal: opts.signal,
      target: { verb: 'patch', kind: type.kind, namespace, name },
    });
  }

  /** Deletes an object; returns the object (if finalizers delay deletion) or a Status. */
  delete(type: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<KubeObject | Status> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.dryRun) body.dryRun = ['All'];
    return this.request<KubeObject | Status>({
      method: 'DELETE',
      path: resourcePath(type, namespace, name),
      body,
      signal: opts.signal,
      target: { verb: 'delete', kind: type.kind, namespace, name },
    });
  }

  /**
   * Sends a request and decodes the JSON answer; throws ApiError on non-2xx, TransportError on network
   * failure or when the deadline (`timeoutMs`, from this call) passes. 429s and 5xx are retried as the
   * server's Retry-After says, and GETs also after a connection failure, within the deadline.
   */
  async request<T = unknown>(req: RawRequest): Promise<T> {
    const target = req.target ?? { verb: req.method, name: req.path };
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    const deadline = new Deadline(timeoutMs, req.signal);
    try {
      let refreshed = false;
      // A deadline that cuts a retry short would otherwise report only "timed out", hiding a refusal or a reset.
      let lastFailure: Error | undefined;
      const timedOut = (reason: unknown): TransportError =>
        transportError(
          target,
          reason instanceof RequestTimeoutError && lastFailure ? new RequestTimeoutError(reason.timeoutMs, lastFailure) : reason,
        );
      for (let retries = 0; ;) {
        let status: number;
        let headers: IncomingHttpHeaders;
        let text: string;
        const gen = this.credsGeneration;
        // Checked at each attempt, not once per call: the process may have been frozen since the call or the last attempt.
        const refused = req.method === 'GET' ? undefined : this.writeGate?.(target);
        if (refused) throw refused;
        // Checked again as the request is handed to a connection: getting credentials or a connection may take a
        // freeze, and a resumed process must not send what its gate would now refuse.
        let refusedAtSend: Error | undefined;
        const beforeSend =
          req.method === 'GET' || !this.writeGate
            ? undefined
            : () => {
                refusedAtSend = this.writeGate?.(target);
                if (refusedAtSend) throw refusedAtSend;
              };
        try {
          const res = await this.send(req, deadline.signal, undefined, beforeSend);
          ({ status, headers } = res);
          text = await readBody(res.body);
        } catch (err) {
          if (refusedAtSend !== undefined && err === refusedAtSend) throw err;
          if (deadline.signal.aborted) throw timedOut(deadline.signal.reason);
          const te = transportError(target, err);
          const delay = retryDelay(
            this.retry,
            retries,
            req.method,
            { kind: 'transport', unprocessed: te.unprocessed },
            deadline.remaining(),
          );
          if (delay === undefined) throw te;
          retries++;
          // The cause, not the TransportError: its message would name the request a second time.
          lastFailure = te.cause instanceof Error ? te.cause : te;
          await deadline.sleep(delay).catch((e: unknown) => {
            throw timedOut(e);
          });
          continue;
        }
        if (status === 401 && !refreshed) {
          // Credentials may have rotated under us: re-read the token file or re-run the plugin, once.
          refreshed = true;
          await this.refreshCredentials(gen);
          continue;
        }
        if (status >= 300) {
          const err = toApiError(target, status, headers, text);
          const delay = retryDelay(
            this.retry,
            retries,
            req.method,
            { kind: 'status', status, retryAfterSeconds: err.retryAfterSeconds },
            deadline.remaining(),
          );
          if (delay === undefined) throw err;
          retries++;
          lastFailure = err;
          await deadline.sleep(delay).catch((e: unknown) => {
            throw timedOut(e);
          });
          continue;
        }
        if (text === '') return undefined as T;
        try {
          return JSON.parse(text) as T;
        } catch (err) {
          throw new TransportError(target, err);
        }
      }
    } finally {
      deadline.dispose();
    }
  }

  private put<T extends KubeObject>(type: ResourceType, obj: T, sub: string | undefined, verb: string, opts: WriteOptions): Promise<T> {
    const { namespace, name } = obj.metadata;
    if (!name) throw new ObjectNameRequiredError(`${verb} ${type.kind}: metadata.name is required (set the object's metadata.name)`);
    return this.request<T>({
      method: 'PUT',
      path: resourcePath(type, namespace, name, sub),
      query: { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined },
      body: withTypeMeta(type, obj),
      headers: acceptFor(opts),
      signal: opts.signal,
      target: { verb, kind: type.kind, namespace, name },
    });
  }

  private applyTo<T extends KubeObject>(type: ResourceType, obj: KubeObject, sub: string | undefined, opts: ApplyOptions): Promise<T> {
    const { namespace, name } = obj.metadata;
    const verb = sub ? `apply ${sub}` : 'apply';
    if (!name)
      throw new ObjectNameRequiredError(
        `${verb} ${type.kind}: metadata.name is required for server-side apply (set the object's metadata.name)`,
      );
    // managedFields in an apply body is rejected or misread; objects read from the API carry them.
    const typed = withTypeMeta(type, obj);
    // A copy: `obj` may be a (frozen) cached object, which must not change.
    const body = typed.metadata.managedFields ? { ...typed, metadata: { ...typed.metadata, managedFields: undefined } } : typed;
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(type, namespace, name, sub),
      query: { fieldManager: opts.fieldManager, force: opts.force ? true : undefined, dryRun: opts.dryRun ? 'All' : undefined },
      // JSON is YAML, and JSON.stringify is far faster than a YAML emitter.
      body,
      contentType: 'application/apply-patch+yaml',
      headers: acceptFor(opts),
      signal: opts.signal,
      target: { verb, kind: type.kind, namespace, name },
    });
  }

  private auth(): Promise<Record<string, string>> {
    if (!this.creds || Date.now() - this.credsFetchedAt > AUTH_TTL_MS) this.fetchCredentials(false);
    return this.creds!;
  }

  /** Refetches credentials after a 401, unless another request already did since `gen`. */
  private async refreshCredentials(gen: number): Promise<void> {
    if (gen === this.credsGeneration) this.fetchCredentials(true);
    await this.creds;
  }

  private fetchCredentials(refresh: boolean): void {
    this.credsFetchedAt = Date.now();
    this.credsGeneration++;
    const p = (async () => {
      const headers = await this.config.authHeaders(refresh ? { refresh } : undefined);
      const cert = await this.config.clientCertificate?.();
      if (cert && !sameCertificate(cert, this.execCert)) {
        this.execCert = cert;
        this.transport.setClientCertificate(cert.cert, cert.key);
      }
      return headers;
    })();
    p.catch(() => {
      if (this.creds === p) this.creds = undefined;
    });
    this.creds = p;
  }

  private async send(
    req: RawRequest,
    signal: AbortSignal,
    watch?: { bookmarks: boolean },
    beforeSend?: () => void,
  ): Promise<TransportResponse> {
    const target = req.target ?? { verb: req.method, name: req.path };
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.userAgent,
      ...(await this.auth()),
      ...req.headers,
    };
    let payload: string | Buffer | undefined;
    if (req.body !== undefined) {
      payload = typeof req.body === 'string' || Buffer.isBuffer(req.body) ? req.body : JSON.stringify(req.body);
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    let path = (this.base.pathname === '/' ? '' : this.base.pathname) + req.path;
    if (req.query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query)) if (v !== undefined && v !== '') qs.set(k, String(v));
      const s = qs.toString();
      if (s) path += `?${s}`;
    }
    return this.transport.request({
      method: req.method,
      path,
      headers,
      body: payload,
      signal,
      watch: watch !== undefined,
      bookmarks: watch?.bookmarks ?? false,
      target,
      beforeSend,
    });
  }
}

/**
 * A request's deadline and abort in one signal: the timer starts when the request is issued, so
 * waiting for a connection, retries and reading the body all count against it.
 */
class Deadline {
  private readonly ctrl = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly at: number;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    timeoutMs: number,
    private readonly caller: AbortSignal | undefined,
  ) {
    this.at = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    if (timeoutMs > 0) this.timer = setTimeout(() => this.ctrl.abort(new RequestTimeoutError(timeoutMs)), timeoutMs);
    if (caller?.aborted) this.ctrl.abort(caller.reason ?? new Error('aborted'));
    else if (caller) {
      this.onAbort = () => this.ctrl.abort(caller.reason ?? new Error('aborted'));
      // One listener per request in flight under this signal is the normal case (a reconcile's writes, a
      // manager's requests), each removed in dispose(): not the leak Node's warning at 11 listeners guesses.
      setMaxListeners(0, caller);
      caller.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.ctrl.signal;
  }

  remaining(): number {
    return this.at - Date.now();
  }

  /** Waits `ms`, rejecting with the abort reason if the deadline or the caller's abort comes first. */
  sleep(ms: number): Promise<void> {
    const signal = this.ctrl.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal.reason);
      };
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    if (this.onAbort) this.caller?.removeEventListener('abort', this.onAbort);
  }
}

function sameCertificate(a: ClientCertificate, b: ClientCertificate | undefined): boolean {
  return b !== undefined && String(a.cert) === String(b.cert) && String(a.key) === String(b.key);
}

function withTypeMeta<T extends KubeObject>(type: ResourceType, obj: T): T {
  const apiVersion = apiVersionOf(type);
  if (obj.apiVersion === apiVersion && obj.kind === type.kind) return obj;
  return { ...obj, apiVersion, kind: type.kind };
}

function readFileSyncSafe(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KubeConfigError(`cannot read ${file} named in kubeconfig: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

async function readBody(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function toApiError(target: RequestTarget, status: number, headers: IncomingHttpHeaders, text: string): ApiError {
  let body: Status | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') body = parsed as Status;
  } catch {
    body = text ? { message: text.slice(0, 500) } : undefined;
  }
  const header = headers['retry-after'];
  return new ApiError(target, status, body, parseRetryAfter(Array.isArray(header) ? header[0] : header));
}
