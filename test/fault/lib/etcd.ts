// etcd's compaction, through its gRPC gateway (JSON over HTTP on the client URL): `up` starts etcd
// on plain HTTP on 127.0.0.1, so no certificate is needed, and no etcdctl either.

/** Raised when etcd refuses or does not answer a request; names the endpoint. */
export class EtcdError extends Error {
  override name = 'EtcdError';
}

async function post<T>(url: string, path: string, body: unknown): Promise<T> {
  const r = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await r.text();
  if (!r.ok) throw new EtcdError(`etcd ${url}${path} answered ${r.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** etcd's current revision: the resourceVersion the API server would give the next write, minus one. */
export async function etcdRevision(url: string): Promise<number> {
  // A range over one key nobody writes: only the response header matters.
  const r = await post<{ header: { revision: string } }>(url, '/v3/kv/range', { key: Buffer.from('/bosun-fault-none').toString('base64') });
  return Number(r.header.revision);
}

/** Compacts etcd's history up to `revision` (default: the current one): older revisions can no longer be read or watched. */
export async function compactEtcd(url: string, revision?: number): Promise<number> {
  const rev = revision ?? (await etcdRevision(url));
  await post(url, '/v3/kv/compaction', { revision: String(rev), physical: true });
  return rev;
}
