/**
 * Where the kopf style keeps its memory on the object, as kopf does: the diff base (the essence
 * last handled) and the progress of a cause whose handlers have not all succeeded yet, each in an
 * annotation. Encoding is pure; `persist` is the one write.
 */
import type { KubeObject, ResourceType } from '../client/types.js';
import type { ReconcileContext } from '../writes/context.js';
import { stableJson, type DiffBase, type Essence } from './cause.js';

/** The annotation holding the diff base. */
export const DIFF_BASE_ANNOTATION = 'bosun.dev/last-handled-configuration';
/** The annotation holding the progress of an unfinished cause. */
export const PROGRESS_ANNOTATION = 'bosun.dev/handler-progress';
/** Largest diff base stored whole, in bytes of its annotation value; above it the base is a hash only and update handlers get no old essence. */
export const MAX_DIFF_BASE_BYTES = 64 * 1024;
/** The API server's limit for all annotations of one object together (keys and values, in bytes). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
// Kept free beside a whole diff base for the progress annotation written when a handler fails.
const PROGRESS_RESERVE_BYTES = 4 * 1024;

/** The progress of one cause: which handlers (by id) have succeeded. */
export interface Progress {
  /** The controller whose handlers these are (two handler sets on one kind keep apart). */
  controller: string;
  /** The cause type. */
  cause: 'create' | 'update' | 'resume' | 'delete';
  /** The essence hash the cause is about: a further change starts the cause over, so every handler sees it. */
  hash: string;
  /** For resumes: the process that resumes, since each start resumes anew. */
  run?: string;
  /** Ids of the handlers that succeeded. */
  done: string[];
}

/** The diff base an object carries, or undefined (never handled, or an annotation that is not one). */
export function readDiffBase(obj: KubeObject): DiffBase | undefined {
  const raw = obj.metadata.annotations?.[DIFF_BASE_ANNOTATION];
  if (!raw) return undefined;
  try {
    const b = JSON.parse(raw) as { v?: number; hash?: unknown; essence?: Essence; spec?: unknown };
    if (typeof b.hash !== 'string') return undefined;
    if (b.v === 2) return { hash: b.hash, essence: b.essence };
    return { hash: b.hash, essence: 'spec' in b ? { spec: b.spec } : undefined, legacy: true };
  } catch {
    return undefined;
  }
}

/** The progress an object carries for `controller`, if any. */
export function readProgress(obj: KubeObject, controller: string): Progress | undefined {
  const raw = obj.metadata.annotations?.[PROGRESS_ANNOTATION];
  if (!raw) return undefined;
  try {
    const p = JSON.parse(raw) as Progress;
    return p.controller === controller && Array.isArray(p.done) ? p : undefined;
  } catch {
    return undefined;
  }
}

function bytesOf(annotations: Record<string, string> | undefined, skip: string[]): number {
  let n = 0;
  for (const [k, v] of Object.entries(annotations ?? {})) if (!skip.includes(k)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/**
 * The annotation value of a diff base: the essence whole when its value fits MAX_DIFF_BASE_BYTES
 * and, beside the object's other annotations, the API server's total; else the hash only.
 */
export function encodeDiffBase(
  essence: Essence,
  hash: string,
  annotations: Record<string, string> | undefined,
): { value: string; whole: boolean; bytes: number } {
  const whole = `{"v":2,"hash":${JSON.stringify(hash)},"essence":${stableJson(essence)}}`;
  const bytes = Buffer.byteLength(whole);
  const others = bytesOf(annotations, [DIFF_BASE_ANNOTATION, PROGRESS_ANNOTATION]);
  if (
    bytes <= MAX_DIFF_BASE_BYTES &&
    others + Buffer.byteLength(DIFF_BASE_ANNOTATION) + bytes + PROGRESS_RESERVE_BYTES <= MAX_ANNOTATIONS_BYTES
  ) {
    return { value: whole, whole: true, bytes };
  }
  return { value: JSON.stringify({ v: 2, hash }), whole: false, bytes };
}

/** What `persist` writes: a new diff base, and the progress (null clears it). */
export interface Persist {
  base?: string;
  progress?: Progress | null;
}

/** Writes the diff base and/or progress in one merge patch of the object's annotations. */
export async function persist(ctx: ReconcileContext, type: ResourceType, obj: KubeObject, what: Persist): Promise<void> {
  const annotations: Record<string, string | null> = {};
  if (what.base !== undefined) annotations[DIFF_BASE_ANNOTATION] = what.base;
  if (what.progress !== undefined) annotations[PROGRESS_ANNOTATION] = what.progress === null ? null : JSON.stringify(what.progress);
  if (Object.keys(annotations).length === 0) return;
  // The uid makes the patch fail on an object deleted and re-created under the same name, which is not the one handled.
  await ctx.client.patch(
    type,
    obj.metadata.namespace,
    obj.metadata.name ?? '',
    { metadata: { uid: obj.metadata.uid, annotations } },
    'merge',
    {
      fieldManager: ctx.fieldManager,
      signal: ctx.signal,
    },
  );
}
