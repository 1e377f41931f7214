import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ClientClosedError, DeadConnectionError, Http2RefusedError, TransportError } from './errors.js';
import {
  TlsSettings,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
  hostOf,
  portOf,
  transportError,
} from './transport.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Headers HTTP/2 forbids (connection-specific in HTTP/1.1). */
const FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

/** Go's transport windows: 4 MiB per stream keeps a large list page flowing; the connection window only bounds the sum. */
const STREAM_WINDOW = 4 << 20;
const CONNECTION_WINDOW = 1 << 30;

/** Streams a session may carry before the peer's SETTINGS arrive (the RFC's recommended minimum). */
const DEFAULT_MAX_STREAMS = 100;

/**
 * How often a request the server did not process is sent again (Go's transport bounds it too). Each new session after a
 * 401 serves the streams it received before its GOAWAY, so a burst of requests under refused credentials needs
 * a few rounds; the bound keeps a server that refuses everything from spinning.
 */
const MAX_RESENDS = 6;

/** One HTTP/2 connection and its health check. */
class Session {
  readonly session: ClientHttp2Session;
  active = 0;
  /** No new streams: GOAWAY received, certificate rotated, or torn down. */
  draining = false;
  private bytesRead = 0;
  private lastReadAt = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    session: ClientHttp2Session,
    private readonly readIdleMs: number,
    private readonly pingTimeoutMs: number,
    private readonly onGone: (s: Session) => void,
  ) {
    this.session = session;
    session.on('goaway', () => this.drain());
    session.on('close', () => this.gone());
    // Errors also arrive on each stream; without a listener a session error would crash the process.
    session.on('error', () => this.gone());
    this.armIdle();
    this.updateRef();
  }

  /** Whether a new stream may open on this session. */
  usable(): boolean {
    if (this.draining || this.session.closed || this.session.destroyed) return false;
    return this.active < (this.session.remoteSettings.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS);
  }

  /** Counts a stream in and out, so an idle session does not keep the process alive. */
  track(stream: ClientHttp2Stream): void {
    this.active++;
    this.updateRef();
    stream.once('close', () => {
      this.active--;
      this.updateRef();
      if (this.draining && this.active === 0) this.session.close();
    });
  }

  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.onGone(this);
    if (this.active === 0) this.session.close();
  }

  destroy(err?: Error): void {
    this.gone();
    this.session.destroy(err);
  }

  private gone(): void {
    this.draining = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.pingTimer);
    this.onGone(this);
  }

  private updateRef(): void {
    if (this.session.destroyed) return;
    if (this.active > 0) this.session.ref();
    else this.session.unref();
  }

  // Read idleness is measured by the socket's byte counter (DATA, HEADERS, PING acks and SETTINGS all count),
  // sampled often so the PING goes out readIdleMs after the last byte read, not up to twice that.
  private armIdle(): void {
    this.lastReadAt = performance.now();
    this.bytesRead = this.session.socket?.bytesRead ?? 0;
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    this.idleTimer = setTimeout(() => this.checkIdle(), Math.max(10, Math.min(1000, this.readIdleMs / 4)));
    this.idleTimer.unref();
  }

  private checkIdle(): void {
    if (this.session.destroyed) return;
    const read = this.session.socket?.bytesRead ?? 0;
    const now = performance.now();
    if (read !== this.bytesRead) {
      this.bytesRead = read;
      this.lastReadAt = now;
    }
    if (now - this.lastReadAt < this.readIdleMs) {
      this.scheduleCheck();
      return;
    }
    this.pingTimer = setTimeout(() => {
      this.destroy(
        new DeadConnectionError(
          `HTTP/2 PING not answered within ${this.pingTimeoutMs} ms after ${this.readIdleMs} ms without a byte read; the connection is dead`,
        ),
      );
    }, this.pingTimeoutMs);
    this.pingTimer.unref();
    const sent = this.session.ping((err) => {
      clearTimeout(this.pingTimer);
      if (this.session.destroyed) return;
      if (err) {
        this.destroy(new DeadConnectionError(`HTTP/2 PING failed: ${err.message}`));
        return;
      }
      this.armIdle();
    });
    if (!sent) {
      clearTimeout(this.pingTimer);
      this.destroy(new DeadConnectionError('HTTP/2 PING could not be sent (too many outstanding)'));
    }
  }
}

/**
 * HTTP/2 with node:http2: sessions multiplex every request and watch on one connection per API
 * server (a second opens only when the peer's stream limit is reached), and a session read-idle for
 * `readIdleTimeoutMs` is PINGed and torn down when the PING is not answered within `pingTimeoutMs`,
 * failing every stream on it, as client-go's ReadIdleTimeout/PingTimeout do.
 */
export class Http2Transport implements Transport {
  readonly protocol = 'h2' as const;
  private readonly o: TransportOptions;
  private readonly tls: TlsSettings | undefined;
  private sessions: Session[] = [];
  private connecting: Promise<Session> | undefined;
  private first: TLSSocket | undefined;
  private closed = false;

  /** `first` is an already negotiated h2 connection (from the ALPN probe) to use for the first session. */
  constructor(o: TransportOptions, tls?: TlsSettings, first?: TLSSocket) {
    this.o = o;
    this.tls = o.origin.protocol === 'http:' ? undefined : (tls ?? new TlsSettings(o));
    this.first = first;
  }

