import { DeadConnectionError, TransportConfigError } from './errors.js';
import { Http1Transport } from './transport-http1.js';
import { Http2Transport } from './transport-h2.js';
import {
  TlsSettings,
  type Transport,
  type TransportKind,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
  transportError,
} from './transport.js';

/** Reads BOSUN_TRANSPORT ('auto' | 'h2' | 'http1'); an unknown value is an error naming the variable. */
export function transportFromEnv(env: NodeJS.ProcessEnv = process.env): TransportKind | undefined {
  const v = env.BOSUN_TRANSPORT;
  if (v === undefined || v === '') return undefined;
  if (v === 'auto' || v === 'h2' || v === 'http1') return v;
  throw new TransportConfigError(`BOSUN_TRANSPORT=${v} is not a transport; use auto, h2 or http1`);
}

/** The transport for `kind`: HTTP/2, HTTP/1.1, or (auto) whichever the server picks by ALPN. */
export function createTransport(kind: TransportKind, o: TransportOptions): Transport {
  if (kind === 'h2') return new Http2Transport(o);
  // Without TLS there is no ALPN to negotiate with; HTTP/1.1 is what a plain-HTTP server surely speaks.
  if (kind === 'http1' || o.origin.protocol === 'http:') return new Http1Transport(o);
  return new AutoTransport(o);
}

/**
 * Offers h2 and http/1.1 on the first connection and keeps the server's choice for the client's
 * life; the probe's connection becomes the first HTTP/2 session.
 */
class AutoTransport implements Transport {
  private chosen: Transport | undefined;
  private probing: Promise<Transport> | undefined;
  private readonly tls: TlsSettings;
  private closed = false;

  constructor(private readonly o: TransportOptions) {
    this.tls = new TlsSettings(o);
  }

  get protocol(): 'h2' | 'http/1.1' | 'auto' {
    return this.chosen?.protocol ?? 'auto';
  }

  async request(req: TransportRequest): Promise<TransportResponse> {
    const t = this.chosen ?? (await this.choose(req));
    return t.request(req);
  }

  setClientCertificate(cert: Buffer | string | undefined, key: Buffer | string | undefined): void {
    if (this.chosen) this.chosen.setClientCertificate(cert, key);
    else this.tls.setCertificate(cert, key);
  }

  close(): void {
    this.closed = true;
    this.chosen?.close();
  }

  private async choose(req: TransportRequest): Promise<Transport> {
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
    const p = this.probing;
    return new Promise<Transport>((resolve, reject) => {
      const onAbort = (): void => reject(transportError(req.target, req.signal.reason));
      if (req.signal.aborted) {
        onAbort();
        return;
      }
      req.signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (t) => {
          req.signal.removeEventListener('abort', onAbort);
          resolve(t);
        },
        (err: unknown) => {
          req.signal.removeEventListener('abort', onAbort);
          reject(transportError(req.target, err));
        },
      );
    });
  }

  private async probe(): Promise<Transport> {
    const timeoutMs = this.o.readIdleTimeoutMs + this.o.pingTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const sock = await this.tls.connect(this.o.origin, ['h2', 'http/1.1'], deadline).catch((err: unknown) => {
      throw deadline.aborted ? new DeadConnectionError(`no TLS connection to ${this.o.origin.host} within ${timeoutMs} ms`) : err;
    });
    let t: Transport;
    if (sock.alpnProtocol === 'h2') t = new Http2Transport(this.o, this.tls, sock);
    else {
      sock.destroy();
      t = new Http1Transport(this.o, this.tls);
    }
    if (this.closed) t.close();
    this.chosen = t;
    return t;
  }
}
