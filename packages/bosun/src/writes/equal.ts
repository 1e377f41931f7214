import { hash } from 'node:crypto';

/**
 * Deep equality of JSON values, ignoring key order: a reconciler compares the status it wants
 * with the cached one and skips the write when they match, so converged objects cost no writes.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}

/** Whether every field of `want` equals the same field of `have` (fields only in `have` are ignored). */
export function jsonSubsetEqual(want: Record<string, unknown>, have: Record<string, unknown> | undefined): boolean {
  if (!have) return Object.values(want).every((v) => v === undefined);
  return Object.entries(want).every(([k, v]) => v === undefined || jsonEqual(v, have[k]));
}

/**
 * Whether `actual` holds every value `desired` sets (objects compared field by field, arrays
 * element by element, extra fields in `actual` ignored): the API server adds defaults to what
 * we apply, and a child that still carries all our fields needs no write.
 */
export function jsonContains(desired: unknown, actual: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') {
    if (typeof desired === 'number' && typeof actual === 'string') return String(desired) === actual;
    return desired === actual;
  }
  if (actual === null || typeof actual !== 'object') return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return false;
    return desired.every((v, i) => jsonContains(v, actual[i]));
  }
  const a = actual as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => jsonContains(v, a[k]));
}

/**
 * A short fingerprint of a JSON value that does not depend on key order (undefined fields are
 * dropped, as JSON.stringify drops them): what a child was last applied with, compared cheaply.
 */
export function jsonHash(value: unknown): string {
  return hash('sha256', canonicalJson(value), 'hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}