  async request(req: TransportRequest): Promise<TransportResponse> {
    const { signal, target } = req;
    const headers: http2.OutgoingHttpHeaders = { ':method': req.method, ':path': req.path };
    for (const [k, v] of Object.entries(req.headers)) {
      const l = k.toLowerCase();
      if (!FORBIDDEN.has(l)) headers[l] = v;
    }
    // A session may turn out closed between picking it and opening the stream; that request never left.
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw transportError(target, signal.reason);
      let sess: Session;
      try {
        sess = await this.session(signal);
      } catch (err) {
        throw transportError(target, signal.aborted ? signal.reason : err);
      }
      req.beforeSend?.();
      let stream: ClientHttp2Stream;
      try {
        stream = sess.session.request(headers, { endStream: req.body === undefined });
      } catch (err) {
        sess.drain();
        if (attempt < 2) continue;
        throw transportError(target, err, true);
      }
      sess.track(stream);
      try {
        return await this.exchange(sess, stream, req);
      } catch (err) {
        // A stream past the server's GOAWAY (the API server sends one after every 401 on HTTP/2) or refused outright
        // was never processed: resend it on another session, as Go's transport does, so the caller sees the
        // server's answer instead of the connection's end.
        if (err instanceof TransportError && err.unprocessed && !signal.aborted && attempt < MAX_RESENDS) {
          sess.drain();
          continue;
        }
        throw err;
      }
    }
  }

  setClientCertificate(cert: Buffer | string | undefined, key: Buffer | string | undefined): void {
    if (!this.tls) return;
    this.tls.setCertificate(cert, key);
    for (const s of [...this.sessions]) s.drain();
  }

  close(): void {
    this.closed = true;
    this.first?.destroy();
    for (const s of [...this.sessions]) s.destroy();
    this.sessions = [];
  }

  private exchange(sess: Session, stream: ClientHttp2Stream, req: TransportRequest): Promise<TransportResponse> {
    const { signal, target } = req;
    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown, unprocessed = false): void => {
        if (settled) return;
        settled = true;
        reject(transportError(target, err, unprocessed));
      };
      const onAbort = (): void => {
        fail(signal.reason);
        // The body consumer sees the reason; the server sees a cancelled stream.
        stream.destroy(signal.reason as Error);
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => {
        signal.removeEventListener('abort', onAbort);
        // REFUSED_STREAM (or a stream past a GOAWAY's last id) was never processed: safe to resend even a write.
        const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM;
        fail(new Error(`HTTP/2 stream closed before a response (code ${stream.rstCode ?? '?'})`), refused);
      });
      stream.once('error', (err) => fail(err, stream.rstCode === NGHTTP2_REFUSED_STREAM));
      stream.once('response', (h) => {
        if (settled) {
          stream.close(NGHTTP2_CANCEL);
          return;
        }
        settled = true;
        const status = Number(h[':status'] ?? 0);
        resolve({ status, headers: h as IncomingHttpHeaders, body: stream });
      });
      if (req.body !== undefined) stream.end(req.body);
      void sess;
    });
  }

  private async session(signal: AbortSignal): Promise<Session> {
    for (;;) {
      const s = this.sessions.find((x) => x.usable());
      if (s) return s;
      if (this.closed)
        throw new ClientClosedError(
          `HTTP/2 client of ${this.o.origin.host} is closed (KubeClient.close() was called); make requests before closing it, or build a new client`,
        );
      // One connection attempt at a time; every waiter races it against its own deadline.
      this.connecting ??= this.connect().finally(() => {
        this.connecting = undefined;
      });
      await raceAbort(this.connecting, signal);
    }
  }

  private async connect(): Promise<Session> {
    const origin = this.o.origin;
    let sock: Socket | TLSSocket;
    // A connect into a black hole must fail, or every request would wait on it: the same bound as a dead session.
    const timeoutMs = this.o.readIdleTimeoutMs + this.o.pingTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    if (this.first && !this.first.destroyed) sock = this.first;
    else if (this.tls)
      sock = await this.tls.connect(origin, ['h2'], deadline).catch((err: unknown) => {
        throw deadline.aborted ? new DeadConnectionError(`no TLS connection to ${origin.host} within ${timeoutMs} ms`) : err;
      });
    else sock = await plainConnect(origin, deadline, timeoutMs);
    this.first = undefined;
    if ('alpnProtocol' in sock && sock.alpnProtocol !== 'h2') {
      sock.destroy();
      throw new Http2RefusedError(
        `${origin.host} did not agree to HTTP/2 (ALPN: ${String(sock.alpnProtocol)}); use transport 'http1' or 'auto'`,
      );
    }
    const session = http2.connect(origin, {
      createConnection: () => sock,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
    });
    session.setLocalWindowSize(CONNECTION_WINDOW);
    if (this.closed) {
      session.destroy();
      throw new ClientClosedError(
        `HTTP/2 client of ${origin.host} was closed while connecting (KubeClient.close() was called); make requests before closing it, or build a new client`,
      );
    }
    const s = new Session(session, this.o.readIdleTimeoutMs, this.o.pingTimeoutMs, (x) => {
      this.sessions = this.sessions.filter((y) => y !== x);
    });
    this.sessions.push(s);
    // Streams opened before SETTINGS arrive are fine: the client queues them.
    return s;
  }
}

function plainConnect(origin: URL, signal: AbortSignal, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: hostOf(origin), port: portOf(origin) }, () => {
      signal.removeEventListener('abort', onAbort);
      resolve(s);
    });
    const onAbort = (): void => {
      s.destroy();
      reject(new DeadConnectionError(`no TCP connection to ${origin.host} within ${timeoutMs} ms`));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
