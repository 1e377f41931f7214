import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { DeadConnectionError } from './errors.js';
import {
  TlsSettings,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
  hostOf,
  transportError,
} from './transport.js';

/**
 * HTTP/1.1 over two keep-alive pools: one bounded pool for requests and one unbounded for watches,
 * because each watch holds its socket for minutes and would otherwise starve gets, patches and
 * Lease renewals. Deadlines and aborts settle the promise themselves: on Node 20 a request queued
 * for a socket ignores both until a socket frees up.
 */
export class Http1Transport implements Transport {
  readonly protocol = 'http/1.1' as const;
  private readonly o: TransportOptions;
  private readonly tls: TlsSettings | undefined;
  private readonly mod: typeof http | typeof https;
  private readonly requests: http.Agent;
  private readonly watches: http.Agent;

  constructor(o: TransportOptions, tls?: TlsSettings) {
    this.o = o;
    const plain = o.origin.protocol === 'http:';
    this.mod = plain ? http : https;
    this.tls = plain ? undefined : (tls ?? new TlsSettings(o));
    const base: https.AgentOptions = { keepAlive: true, keepAliveMsecs: 30_000, ...this.agentTls() };
    this.requests = plain ? new http.Agent({ ...base, maxSockets: o.maxSockets }) : new https.Agent({ ...base, maxSockets: o.maxSockets });
    this.watches = plain ? new http.Agent(base) : new https.Agent(base);
  }

  request(req: TransportRequest): Promise<TransportResponse> {
    const { signal, target } = req;
    return new Promise<TransportResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(transportError(target, signal.reason));
        return;
      }
      try {
        req.beforeSend?.();
      } catch (err) {
        reject(err);
        return;
      }
      let res: http.IncomingMessage | undefined;
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        reject(transportError(target, err));
      };
      const r = this.mod.request(
        {
          protocol: this.o.origin.protocol,
          hostname: hostOf(this.o.origin),
          port: this.o.origin.port || undefined,
          method: req.method,
          path: req.path,
          headers: req.headers,
          agent: req.watch ? this.watches : this.requests,
        },
        (response) => {
          res = response;
          if (settled) {
            response.destroy();
            return;
          }
          settled = true;
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: response });
        },
      );
      const onAbort = (): void => {
        // Settle first: a queued request's destroy surfaces only once it gets a socket.
        fail(signal.reason);
        res?.destroy(signal.reason as Error);
        r.destroy(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      r.once('close', () => signal.removeEventListener('abort', onAbort));
      const idleMs = req.watch ? (req.bookmarks ? this.o.watchIdleTimeoutMs : 0) : this.o.readIdleTimeoutMs + this.o.pingTimeoutMs;
      if (idleMs > 0) {
        // Per socket and only once assigned: a dead keep-alive socket reads nothing, ever.
        r.once('socket', (s: Socket) => {
          const onTimeout = (): void => {
            const err = new DeadConnectionError(
              `no bytes from ${this.o.origin.host} for ${idleMs} ms on an HTTP/1.1 ${req.watch ? 'watch' : 'request'} socket`,
            );
            res?.destroy(err);
            r.destroy(err);
            this.dropIdleSockets();
          };
          s.setTimeout(idleMs);
          s.on('timeout', onTimeout);
          // The pool resets the socket's timeout when it takes it back; the listener must go with this request.
          r.once('close', () => s.off('timeout', onTimeout));
        });
      }
      r.once('error', (err) => {
        fail(err);
        res?.destroy(err);
      });
      r.end(req.body);
    });
  }

  setClientCertificate(cert: Buffer | string | undefined, key: Buffer | string | undefined): void {
    if (!this.tls) return;
    this.tls.setCertificate(cert, key);
    // Agents copy their options into each new socket's connect call; pooled sockets keep the old certificate until they close.
    for (const a of [this.requests, this.watches])
      Object.assign((a as unknown as { options: https.AgentOptions }).options, this.agentTls());
  }

  close(): void {
    this.requests.destroy();
    this.watches.destroy();
  }

  /**
   * One dead socket means the path (a load balancer, a NAT entry) is likely dead for every socket
   * opened over it: the idle ones are dropped so the next requests open new connections instead of
   * each finding a dead pooled socket after a full idle timeout.
   */
  private dropIdleSockets(): void {
    for (const a of [this.requests, this.watches]) {
      for (const list of Object.values(a.freeSockets)) for (const sock of list ?? []) sock.destroy();
    }
  }

  private agentTls(): https.AgentOptions {
    if (!this.tls) return {};
    const t: https.AgentOptions = { rejectUnauthorized: this.tls.rejectUnauthorized };
    if (this.tls.context) t.secureContext = this.tls.context;
    if (this.tls.servername) t.servername = this.tls.servername;
    return t;
  }
}
