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
