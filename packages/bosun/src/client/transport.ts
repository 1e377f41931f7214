/**
 * The wire under KubeClient: one request in, a status, headers and a streaming body out.
 *
 * Two implementations: HTTP/2 (one multiplexed session per API server, PING health checks) and
 * HTTP/1.1 (separate keep-alive pools for requests and watches, socket idle timeouts). `auto`
 * asks the server by ALPN and uses HTTP/2 when it agrees, as client-go does.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { type SecureContext, connect as tlsConnect, createSecureContext, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { type RequestTarget, TransportError } from './errors.js';

/** Which HTTP version the client speaks: `auto` negotiates HTTP/2 by ALPN and falls back to HTTP/1.1. */
export type TransportKind = 'auto' | 'h2' | 'http1';

/** One request as a transport sends it; the client has already built headers, path and body. */
export interface TransportRequest {
  method: string;
  /** Path with query, beginning with '/'. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  /** Fires on the caller's abort and on the request's deadline; its reason is the error to report. */
  signal: AbortSignal;
  /** A long-lived watch stream: HTTP/1.1 gives it its own pool and a read-idle timeout. */
  watch: boolean;
  /** Whether a watch stream is expected to carry bookmarks (its silence then means a dead connection). */
  bookmarks?: boolean;
  target: RequestTarget;
  /**
   * Called synchronously right before the request is handed to a connection; what it throws refuses the request
   * and is what the caller gets. The write gate: a process frozen since the gate was last checked (awaiting a
   * connection or credentials) must not send once it resumes.
   */
  beforeSend?: () => void;
}

/** A response whose headers have arrived; the body streams (and fails with the connection). */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

/** Sends requests to one API server. */
export interface Transport {
  /** The protocol in use now ('h2' or 'http/1.1'; 'auto' until the first connection decided). */
  readonly protocol: 'h2' | 'http/1.1' | 'auto';
  /** Sends a request; resolves when the response headers arrive, rejects with TransportError. */
  request(req: TransportRequest): Promise<TransportResponse>;
  /** Uses a new client certificate for new connections (exec plugins rotate them); open ones drain. */
  setClientCertificate(cert: Buffer | string | undefined, key: Buffer | string | undefined): void;
  /** Closes every connection; requests in flight fail. */
  close(): void;
}

/** Where and how to connect, shared by both transports. */
export interface TransportOptions {
  /** The API server origin (scheme, host, port). */
  origin: URL;
  ca?: Buffer | undefined;
  cert?: Buffer | string | undefined;
  key?: Buffer | string | undefined;
  skipTLSVerify?: boolean | undefined;
  /** TLS server name when it differs from the host. */
  servername?: string | undefined;
  /** HTTP/1.1: sockets for non-watch requests (watches have their own pool). */
  maxSockets: number;
  /** HTTP/2: a session from which nothing was read for this long is sent a PING. */
  readIdleTimeoutMs: number;
  /** HTTP/2: a PING not answered within this is a dead session. HTTP/1.1: added to readIdle as a request's socket idle timeout. */
  pingTimeoutMs: number;
  /** HTTP/1.1: a watch socket with bookmarks that reads nothing for this long is dead. */
  watchIdleTimeoutMs: number;
}

/** The TLS pieces both transports build connections from; rebuilt when the client certificate rotates. */
export class TlsSettings {
  /** One secure context for every connection: parsing the keys per connection costs ~2 ms of CPU. */
  context: SecureContext | undefined;
  /** SNI name; never an IP address (Node refuses those). */
  readonly servername: string | undefined;
  readonly rejectUnauthorized: boolean;
  private readonly ca: Buffer | undefined;

  constructor(o: TransportOptions) {
    this.ca = o.ca;
    this.rejectUnauthorized = !o.skipTLSVerify;
    const host = hostOf(o.origin);
    this.servername = o.servername ?? (isIP(host) ? undefined : host);
    this.setCertificate(o.cert, o.key);
  }

  /** Replaces the client certificate used by connections made from now on. */
  setCertificate(cert: Buffer | string | undefined, key: Buffer | string | undefined): void {
    this.context = this.ca || cert || key ? createSecureContext({ ca: this.ca, cert, key }) : undefined;
  }

  /** Opens a TLS connection offering `alpn`, resolved once the handshake is done. */
  connect(origin: URL, alpn: string[], signal: AbortSignal): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const sock = tlsConnect({
        host: hostOf(origin),
        port: portOf(origin),
        servername: this.servername,
        secureContext: this.context,
        rejectUnauthorized: this.rejectUnauthorized,
        ALPNProtocols: alpn,
      });
      const onAbort = (): void => {
        sock.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      sock.once('secureConnect', () => {
        signal.removeEventListener('abort', onAbort);
        resolve(sock);
      });
      sock.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      });
    });
  }
}

/** The host of a URL without IPv6 brackets. */
export function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/** The port of a URL, defaulting by scheme. */
export function portOf(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443;
}

/** Wraps any failure as a TransportError naming the request, keeping one that already is. */
export function transportError(target: RequestTarget, err: unknown, unprocessed = false): TransportError {
  if (err instanceof TransportError) return err;
  return new TransportError(target, err, { unprocessed });
}
