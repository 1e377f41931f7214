import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PAUSE_REF } from '../image/archive.js';

test('bosun image build pause writes a docker-archive named as the real node expects', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bosun-image-cli-'));
  // A child process: the test runner reports on this process's stdout.
  const printed = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'run-main.ts'), 'image', 'build', 'pause', '--out', out],
    {
      encoding: 'utf8',
    },
  );
  try {
    assert.match(printed, new RegExp(`^${PAUSE_REF.replace(/[.]/g, '\\.')}  sha256:[0-9a-f]{64}  ${join(out, 'pause.tar')}\n$`));
    execFileSync('tar', ['-xf', 'pause.tar', 'manifest.json'], { cwd: out });
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { RepoTags: string[] }[];
    assert.deepEqual(manifest[0]?.RepoTags, [PAUSE_REF]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
