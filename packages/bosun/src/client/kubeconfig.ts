/**
 * Finding the cluster and credentials: the standard kubeconfig chain (an explicit file,
 * $KUBECONFIG's files merged, ~/.kube/config, then in-cluster service-account config).
 *
 * Why not `@kubernetes/client-node`'s KubeConfig for everything: importing it loads its generated
 * API (≈75 MiB of resident memory measured on Node 20), which would dominate a small operator's
 * footprint. Plain certificates and tokens — what clusters, envtest and in-cluster config use — are
 * read here; users whose kubeconfig runs an exec plugin or an auth provider get client-node's
 * implementation, loaded only then. It is an optional peer dependency: most installs (in-cluster, envtest,
 * certificates, tokens) never load it and need not carry its ~70 packages.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { KubeConfigError } from './errors.js';

/** Where the service-account credentials of a Pod are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Everything a client needs to reach one cluster as one user. */
export interface ClusterConfig {
  /** API server URL without a trailing slash. */
  server: string;
  /** The context's namespace, or 'default'. */
  namespace: string;
  /** The context used ('in-cluster' for service-account config). */
  context: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  /**
   * Headers that authenticate a request (bearer token, basic auth); re-called so rotated tokens are
   * picked up. `refresh` (after a 401) bypasses every cache: the token file is re-read, the exec plugin re-run.
   */
  authHeaders(opts?: AuthRefresh): Promise<Record<string, string>>;
  /** A client certificate an exec credential plugin issued (ExecCredential status.clientCertificateData/clientKeyData); asked after authHeaders. */
  clientCertificate?(opts?: AuthRefresh): Promise<ClientCertificate | undefined>;
}

/** Asks a credential source to bypass its caches. */
export interface AuthRefresh {
  refresh?: boolean;
}

/** A PEM client certificate and key. */
export interface ClientCertificate {
  cert: string | Buffer;
  key: string | Buffer;
}

interface NamedCluster {
  name: string;
  cluster: {
    server: string;
    'certificate-authority'?: string;
    'certificate-authority-data'?: string;
    'insecure-skip-tls-verify'?: boolean;
    'tls-server-name'?: string;
  };
}
interface NamedUser {
  name: string;
  user?: {
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    token?: string;
    tokenFile?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    'auth-provider'?: unknown;
  };
}
interface NamedContext {
  name: string;
  context: { cluster: string; user?: string; namespace?: string };
}
interface RawKubeconfig {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
  'current-context'?: string;
}

/** Entries tagged with the file they came from, so relative paths resolve against it. */
interface Merged {
  clusters: Map<string, NamedCluster & { file: string }>;
  users: Map<string, NamedUser & { file: string }>;
  contexts: Map<string, NamedContext>;
  currentContext?: string;
  files: string[];
}

function readKubeconfig(file: string): RawKubeconfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubeConfigError(
      `cannot read kubeconfig ${file}: ${(err as Error).message}. Check the path given with --kubeconfig or in $KUBECONFIG.`,
      { cause: err },
    );
  }
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    const got = Array.isArray(doc) ? 'a list' : `a ${typeof doc}`;
    throw new KubeConfigError(
      `kubeconfig ${file} is not a kubeconfig: expected a mapping with clusters, users and contexts, got ${got}. Check the path given with --kubeconfig or in $KUBECONFIG.`,
    );
  }
  return doc as RawKubeconfig;
}

// Merging follows kubectl: the first file that defines a name (or current-context) wins.
function merge(files: string[]): Merged {
  const m: Merged = { clusters: new Map(), users: new Map(), contexts: new Map(), files };
  for (const file of files) {
    const k = readKubeconfig(file);
    for (const c of k.clusters ?? []) if (!m.clusters.has(c.name)) m.clusters.set(c.name, { ...c, file });
    for (const u of k.users ?? []) if (!m.users.has(u.name)) m.users.set(u.name, { ...u, file });
    for (const c of k.contexts ?? []) if (!m.contexts.has(c.name)) m.contexts.set(c.name, c);
    if (!m.currentContext && k['current-context']) m.currentContext = k['current-context'];
  }
  return m;
}

function exists(file: string): boolean {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

// An expired client certificate is answered with a bare 401 that says nothing of why; it can never work, so say so
// before connecting. A certificate that does not parse is left to the TLS handshake to report.
function assertCertificateCurrent(pem: Buffer, what: string, now = Date.now()): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return;
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (to < now)
    throw new KubeConfigError(
      `${what} expired on ${new Date(to).toISOString()}; renew it (or ask the cluster's admin for a new kubeconfig)`,
    );
  if (from > now)
    throw new KubeConfigError(`${what} is not valid before ${new Date(from).toISOString()}; check this machine's clock or renew it`);
}

