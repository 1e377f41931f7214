/**
 * A TCP fault proxy for tests: it sits between a client and the API server and can freeze open
 * connections (open at the TCP level, no bytes flowing — a hung load balancer or a dead NAT entry),
 * cut them, delay every chunk, or refuse a share of new connections.
 *
 * It forwards raw bytes, so TLS runs end to end between the client and the API server and the
 * server's certificate is checked as usual.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isIP, createServer, connect, type Server, type Socket } from 'node:net';
import { parse, stringify } from 'yaml';
import { bosunError } from '../../errors.js';

/** Raised when the proxy cannot start or a kubeconfig cannot be pointed at it; names the step and the fix. */
export class FaultProxyError extends bosunError('BOSUN_FAULT_PROXY') {
  override name = 'FaultProxyError';
}

/** Options of `startFaultProxy`. */
export interface FaultProxyOptions {
  /** Where the proxy forwards every accepted connection (the API server). */
  target: { host: string; port: number };
  /** Address the proxy listens on; default 127.0.0.1 (the API server's certificate names it). */
  listenHost?: string;
  /** Port to listen on; default 0 (a free one). */
  listenPort?: number;
  /** Random source in [0, 1) for the drop rate; default Math.random (tests inject a fixed sequence). */
  random?: () => number;
}

/**
 * How `cut()` ends a connection: `rst` resets it (the peer reads ECONNRESET; a side whose half-close
 * is still being forwarded is closed instead, its peer reads EOF), `fin` closes it cleanly (the peer reads EOF).
 */
export type CutMode = 'rst' | 'fin';

/** Counters of what the proxy has done, for assertions such as "the client opened a new connection". */
export interface FaultProxyStats {
  /** Connections accepted since start (dropped ones included). */
  accepted: number;
  /** Connections destroyed at accept by the drop rate. */
  dropped: number;
  /** Connections open now (frozen ones included). */
  open: number;
  /** Open connections that are frozen now. */
  frozen: number;
  /** Connections ended by `cut()`. */
  cut: number;
  /** Half-closes read from either side (a FIN), forwarded once the connection is not frozen. */
  ended: number;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** Host the proxy listens on. */
  host: string;
  /** Port the proxy listens on. */
  port: number;
  /** `https://host:port`, the `server:` of a kubeconfig that goes through the proxy. */
  url: string;
  /**
   * Freezes every connection open now: it stays open at the TCP level but no byte is forwarded in
   * either direction (bytes already received are held, not dropped). Connections opened later pass
   * normally, as after a dead NAT entry, unless `newConnections` is true, which freezes them too.
   */
  freeze(opts?: { newConnections?: boolean }): void;
  /** Resumes every frozen connection (held bytes are delivered) and stops freezing new ones. */
  unfreeze(): void;
  /** Ends every open connection, frozen ones included, on both sides. */
  cut(mode?: CutMode): void;
  /** Delays each chunk in each direction by `ms` (0 turns it off); order within a connection is kept. */
  setLatency(ms: number): void;
  /** Share in [0, 1] of new connections that are accepted and then destroyed at once. */
  setDropRate(p: number): void;
  /** Number of open connections. */
  connections(): number;
  /** What the proxy has done so far. */
  stats(): FaultProxyStats;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Chunk {
  data: Buffer;
  at: number;
}

/** One direction of a proxied connection: reads `src`, writes `dst`, holding chunks while frozen or delayed. */
class Direction {
  private readonly queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private ended = false;
  private blocked = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly conn: Conn,
  ) {
    src.on('data', (data: Buffer) => {
      // Each chunk waits at least the latency and never overtakes the one before it.
      const at = Math.max(Date.now() + conn.latency(), this.lastAt);
      this.lastAt = at;
      this.queue.push({ data, at });
      this.flush();
    });
    src.on('end', () => {
      this.ended = true;
      conn.onEnd();
      this.flush();
    });
    dst.on('drain', () => {
      this.blocked = false;
      this.updateReading();
      this.flush();
    });
  }

