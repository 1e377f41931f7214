import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withFileLock } from './lock.js';

void test('a wait for a lock held by a live process says so at once, then that it is still waiting', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-lock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lock = join(dir, 'build.lock');
  // Held by this very process: alive, so never taken over.
  await writeFile(lock, `${process.pid}\n`);
  const lines: string[] = [];
  let seen!: () => void;
  const stillWaiting = new Promise<void>((r) => (seen = r));
  const ran = withFileLock(
    lock,
    (l) => {
      lines.push(l);
      if (l.includes('still waiting')) seen();
    },
    () => Promise.resolve('ran'),
  );
  // The first 'still waiting' line is due 5 s into the wait; 30 s leaves a loaded machine room.
  const bound = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error(`no 'still waiting' line within 30 s: ${lines.join(' | ')}`)), 30_000).unref(),
  );
  await Promise.race([stillWaiting, bound]);
  await rm(lock);
  assert.equal(await ran, 'ran');
  assert.match(lines[0]!, /^bosun: waiting for .*build\.lock \(held by pid \d+, doing the same work\)$/);
  assert.match(lines[1]!, /^bosun: {3}still waiting for .*build\.lock, held by a process doing the same work \(\d+ s\)$/);
});
