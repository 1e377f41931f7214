import type { KubeObject } from '../client/types.js';
import { bosunError } from '../errors.js';

/** Names the object to reconcile; the reconciler reads its current state from the cache. */
export interface Request {
  /** Namespace, or undefined for cluster-scoped objects. */
  namespace?: string;
  name: string;
  /** 'namespace/name' (or 'name'): the queue key. */
  key: string;
}

/**
 * What a reconcile asks for next; an empty result (or none) means "done until something changes".
 * For a retry with backoff, throw: a TemporaryError when the delay is known.
 */
export interface Result {
  /** Run again after this many milliseconds, resetting the key's backoff; zero, negative or absent: no timed requeue. */
  requeueAfterMs?: number;
}

/** The request for an object's key. */
export function requestFor(obj: Pick<KubeObject, 'metadata'>): Request {
  const { namespace, name = '' } = obj.metadata;
  return { namespace, name, key: namespace ? `${namespace}/${name}` : name };
}

/** The request for a queue key. */
export function requestFromKey(key: string): Request {
  const i = key.indexOf('/');
  return i < 0 ? { name: key, key } : { namespace: key.slice(0, i), name: key.slice(i + 1), key };
}

/**
 * A failure that retrying will not fix (bad input, a refused booking): the controller records it
 * and waits for the object to change instead of retrying hot.
 */
export class PermanentError extends bosunError('BOSUN_PERMANENT') {
  override name = 'PermanentError';
  /** A CamelCase reason for conditions and Events, e.g. 'NoSuchRoute'. */
  readonly reason: string;

  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** A failure worth retrying after a given delay (the server said when, or the caller knows). */
export class TemporaryError extends bosunError('BOSUN_TEMPORARY') {
  override name = 'TemporaryError';
  /** Milliseconds to wait before the retry; the per-item backoff applies when it is larger. */
  readonly delayMs: number;

  constructor(message: string, delayMs: number, options?: ErrorOptions) {
    super(message, options);
    this.delayMs = delayMs;
  }
}
