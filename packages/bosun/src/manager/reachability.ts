// Whether the API server's address takes connections at all. The client retries a refused GET
// within its deadline, so a list against a server that is not there fails only after the
// cache-sync timeout; a plain TCP connect tells the user at once what is wrong.
import { connect } from 'node:net';
import { bosunError } from '../errors.js';

/** The API server's address refuses or drops connections: it is not running there, or the kubeconfig points elsewhere. */
export class ServerUnreachableError extends bosunError('BOSUN_SERVER_UNREACHABLE') {
  override readonly name = 'ServerUnreachableError';
  /** The server URL from the kubeconfig. */
  readonly server: string;
  /** The errno code of the failed connect (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ...); `code` is the bosun error code. */
  readonly errno: string;

  constructor(server: string, errno: string) {
    super(`cannot connect to ${server} (${errno}): is the API server running, and is the kubeconfig's server right?`);
    this.server = server;
    this.errno = errno;
  }
}

/** Options of `probeReachability`. */
export interface ReachabilityOptions {
  /** Give up on one connect after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** Wait after the first failure (default 2 s), doubled after each further one. */
  initialDelayMs?: number;
  /** Upper bound of that wait (default 60 s). */
  maxDelayMs?: number;
}

/** One TCP connect to the server's host and port: undefined when it connects, else the errno code. */
export function connectOnce(server: string, timeoutMs: number): Promise<string | undefined> {
  const url = new URL(server);
  const port = Number(url.port || (url.protocol === 'http:' ? 80 : 443));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (code: string | undefined) => {
      socket.destroy();
      resolve(code);
    };
    socket.setTimeout(timeoutMs, () => done('ETIMEDOUT'));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/**
 * Connects to the server until a connect succeeds or `signal` aborts, calling `onFailure` after each
 * failed attempt: at once, then with a doubling wait, so a server that stays away is reported without
 * a line per retry. Resolves with the last failure, or undefined once the server took a connection.
 */
export async function probeReachability(
  server: string,
  signal: AbortSignal,
  onFailure: (err: ServerUnreachableError) => void,
  opts: ReachabilityOptions = {},
): Promise<ServerUnreachableError | undefined> {
  let delay = opts.initialDelayMs ?? 2_000;
  const maxDelay = opts.maxDelayMs ?? 60_000;
  let last: ServerUnreachableError | undefined;
  while (!signal.aborted) {
    const code = await connectOnce(server, opts.connectTimeoutMs ?? 5_000);
    if (code === undefined) return undefined;
    if (signal.aborted) break;
    last = new ServerUnreachableError(server, code);
    onFailure(last);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delay);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
    delay = Math.min(delay * 2, maxDelay);
  }
  return last;
}