function fileOrData(base: string, file?: string, data?: string): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (!file) return undefined;
  const p = isAbsolute(file) ? file : resolve(dirname(base), file);
  try {
    return readFileSync(p);
  } catch (err) {
    throw new KubeConfigError(`cannot read ${p} named in kubeconfig ${base}: ${(err as Error).message}`, { cause: err });
  }
}

/** Re-reads a token file at most once a minute, and at once on refresh: projected service-account tokens rotate. */
export function tokenFileAuth(file: string): (opts?: AuthRefresh) => Promise<Record<string, string>> {
  let cached: { at: number; headers: Record<string, string> } | undefined;
  return async (opts) => {
    if (!cached || opts?.refresh || Date.now() - cached.at > 60_000) {
      const token = readFileSync(file, 'utf8').trim();
      cached = { at: Date.now(), headers: { Authorization: `Bearer ${token}` } };
    }
    return cached.headers;
  };
}

function inCluster(): ClusterConfig | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !exists(join(SERVICE_ACCOUNT_DIR, 'token'))) return undefined;
  const h = host.includes(':') ? `[${host}]` : host;
  let namespace = 'default';
  try {
    namespace = readFileSync(join(SERVICE_ACCOUNT_DIR, 'namespace'), 'utf8').trim() || 'default';
  } catch {
    /* not mounted */
  }
  return {
    server: `https://${h}:${port}`,
    namespace,
    context: 'in-cluster',
    ca: readFileSync(join(SERVICE_ACCOUNT_DIR, 'ca.crt')),
    authHeaders: tokenFileAuth(join(SERVICE_ACCOUNT_DIR, 'token')),
  };
}

/** Which kubeconfig to load, and which of its contexts. */
export interface LoadOptions {
  /** A kubeconfig file; absent: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** A context other than the current one. */
  context?: string;
}

/** Loads the cluster and credentials along the standard chain; errors name the file or context and the fix. */
export function loadClusterConfig(opts: LoadOptions = {}): ClusterConfig {
  let files: string[];
  if (opts.kubeconfig) files = [opts.kubeconfig];
  else if (process.env.KUBECONFIG) files = process.env.KUBECONFIG.split(':').filter((f) => f !== '' && exists(f));
  else files = exists(join(homedir(), '.kube', 'config')) ? [join(homedir(), '.kube', 'config')] : [];
  if (files.length === 0) {
    const ic = inCluster();
    if (ic) return ic;
    throw new KubeConfigError(
      process.env.KUBECONFIG
        ? `none of the files in $KUBECONFIG (${process.env.KUBECONFIG}) exists; fix $KUBECONFIG or pass --kubeconfig`
        : 'no kubeconfig found: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run in a Pod (in-cluster config)',
    );
  }
  const m = merge(files);
  const contextName = opts.context ?? m.currentContext;
  if (!contextName)
    throw new KubeConfigError(
      `kubeconfig ${files.join(':')} has no current-context; pass --context (known: ${[...m.contexts.keys()].join(', ') || 'none'})`,
    );
  const ctx = m.contexts.get(contextName);
  if (!ctx) {
    const known = [...m.contexts.keys()];
    const fix = known.length ? `pass --context ${known[0]}, or add the context` : 'add the context';
    throw new KubeConfigError(
      `kubeconfig ${files.join(':')} has no context '${contextName}'; known contexts: ${known.join(', ') || '(none)'}. Fix: ${fix}`,
    );
  }
  const cluster = m.clusters.get(ctx.context.cluster);
  if (!cluster?.cluster?.server)
    throw new KubeConfigError(
      `kubeconfig context '${contextName}' names cluster '${ctx.context.cluster}', which is missing or has no server; fix the clusters entry`,
    );
  const user = ctx.context.user ? m.users.get(ctx.context.user) : undefined;
  if (ctx.context.user && !user)
    throw new KubeConfigError(
      `kubeconfig context '${contextName}' names user '${ctx.context.user}', which is not defined; fix the users entry`,
    );
  const u = user?.user ?? {};
  const c = cluster.cluster;
  if (!URL.canParse(c.server) || !/^https?:$/.test(new URL(c.server).protocol)) {
    throw new KubeConfigError(
      `kubeconfig ${files.join(':')}: cluster '${ctx.context.cluster}' has server '${c.server}', which is not a URL; write it as https://${c.server.replace(/^[a-z]+:\/\//i, '')}`,
    );
  }
  let authHeaders: (opts?: AuthRefresh) => Promise<Record<string, string>> = async () => ({});
  let clientCertificate: ((opts?: AuthRefresh) => Promise<ClientCertificate | undefined>) | undefined;
  if (u.exec || u['auth-provider']) {
    const creds = clientNodeCredentials(async () => {
      const { KubeConfig } = await importClientNode(
        `kubeconfig ${files.join(':')}: user '${ctx.context.user}' authenticates with ${u.exec ? 'an exec plugin' : 'an auth provider'}, which`,
      );
      const kc = new KubeConfig();
      if (files.length === 1) kc.loadFromFile(files[0]!);
      else kc.loadFromDefault();
      kc.setCurrentContext(contextName);
      return kc;
    });
    authHeaders = creds.authHeaders;
    clientCertificate = creds.clientCertificate;
  } else if (u.tokenFile) authHeaders = tokenFileAuth(isAbsolute(u.tokenFile) ? u.tokenFile : resolve(dirname(user!.file), u.tokenFile));
  else if (u.token) {
    const h = { Authorization: `Bearer ${u.token}` };
    authHeaders = async () => h;
  } else if (u.username !== undefined && u.password !== undefined) {
    const h = { Authorization: `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}` };
    authHeaders = async () => h;
  }
  const cert = user ? fileOrData(user.file, u['client-certificate'], u['client-certificate-data']) : undefined;
  if (cert && user) assertCertificateCurrent(cert, `the client certificate of user '${ctx.context.user}' in kubeconfig ${user.file}`);
  return {
    server: c.server.replace(/\/+$/, ''),
    namespace: ctx.context.namespace ?? 'default',
    context: contextName,
    ca: fileOrData(cluster.file, c['certificate-authority'], c['certificate-authority-data']),
    cert,
    key: user ? fileOrData(user.file, u['client-key'], u['client-key-data']) : undefined,
    skipTLSVerify: c['insecure-skip-tls-verify'] === true,
    tlsServerName: c['tls-server-name'],
    authHeaders,
    ...(clientCertificate ? { clientCertificate } : {}),
  };
}