  /** Starts or stops reading `src` according to the freeze and the peer's backpressure. */
  updateReading(): void {
    if (this.conn.frozen || this.blocked) this.src.pause();
    else this.src.resume();
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.conn.frozen || this.dst.destroyed) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { data } = this.queue.shift()!;
      if (!this.dst.write(data)) {
        this.blocked = true;
        this.updateReading();
      }
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => this.flush(), this.queue[0]!.at - now);
    } else if (this.ended && !this.dst.writableEnded) {
      this.dst.end();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/** A client connection and its upstream connection to the target. */
class Conn {
  frozen = false;
  private readonly directions: Direction[];

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    readonly latency: () => number,
    readonly onEnd: () => void,
    private readonly onClose: (c: Conn) => void,
  ) {
    this.directions = [new Direction(client, upstream, this), new Direction(upstream, client, this)];
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      for (const d of this.directions) d.stop();
      client.destroy();
      upstream.destroy();
      this.onClose(this);
    };
    // Errors end the pair; the peers see the reset or EOF as through a real middlebox.
    // A half-closed side stays open until both of its directions are done, so 'close' means done.
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  }

  setFrozen(frozen: boolean): void {
    this.frozen = frozen;
    for (const d of this.directions) d.updateReading();
    if (!frozen) for (const d of this.directions) d.flush();
  }

  end(mode: CutMode): void {
    for (const d of this.directions) d.stop();
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      // libuv refuses a reset while a shutdown (a forwarded half-close) is still pending, and Node
      // then never closes the handle: the socket never emits 'close' and the process spins at exit
      // waiting for it. Such a side is closed instead; its peer reads EOF rather than a reset.
      const shuttingDown = s.writableEnded && !s.writableFinished;
      if (mode === 'rst' && !shuttingDown) s.resetAndDestroy();
      else s.destroy();
    }
  }
}

/** Starts a fault proxy that forwards every connection to `target`; see `FaultProxy` for the faults it injects. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const host = opts.listenHost ?? '127.0.0.1';
  const random = opts.random ?? Math.random;
  const conns = new Set<Conn>();
  let latencyMs = 0;
  let dropRate = 0;
  let freezeNew = false;
  const counts = { accepted: 0, dropped: 0, cut: 0, ended: 0 };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    counts.accepted++;
    if (dropRate > 0 && random() < dropRate) {
      counts.dropped++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({ host: opts.target.host, port: opts.target.port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const conn = new Conn(
      client,
      upstream,
      () => latencyMs,
      () => counts.ended++,
      (c) => conns.delete(c),
    );
    conns.add(conn);
    conn.setFrozen(freezeNew);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', (err) =>
      rej(
        new FaultProxyError(
          `fault proxy: cannot listen on ${host}:${opts.listenPort ?? 0}: ${err.message}; choose another listenHost or listenPort`,
        ),
      ),
    );
    server.listen(opts.listenPort ?? 0, host, () => res());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new FaultProxyError(`fault proxy: listening on ${host} gave no TCP port`);
  const port = addr.port;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;

  return {
    host,
    port,
    url: `https://${urlHost}:${port}`,
    freeze(o = {}) {
      for (const c of conns) c.setFrozen(true);
      freezeNew = o.newConnections === true;
    },
    unfreeze() {
      freezeNew = false;
      for (const c of conns) c.setFrozen(false);
    },
    cut(mode: CutMode = 'rst') {
      for (const c of [...conns]) {
        counts.cut++;
        c.end(mode);
      }
    },
    setLatency(ms: number) {
      if (!(ms >= 0) || !Number.isFinite(ms))
        throw new FaultProxyError(`fault proxy: latency ${ms} ms is not a finite number >= 0; pass 0 to turn it off`);
      latencyMs = ms;
    },
    setDropRate(p: number) {
      if (!(p >= 0 && p <= 1)) throw new FaultProxyError(`fault proxy: drop rate ${p} is outside [0, 1]; pass a probability such as 0.1`);
      dropRate = p;
    },
    connections: () => conns.size,
    stats: () => ({ ...counts, open: conns.size, frozen: [...conns].filter((c) => c.frozen).length }),
    close() {
      for (const c of [...conns]) c.end('fin');
      return new Promise<void>((res) => server.close(() => res()));
    },
  };
}

interface KubeconfigDoc {
  clusters?: { name: string; cluster: { server: string; 'tls-server-name'?: string } }[];
}

/**
 * Writes a copy of `kubeconfig` at `outPath` whose every cluster's `server:` is `proxyUrl`, so a
 * client built from it goes through the proxy with the same credentials. When the original server
 * is named by a DNS name the proxy URL does not carry, `tls-server-name` keeps TLS verification
 * against that name.
 */
export async function writeProxyKubeconfig(kubeconfig: string, proxyUrl: string, outPath: string): Promise<string> {
  const doc = parse(await readFile(kubeconfig, 'utf8')) as KubeconfigDoc;
  if (!doc?.clusters?.length)
    throw new FaultProxyError(`kubeconfig ${kubeconfig} has no clusters[]; pass the cluster's admin kubeconfig (env.kubeconfig)`);
  const proxyHost = new URL(proxyUrl).hostname;
  for (const { cluster } of doc.clusters) {
    const original = new URL(cluster.server).hostname.replace(/^\[|\]$/g, '');
    if (!cluster['tls-server-name'] && isIP(original) === 0 && original !== proxyHost) cluster['tls-server-name'] = original;
    cluster.server = proxyUrl;
  }
  await writeFile(outPath, stringify(doc), { mode: 0o600 });
  return outPath;
}
