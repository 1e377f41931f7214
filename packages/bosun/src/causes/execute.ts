/**
 * The execution of one cause's handlers with per-handler progress, as kopf records it: handlers
 * run in order, each success is remembered by handler id, and a retry (in this process or the
 * next) skips the handlers that already succeeded for the same cause of the same essence.
 */
import type { Progress } from './diffbase.js';

/** One handler of a cause, by id. */
export interface HandlerStep {
  /** Stable within the handler set: where the handler was declared, and its function name. */
  id: string;
  call(): Promise<void> | void;
}

/** What `executeCause` needs to know and do. */
export interface CauseRun {
  controller: string;
  cause: Progress['cause'];
  /** The essence hash the cause is about. */
  hash: string;
  /** For resumes: this process's run id. */
  run?: string;
  /** The progress recorded before, if any (of any cause). */
  previous: Progress | undefined;
  steps: HandlerStep[];
  /** Records the progress after a failure; its own failure must not hide the handler's. */
  save(progress: Progress): Promise<void>;
}

/** Whether recorded progress belongs to this very cause: same type, same essence, same run for a resume. */
export function progressApplies(p: Progress | undefined, run: Pick<CauseRun, 'controller' | 'cause' | 'hash' | 'run'>): p is Progress {
  return p !== undefined && p.controller === run.controller && p.cause === run.cause && p.hash === run.hash && p.run === run.run;
}

/**
 * Runs the steps not yet done, in order. On the first failure it saves the progress (when it
 * changed) and rethrows; on success it resolves, and the caller clears the progress with its
 * diff-base write.
 */
export async function executeCause(r: CauseRun): Promise<void> {
  const before = progressApplies(r.previous, r) ? r.previous.done : [];
  const done = new Set(before);
  for (const step of r.steps) {
    if (done.has(step.id)) continue;
    try {
      await step.call();
    } catch (err) {
      if (done.size > before.length) {
        await r.save({ controller: r.controller, cause: r.cause, hash: r.hash, ...(r.run ? { run: r.run } : {}), done: [...done] });
      }
      throw err;
    }
    done.add(step.id);
  }
}