/** A credential source's two halves, fed by one run of the auth provider. */
export interface CredentialSource {
  authHeaders(opts?: AuthRefresh): Promise<Record<string, string>>;
  clientCertificate(opts?: AuthRefresh): Promise<ClientCertificate | undefined>;
}

/**
 * `@kubernetes/client-node`, imported for the credentials only it implements. `what` begins the message
 * ("user 'x' authenticates with an exec plugin, which") when it is not installed.
 */
export async function importClientNode(what: string): Promise<typeof import('@kubernetes/client-node')> {
  try {
    return await import('@kubernetes/client-node');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new KubeConfigError(
      `${what} bosun runs through @kubernetes/client-node, an optional dependency that is not installed. Fix: npm install @kubernetes/client-node@~1.4.0`,
      { cause: err },
    );
  }
}

/**
 * Exec plugins and auth providers (cloud logins, OIDC) through client-node, imported only for them.
 * `load` builds a KubeConfig; a refresh builds a new one, because client-node caches an exec
 * credential until it expires and a 401 says it no longer works.
 */
export function clientNodeCredentials(load: (refresh: boolean) => Promise<import('@kubernetes/client-node').KubeConfig>): CredentialSource {
  let kcP: Promise<import('@kubernetes/client-node').KubeConfig> | undefined;
  // authHeaders and clientCertificate are asked back to back: one plugin run answers both.
  let last: { at: number; p: Promise<{ headers: Record<string, string>; cert?: ClientCertificate }> } | undefined;
  const run = (refresh: boolean): Promise<{ headers: Record<string, string>; cert?: ClientCertificate }> => {
    if (!refresh && last && Date.now() - last.at < 1000) return last.p;
    if (refresh || !kcP) kcP = load(refresh);
    const kc = kcP;
    const p = (async () => {
      const o: { headers?: Record<string, unknown>; auth?: string; cert?: string | Buffer; key?: string | Buffer } = {};
      await (await kc).applyToHTTPSOptions(o);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.headers ?? {})) if (typeof v === 'string' || typeof v === 'number') headers[k] = String(v);
      if (o.auth) headers.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
      return o.cert && o.key ? { headers, cert: { cert: o.cert, key: o.key } } : { headers };
    })();
    p.catch(() => {
      if (last?.p === p) last = undefined;
    });
    last = { at: Date.now(), p };
    return p;
  };
  return {
    authHeaders: async (opts) => (await run(opts?.refresh === true)).headers,
    clientCertificate: async (opts) => (await run(opts?.refresh === true)).cert,
  };
}
