// Fault injection for the booking service: the failures a real booking API shows an operator
// (overload, throttling, lost connections, lost responses), on demand and reproducibly.
import type { FaultConfig } from './types.js';

/** A fault configuration the service refuses, naming the field and the accepted range. */
export class InvalidFaultConfigError extends Error {
  override name = 'InvalidFaultConfigError';
}

/** What to do with a request before handling it. */
export type PreFault = { kind: 'none' } | { kind: 'drop' } | { kind: 'error' } | { kind: 'rateLimit'; retryAfterSeconds: number };

const RATE_FIELDS = ['errorRate', 'rateLimitRate', 'dropRate', 'dropAfterCommitRate'] as const;

/** Checks an untrusted value (e.g. a `PUT /admin/faults` body) and returns it as a FaultConfig. */
export function parseFaultConfig(value: unknown): FaultConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidFaultConfigError('fault config must be a JSON object');
  }
  const input = value as Record<string, unknown>;
  const known = new Set<string>([...RATE_FIELDS, 'latencyMs', 'retryAfterSeconds', 'seed']);
  for (const field of Object.keys(input)) {
    if (!known.has(field)) {
      throw new InvalidFaultConfigError(`unknown fault config field ${JSON.stringify(field)}; known: ${[...known].join(', ')}`);
    }
  }
  const out: FaultConfig = {};
  for (const field of RATE_FIELDS) {
    const v = input[field];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new InvalidFaultConfigError(`fault config ${field} must be a number in [0, 1], got ${JSON.stringify(v)}`);
    }
    out[field] = v;
  }
  for (const field of ['latencyMs', 'retryAfterSeconds'] as const) {
    const v = input[field];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new InvalidFaultConfigError(`fault config ${field} must be a non-negative number, got ${JSON.stringify(v)}`);
    }
    out[field] = v;
  }
  if (input.seed !== undefined) {
    if (typeof input.seed !== 'number' || !Number.isInteger(input.seed)) {
      throw new InvalidFaultConfigError(`fault config seed must be an integer, got ${JSON.stringify(input.seed)}`);
    }
    out.seed = input.seed;
  }
  return out;
}

/** mulberry32, a small seeded generator: fault sequences (here and in the fault suite) replay from their seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rolls the fault dice for each request according to the current FaultConfig. */
export class FaultInjector {
  private config: FaultConfig = {};
  private random: () => number = Math.random;

  constructor(config: FaultConfig = {}) {
    this.set(config);
  }

  /** Replaces the whole configuration (an empty object turns every fault off) and reseeds if a seed is given. */
  set(config: FaultConfig): void {
    this.config = parseFaultConfig(config);
    this.random = this.config.seed === undefined ? Math.random : mulberry32(this.config.seed);
  }

  /** The configuration in force. */
  get(): FaultConfig {
    return { ...this.config };
  }

  /** Milliseconds to delay the request by. */
  latencyMs(): number {
    return this.config.latencyMs ?? 0;
  }

  /** Decides the fault applied before the request has any effect. */
  before(): PreFault {
    // A rate of 0 rolls no die, so enabling one fault does not shift another's seeded sequence.
    if (this.roll(this.config.dropRate)) return { kind: 'drop' };
    if (this.roll(this.config.errorRate)) return { kind: 'error' };
    if (this.roll(this.config.rateLimitRate)) {
      return { kind: 'rateLimit', retryAfterSeconds: this.config.retryAfterSeconds ?? 1 };
    }
    return { kind: 'none' };
  }

  /** Decides whether to lose the response of a request whose effect has already committed. */
  dropAfterCommit(): boolean {
    return this.roll(this.config.dropAfterCommitRate);
  }

  private roll(rate: number | undefined): boolean {
    if (!rate) return false;
    if (rate >= 1) return true;
    return this.random() < rate;
  }
}
