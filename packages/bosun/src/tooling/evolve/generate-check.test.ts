// `bosun generate --check` runs the evolution gate: generated into a scratch directory (so the check is
// of this repository's project module, not of the checked-in files), compared with a release copy that
// had one more field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { program } from '../cli/main.js';
import type { CrdDoc } from './compat.js';

async function run(args: string[]): Promise<{ out: string; err: string; exitCode: number | undefined }> {
  const out: string[] = [];
  const err: string[] = [];
  const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  const before = process.exitCode;
  process.exitCode = undefined;
  process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => (err.push(String(c)), true)) as typeof process.stderr.write;
  try {
    await program().parseAsync(['node', 'bosun', ...args]);
    return { out: out.join(''), err: err.join(''), exitCode: process.exitCode as number | undefined };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    process.exitCode = before;
  }
}

void test('bosun generate --check --against: exits 1 listing the breaking change, 0 against a compatible release', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-generate-check-'));
  try {
    const out = join(dir, 'crd');
    const rbac = join(dir, 'rbac');
    await run(['generate', '--out', out, '--rbac-out', rbac]);
    const release = join(dir, 'release');
    await cp(out, release, { recursive: true });
    const file = join(release, 'messages.myorg.dev.yaml');
    const crd = parse(await readFile(file, 'utf8')) as CrdDoc;
    crd.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!.properties!.legacy = { type: 'string' };
    await writeFile(file, stringify(crd));

    const broken = await run(['generate', '--check', '--out', out, '--rbac-out', rbac, '--against', release]);
    assert.equal(broken.exitCode, 1);
    assert.match(broken.err, /breaking CRD changes against .*\n {2}messages\.myorg\.dev v1 spec\.legacy: spec\.legacy is removed.* Fix: /);

    const same = await run(['generate', '--check', '--out', out, '--rbac-out', rbac, '--against', out]);
    assert.equal(same.exitCode, undefined, same.err);
    assert.match(same.out, /CRDs are compatible with /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
