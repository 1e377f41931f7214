/**
 * When the client resends a request by itself, as client-go's rest client does: throttling (429)
 * and server errors are retried honouring Retry-After, up to 10 times, never past the request's
 * deadline, so one throttled page does not restart a whole paginated list.
 */

/** How many times and how fast to retry. */
export interface RetryPolicy {
  /** Retries after the first attempt (client-go: 10). */
  maxRetries: number;
  /** First delay when the server gave no Retry-After; doubles per retry. */
  baseDelayMs: number;
  /** Cap of a delay the client chose itself (a server's Retry-After is honoured as given). */
  maxDelayMs: number;
}

/** client-go's count; the delays are short because without Retry-After the server gave no hint. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxRetries: 10, baseDelayMs: 200, maxDelayMs: 5000 };

/** How an attempt failed. */
export type AttemptFailure =
  /** The server answered with this status (and maybe Retry-After). */
  | { kind: 'status'; status: number; retryAfterSeconds?: number | undefined }
  /** No answer: connection refused, reset, dead. `unprocessed` when the server surely never saw it. */
  | { kind: 'transport'; unprocessed: boolean };

/** Methods that may be resent after an answer that says nothing about whether they took effect. */
const IDEMPOTENT = new Set(['GET', 'HEAD']);

/**
 * The delay before retry number `retries + 1`, or undefined to give up and report `failure`.
 * `remainingMs` is the time left before the request's deadline (Infinity without one): a retry
 * that could only start after it is not attempted, so the caller sees the server's own error.
 */
export function retryDelay(
  policy: RetryPolicy,
  retries: number,
  method: string,
  failure: AttemptFailure,
  remainingMs: number,
  random: () => number = Math.random,
): number | undefined {
  if (retries >= policy.maxRetries) return undefined;
  const idempotent = IDEMPOTENT.has(method.toUpperCase());
  const backoff = (): number => Math.min(policy.baseDelayMs * 2 ** retries, policy.maxDelayMs) * (0.5 + random() / 2);
  let delay: number;
  if (failure.kind === 'transport') {
    if (!idempotent && !failure.unprocessed) return undefined;
    delay = backoff();
  } else {
    const { status, retryAfterSeconds } = failure;
    // 429 is refused before any processing (API Priority and Fairness); a 5xx with Retry-After is the server asking to come back.
    if (status === 429 || (status >= 500 && status <= 599 && retryAfterSeconds !== undefined)) {
      delay = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : backoff();
    } else if (status >= 500 && status <= 599 && idempotent) {
      delay = backoff();
    } else return undefined;
  }
  return delay < remainingMs ? delay : undefined;
}
