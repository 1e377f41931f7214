// The promise of `bosun init`: a project that installs and passes its own tests, on the same control plane,
// after `bosun create api` added a second resource. Needs the npm registry (for typebox, tsx, typescript)
// and a built dist/ (the project's file: dependency is this checkout).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const clusterDir = resolve(process.env.BOSUN_TEST_CLUSTER_DIR ?? join(root, '.bosun/test-cluster'));
let tmp: string;

async function sh(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    // Without NODE_TEST_CONTEXT the project's own `node --test` reports as a top-level run, not as our child.
    const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
    return await run(cmd, args, { cwd, env: { ...env, BOSUN_TEST_CLUSTER_DIR: clusterDir }, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bosun-init-'));
  // The project runs the compiled CLI and imports the compiled library through its file: dependency.
  if (!existsSync(join(root, 'dist/src/cli/manifests.js'))) await sh('make', ['build'], root);
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

void test('bosun init, bosun create api, npm install, npm test: the new project passes its own tests', { timeout: 600_000 }, async () => {
  const bosun = [join(root, 'bin/bosun.js')];
  const out = await sh(process.execPath, [...bosun, 'init', 'shop-operator', '--group', 'shop.example.com', '--kind', 'Order'], tmp);
  assert.match(out.stdout, /next: cd shop-operator && npm install && npm test/);
  const dir = join(tmp, 'shop-operator');
  await sh(process.execPath, [...bosun, 'create', 'api', '--group', 'shop.example.com', '--version', 'v1beta1', '--kind', 'Coupon'], dir);
  await sh('npm', ['install', '--no-audit', '--no-fund'], dir);
  const t = await sh('npm', ['test'], dir);
  assert.match(t.stdout, /# pass 2\n# fail 0\n/, t.stdout);
  // The generated manifests form a kustomization that renders, with RBAC for both kinds and nothing else.
  const rendered = (await sh('kubectl', ['kustomize', 'config/default'], dir)).stdout;
  for (const r of ['orders', 'coupons', 'orders/status', 'configmaps']) assert.match(rendered, new RegExp(`- ${r}\\n`), `RBAC mentions ${r}`);
  assert.doesNotMatch(rendered, /'\*'|"\*"|- \*\n/, 'no wildcard');
  assert.match(rendered, /namespace: shop-operator-system/);
});

void test('bosun init refuses a non-empty directory with exit 1 and a message naming it', async () => {
  const bosun = join(root, 'bin/bosun.js');
  await sh(process.execPath, [bosun, 'init', 'taken'], tmp).catch(() => undefined);
  const r = await run(process.execPath, [bosun, 'init', 'taken'], { cwd: tmp }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ScaffoldError: directory taken is not empty .*Fix:/);
  const k = await run(process.execPath, [bosun, 'init', 'other', '--kind', 'lower'], { cwd: tmp }).then(() => ({ stderr: '' }), (e: { stderr: string }) => e);
  assert.match(k.stderr, /--kind 'lower' is not a valid kind/);
});
