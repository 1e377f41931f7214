import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { createSecureContext } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadClusterConfig, type ClusterConfig } from './kubeconfig.js';
import { ApiError, KubeConfigError, type RequestTarget, type Status, TransportError, parseRetryAfter } from './errors.js';
import { type KubeObject, type ResourceType, apiVersionOf } from './types.js';

/** How to find the cluster: an explicit kubeconfig file and/or context, else the default chain. */
export interface KubeClientConfig {
  /** Path to a kubeconfig; when absent: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** Context to use instead of the kubeconfig's current-context. */
  context?: string;
  /** Upper bound on concurrent connections to the API server (default 64). */
  maxSockets?: number;
  /** Default timeout of non-watch requests in ms (default 60 s); watches are bounded by their own timeoutSeconds. */
  requestTimeoutMs?: number;
  /** User-Agent header (default `bosun`). */
  userAgent?: string;
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
}

/** Options of writes other than apply. */
export interface WriteOptions {
  fieldManager?: string;
  dryRun?: boolean;
  signal?: AbortSignal;
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
  private readonly transport: typeof https | typeof http;
  private readonly agent: http.Agent;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private authHeaders: Promise<Record<string, string>> | undefined;
  private authFetchedAt = 0;

  private constructor(config: ClusterConfig, opts: KubeClientConfig) {
    this.config = config;
    this.server = config.server;
    this.base = new URL(this.server);
    const plain = this.base.protocol === 'http:';
    this.transport = plain ? http : https;
    // One secure context for every pooled socket: built per socket, parsing the keys costs each new connection ~2 ms of CPU.
    const tls: https.AgentOptions = {};
    if (!plain && (config.ca || config.cert || config.key)) tls.secureContext = createSecureContext({ ca: config.ca, cert: config.cert, key: config.key });
    if (config.skipTLSVerify) tls.rejectUnauthorized = false;
    if (config.tlsServerName) tls.servername = config.tlsServerName;
    const agentOpts: https.AgentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 64, keepAliveMsecs: 30_000, ...tls };
    this.agent = plain ? new http.Agent(agentOpts) : new https.Agent(agentOpts);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.userAgent = opts.userAgent ?? 'bosun';
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
    if (!cluster) throw new KubeConfigError(`kubeconfig context '${kc.getCurrentContext()}' has no cluster; fix the context's cluster entry`);
    const user = kc.getCurrentUser();
    const read = (file?: string, data?: string): Buffer | undefined => (data ? Buffer.from(data, 'base64') : file ? readFileSyncSafe(file) : undefined);
    const ctx = kc.getContextObject(kc.getCurrentContext());
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
        authHeaders: () => fetchAuthHeaders(kc),
      },
      opts,
    );
  }

  /** Closes pooled connections; in-flight requests finish or fail. */
  close(): void {
    this.agent.destroy();
  }

  /** The namespace of the current kubeconfig context, or 'default'. */
  defaultNamespace(): string {
    return this.config.namespace;
  }

  /** Lists one page of `type`; follow `continue` for more. */
  async list<T extends KubeObject = KubeObject>(type: ResourceType, opts: ListOptions = {}): Promise<ListResult<T>> {
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
  async *watch<T extends KubeObject = KubeObject>(
    type: ResourceType,
    opts: WatchOptions,
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const target: RequestTarget = { verb: 'watch', kind: type.kind, namespace: opts.namespace };
    const res = await this.send({
      method: 'GET',
      path: resourcePath(type, opts.namespace),
      query: {
        watch: 1,
        resourceVersion: opts.resourceVersion,
        allowWatchBookmarks: opts.allowWatchBookmarks ? true : undefined,
        timeoutSeconds: opts.timeoutSeconds,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
      },
      signal,
      timeoutMs: 0,
      target,
    });
    if ((res.statusCode ?? 0) >= 300) {
      const text = await readBody(res);
      throw toApiError(target, res, text);
    }
    const decoder = new StringDecoder('utf8');
    let buf = '';
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buf += decoder.write(chunk);
        // Scan with an offset and cut once per chunk: slicing per line is quadratic on large chunks.
        let start = 0;
        let nl: number;
        while ((nl = buf.indexOf('\n', start)) >= 0) {
          const line = buf.slice(start, nl);
          start = nl + 1;
          if (line.trim() === '') continue;
          yield JSON.parse(line) as WatchEvent<T>;
        }
        buf = start > 0 ? buf.slice(start) : buf;
      }
      buf += decoder.end();
      if (buf.trim() !== '') yield JSON.parse(buf) as WatchEvent<T>;
    } catch (err) {
      if (signal?.aborted) return;
      if (err instanceof SyntaxError) throw new TransportError(target, err);
      throw err instanceof TransportError || err instanceof ApiError ? err : new TransportError(target, err);
    } finally {
      // A consumer that stops early must not leave the socket streaming.
      res.destroy();
    }
  }

  /** Reads one object; throws ApiError 404 if absent. */
  get<T extends KubeObject = KubeObject>(type: ResourceType, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>({
      method: 'GET',
      path: resourcePath(type, namespace, name),
      signal,
      target: { verb: 'get', kind: type.kind, namespace, name },
    });
  }

  /** Creates an object (POST); `metadata.generateName` works. */
  create<T extends KubeObject = KubeObject>(type: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = obj.metadata.namespace;
    return this.request<T>({
      method: 'POST',
      path: resourcePath(type, ns),
      query: { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined },
      body: withTypeMeta(type, obj),
      signal: opts.signal,
      target: { verb: 'create', kind: type.kind, namespace: ns, name: obj.metadata.name ?? obj.metadata.generateName },
    });
  }

  /** Replaces an object (PUT); fails with 409 if `metadata.resourceVersion` is stale. */
  update<T extends KubeObject = KubeObject>(type: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(type, obj, undefined, 'update', opts);
  }

  /** Replaces the status subresource (PUT …/status); spec changes in `obj` are ignored by the server. */
  replaceStatus<T extends KubeObject = KubeObject>(type: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(type, obj, 'status', 'replaceStatus', opts);
  }

  /** Server-side apply: sends the fields this manager owns; apiVersion/kind are filled in from `type`. */
  apply<T extends KubeObject = KubeObject>(type: ResourceType, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    return this.applyTo<T>(type, obj, undefined, opts);
  }

  /** Server-side apply on the status subresource. */
  applyStatus<T extends KubeObject = KubeObject>(type: ResourceType, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    return this.applyTo<T>(type, obj, 'status', opts);
  }

  /** Patches an object with a merge, JSON or strategic-merge patch, optionally on a subresource. */
  patch<T extends KubeObject = KubeObject>(
    type: ResourceType,
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

  /** Sends a request and decodes the JSON answer; throws ApiError on non-2xx, TransportError on network failure. */
  async request<T = unknown>(req: RawRequest): Promise<T> {
    const target = req.target ?? { verb: req.method, name: req.path };
    let res = await this.send(req);
    if (res.statusCode === 401) {
      // Credentials may have rotated under us; refresh once before failing.
      res.resume();
      this.authHeaders = undefined;
      res = await this.send(req);
    }
    const text = await readBody(res).catch((err: unknown) => {
      throw new TransportError(target, err);
    });
    if ((res.statusCode ?? 0) >= 300) throw toApiError(target, res, text);
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new TransportError(target, err);
    }
  }

  private put<T extends KubeObject>(type: ResourceType, obj: T, sub: string | undefined, verb: string, opts: WriteOptions): Promise<T> {
    const { namespace, name } = obj.metadata;
    if (!name) throw new TypeError(`${verb} ${type.kind}: metadata.name is required`);
    return this.request<T>({
      method: 'PUT',
      path: resourcePath(type, namespace, name, sub),
      query: { fieldManager: opts.fieldManager, dryRun: opts.dryRun ? 'All' : undefined },
      body: withTypeMeta(type, obj),
      signal: opts.signal,
      target: { verb, kind: type.kind, namespace, name },
    });
  }

  private applyTo<T extends KubeObject>(type: ResourceType, obj: KubeObject, sub: string | undefined, opts: ApplyOptions): Promise<T> {
    const { namespace, name } = obj.metadata;
    const verb = sub ? `apply ${sub}` : 'apply';
    if (!name) throw new TypeError(`${verb} ${type.kind}: metadata.name is required for server-side apply`);
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
      signal: opts.signal,
      target: { verb, kind: type.kind, namespace, name },
    });
  }

  private async auth(): Promise<Record<string, string>> {
    const now = Date.now();
    if (!this.authHeaders || now - this.authFetchedAt > AUTH_TTL_MS) {
      this.authFetchedAt = now;
      this.authHeaders = this.config.authHeaders().catch((err: unknown) => {
        this.authHeaders = undefined;
        throw err;
      });
    }
    return this.authHeaders;
  }

  private async send(req: RawRequest): Promise<http.IncomingMessage> {
    const target = req.target ?? { verb: req.method, name: req.path };
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': this.userAgent, ...(await this.auth()), ...req.headers };
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
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      if (req.signal?.aborted) {
        reject(new TransportError(target, req.signal.reason ?? new Error('aborted')));
        return;
      }
      const r = this.transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
          port: this.base.port || undefined,
          method: req.method,
          path,
          headers,
          agent: this.agent,
          signal: req.signal,
        },
        resolve,
      );
      if (timeoutMs > 0) {
        // A total deadline for non-streaming calls: the socket timeout alone misses slow trickles.
        const t = setTimeout(() => r.destroy(new Error(`request timed out after ${timeoutMs} ms`)), timeoutMs);
        r.once('close', () => clearTimeout(t));
      }
      r.once('error', (err) => reject(new TransportError(target, err)));
      r.end(payload);
    });
  }
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
    throw new KubeConfigError(`cannot read ${file} named in kubeconfig: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function fetchAuthHeaders(kc: KubeConfig): Promise<Record<string, string>> {
  // applyToHTTPSOptions runs the auth providers (token files, exec plugins, OIDC); only the headers are kept.
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  }
  if (opts.auth) out.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return out;
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function toApiError(target: RequestTarget, res: http.IncomingMessage, text: string): ApiError {
  let body: Status | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') body = parsed as Status;
  } catch {
    body = text ? { message: text.slice(0, 500) } : undefined;
  }
  const header = res.headers['retry-after'];
  return new ApiError(target, res.statusCode ?? 0, body, parseRetryAfter(Array.isArray(header) ? header[0] : header));
}
