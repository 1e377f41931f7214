// The JSON patch (RFC 6902) a mutating webhook answers with, computed from the object it was sent and the
// object its mutate function returned. fast-json-patch is what Pepr computes its patches with; its
// `compare` walks both trees once, so a 3 MiB object costs one pass, not a quadratic array diff.
import jsonPatch from 'fast-json-patch';

/** One RFC 6902 operation, as the API server applies it. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; path: string; from: string };

/**
 * The operations that turn `original` into `mutated`; empty when they are equal. Values that JSON cannot
 * hold (undefined, functions) are dropped first, as the API server never sees them.
 */
export function createJsonPatch(original: unknown, mutated: unknown): JsonPatchOperation[] {
  const before = toJson(original);
  const after = toJson(mutated);
  return jsonPatch.compare(before as object, after as object) as JsonPatchOperation[];
}

/** `original` with `patch` applied, on a copy: what the API server stores after a mutating webhook. */
export function applyJsonPatch<T>(original: T, patch: readonly JsonPatchOperation[]): T {
  return jsonPatch.applyPatch(toJson(original) as T, patch as jsonPatch.Operation[], true, true).newDocument;
}

function toJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null)) as unknown;
}
