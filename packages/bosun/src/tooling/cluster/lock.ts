// An exclusive lock file, so two callers never build the same thing at once; a lock left by a
// process that died is taken over, safely even when several waiters notice at the same moment.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stillWaiting } from './waiting.js';

/** A lock file with no owner pid written yet is taken as abandoned after this long. */
const EMPTY_LOCK_STALE_MS = 30_000;
const LOCK_POLL_MS = 500;

/** Whether a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs fn while holding an exclusive lock file; a lock left by a dead process is taken over. */
export async function withFileLock<T>(lockPath: string, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockPath), { recursive: true });
  let waited = false;
  // Builds hold a lock for minutes: a line every 30 s is enough to show the wait goes on.
  const waiting = stillWaiting(log, `${lockPath}, held by a process doing the same work`, { everyMs: 30_000 });
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if ((owner > 0 && !pidAlive(owner)) || (!(owner > 0) && age > EMPTY_LOCK_STALE_MS)) {
      // Move it aside atomically, then make sure what was moved is the lock judged stale: another
      // waiter may have taken it over and locked anew in between.
      const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      const moved = await rename(lockPath, aside).then(
        () => true,
        () => false,
      );
      if (moved) {
        const movedOwner = Number.parseInt(await readFile(aside, 'utf8').catch(() => ''), 10);
        if (movedOwner === owner || !(movedOwner > 0)) {
          log(`bosun: taking over ${lockPath}, left by a process that is gone`);
        } else {
          await link(aside, lockPath).catch(() => undefined); // a live lock: put it back
        }
        await rm(aside, { force: true });
      }
      continue;
    }
    if (!waited) log(`bosun: waiting for ${lockPath} (held by pid ${owner || '?'}, doing the same work)`);
    waited = true;
    waiting();
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}
