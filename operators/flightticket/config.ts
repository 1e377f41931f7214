// Where the booking service is and where its API key lives: operator configuration, not ticket spec,
// so one Secret serves every ticket and rotating it needs no ticket change.
import { createHash } from 'node:crypto';
import { ApiError, Secret, type KubeClient, type KubeObject } from 'bosun';

/** Raised when the operator's configuration is missing or malformed; names the variable and the fix. */
export class FlightTicketConfigError extends Error {
  override name = 'FlightTicketConfigError';
}

/** Raised when the API key cannot be read from its Secret (missing Secret or key); the Secret, not the ticket, needs fixing. */
export class ApiKeyUnavailableError extends Error {
  override name = 'ApiKeyUnavailableError';
}

/** The FlightTicket operator's configuration. */
export interface FlightTicketConfig {
  /** Base URL of the booking service. */
  bookingUrl: string;
  /** The Secret holding the API key. */
  apiKeySecret: { namespace: string; name: string };
  /** The key in the Secret's data (default `apiKey`). */
  apiKeyField?: string;
  /** How long a read API key is reused before the Secret is read again (default 10 s). */
  apiKeyTtlMs?: number;
  /** How long a ticket waits before trying again after the key was refused or could not be read (default 30 s). */
  credentialsRetryMs?: number;
  /** Per-request timeout of booking-service calls (default 5 s). */
  requestTimeoutMs?: number;
}

/** Reads the configuration from `FLIGHTTICKET_BOOKING_URL` and `FLIGHTTICKET_API_KEY_SECRET` (`namespace/name`). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): FlightTicketConfig {
  const bookingUrl = env.FLIGHTTICKET_BOOKING_URL?.trim();
  if (!bookingUrl)
    throw new FlightTicketConfigError(
      'FLIGHTTICKET_BOOKING_URL is not set; set it to the booking service base URL, e.g. http://booking:8080',
    );
  let url: URL | undefined;
  try {
    url = new URL(bookingUrl);
  } catch {
    url = undefined;
  }
  // 'booking:8080' parses as scheme 'booking:': a host and port written without a scheme, not a URL meant.
  if (!url || !/^[a-z][-+.a-z0-9]*:\/\//i.test(bookingUrl)) {
    throw new FlightTicketConfigError(
      `FLIGHTTICKET_BOOKING_URL=${JSON.stringify(bookingUrl)} is not a URL; set it to e.g. http://booking:8080`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FlightTicketConfigError(
      `FLIGHTTICKET_BOOKING_URL=${JSON.stringify(bookingUrl)} uses ${url.protocol}; the booking service is reached over http: or https:, e.g. http://booking:8080`,
    );
  }
  const ref = env.FLIGHTTICKET_API_KEY_SECRET?.trim() ?? '';
  const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-.a-z0-9]*)$/.exec(ref);
  if (!m)
    throw new FlightTicketConfigError(
      `FLIGHTTICKET_API_KEY_SECRET=${JSON.stringify(ref)} must be "namespace/name" of the Secret whose key apiKey holds the booking API key`,
    );
  return { bookingUrl, apiKeySecret: { namespace: m[1]!, name: m[2]! } };
}

/** A short, non-reversible fingerprint of a key, to tell keys apart without keeping or logging the key. */
function fingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * The booking API key, read from its Secret through the API client and cached briefly: a
 * rotated key is picked up within the TTL, and 200 tickets reconciling at once cost one read.
 * It also remembers a key the service refused, so tickets do not each try it again.
 */
export class ApiKeySource {
  private cached: { key: string; at: number } | undefined;
  private reading: Promise<string> | undefined;
  private refused: { fp: string; until: number } | undefined;

  constructor(private readonly config: FlightTicketConfig) {}

  /** Where the key comes from, for messages (never the key itself). */
  describe(): string {
    const { namespace, name } = this.config.apiKeySecret;
    return `Secret ${namespace}/${name} (key ${this.config.apiKeyField ?? 'apiKey'})`;
  }

  /** The API key; throws ApiKeyUnavailableError when the Secret or its key is missing. */
  async get(client: KubeClient): Promise<string> {
    const ttl = this.config.apiKeyTtlMs ?? 10_000;
    if (this.cached && Date.now() - this.cached.at < ttl) return this.cached.key;
    // One read for every reconcile that finds the cache expired at the same moment.
    this.reading ??= this.read(client).finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Whether the service refused this key recently: skip the call and report the refusal again. */
  isRefused(key: string): boolean {
    return this.refused !== undefined && this.refused.fp === fingerprint(key) && Date.now() < this.refused.until;
  }

  /** Records that the service refused this key; the Secret is read again on the next reconcile. */
  markRefused(key: string): void {
    this.refused = { fp: fingerprint(key), until: Date.now() + (this.config.credentialsRetryMs ?? 30_000) };
    this.cached = undefined;
  }

  private async read(client: KubeClient): Promise<string> {
    const { namespace, name } = this.config.apiKeySecret;
    const field = this.config.apiKeyField ?? 'apiKey';
    let secret: KubeObject & { data?: Record<string, string> };
    try {
      secret = await client.get(Secret, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        throw new ApiKeyUnavailableError(
          `cannot read ${this.describe()}: ${err.status === 404 ? 'it does not exist' : 'forbidden'}; create it or grant the operator get on it`,
        );
      }
      throw err;
    }
    const b64 = secret.data?.[field];
    const key = b64 === undefined ? '' : Buffer.from(b64, 'base64').toString('utf8').trim();
    if (!key) throw new ApiKeyUnavailableError(`${this.describe()} has no non-empty ${field}; put the booking API key there`);
    this.cached = { key, at: Date.now() };
    return key;
  }
}
