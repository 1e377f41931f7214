// The promise of the package: `npm pack` of bosun gives a tarball a new project installs and uses. `bosun init`
// makes a project whose bosun dependency is that tarball (no link into this repository), `npx bosun create api`
// (the installed CLI) adds a second resource, and the project passes its own tests on the same control plane.
// Needs the npm registry (for bosun's dependencies, typebox, tsx, typescript) and a built dist/.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const run = promisify(execFile);
/** The repository root (where make builds) and the bosun package in it. */
const root = join(import.meta.dirname, '..', '..', '..', '..', '..');
const pkgDir = join(root, 'packages', 'bosun');
const clusterDir = resolve(process.env.BOSUN_TEST_CLUSTER_DIR ?? join(root, '.bosun/test-cluster'));
let tmp: string;

async function sh(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    // Without NODE_TEST_CONTEXT the project's own `node --test` reports as a top-level run, not as our child.
    const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
    return await run(cmd, args, {
      cwd,
      env: { ...env, BOSUN_TEST_CLUSTER_DIR: clusterDir },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 300_000,
    });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bosun-init-'));
  if (!existsSync(join(pkgDir, 'dist/.built'))) await sh('make', ['build'], root);
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A kubeconfig whose user runs an exec plugin, as EKS and GKE write them. */
const EXEC_KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true } }]
users: [{ name: eks, user: { exec: { apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token] } } }]
contexts: [{ name: c, context: { cluster: c, user: eks } }]
current-context: c
`;

/** What `npm pack --json` says of a tarball. */
interface PackInfo {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

void test(
  'npm pack, bosun init with the tarball, npx bosun create api, npm install, npm test: the new project passes its own tests',
  { timeout: 600_000 },
  async (t) => {
    const packed = JSON.parse(
      (await sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], pkgDir)).stdout,
    ) as PackInfo[];
    const info = packed[0]!;
    const tarball = join(tmp, info.filename);
    const shipped = info.files.map((f) => f.path);
    // Users get the compiled library, the CLI and the Go modules the local cluster builds from: no tests, sources, maps.
    assert.deepEqual(
      shipped.filter((f) => /\.test\.|\.map$|^src\/|^bench\/|^test\//.test(f)),
      [],
    );
    for (const f of [
      'package.json',
      'bin/bosun.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/runtime.js',
      'dist/crd.js',
      'dist/envtest.js',
    ])
      assert.ok(shipped.includes(f), `the tarball holds ${f}`);
    assert.ok(
      shipped.some((f) => f.startsWith('tools/')),
      'the tarball holds tools/ (the control plane is built from it)',
    );

    const out = await sh(
      process.execPath,
      [
        join(pkgDir, 'bin/bosun.js'),
        'init',
        'shop-operator',
        '--group',
        'shop.example.com',
        '--kind',
        'Order',
        '--bosun',
        `file:${tarball}`,
      ],
      tmp,
    );
    assert.match(out.stdout, /next: cd shop-operator && npm install && npm test/);
    const dir = join(tmp, 'shop-operator');
    await sh('npm', ['install', '--no-audit', '--no-fund'], dir);
    // The installed bosun is a copy of the tarball, not a link back into this repository.
    const installed = (await sh('npm', ['ls', 'bosun', '--json'], dir)).stdout;
    assert.match(installed, new RegExp(`"resolved": "file:.*${info.filename.replace(/\./g, '\\.')}"`));
    await sh('npx', ['bosun', 'create', 'api', '--group', 'shop.example.com', '--version', 'v1beta1', '--kind', 'Coupon'], dir);
    const tested = await sh('npm', ['test'], dir);
    assert.match(tested.stdout, /# pass 2\n# fail 0\n/, tested.stdout);
    // The generated manifests form a kustomization that renders, with RBAC for both kinds and nothing else.
    const rendered = (await sh('kubectl', ['kustomize', 'config/default'], dir)).stdout;
    for (const r of ['orders', 'coupons', 'orders/status', 'configmaps'])
      assert.match(rendered, new RegExp(`- ${r}\\n`), `RBAC mentions ${r}`);
    assert.doesNotMatch(rendered, /'\*'|"\*"|- \*\n/, 'no wildcard');
    assert.match(rendered, /namespace: shop-operator-system/);

    // client-node is an optional peer: not installed, and a kubeconfig that needs it (an exec plugin) says what to install.
    assert.ok(!existsSync(join(dir, 'node_modules/@kubernetes/client-node')), 'client-node is not installed by default');
    await writeFile(join(dir, 'exec.kubeconfig'), EXEC_KUBECONFIG);
    const probe =
      "import { KubeClient, Namespace } from 'bosun'; KubeClient.fromConfig({ kubeconfig: 'exec.kubeconfig' }).list(Namespace).then(() => console.log('listed'), (e) => console.log(`${e.name}: ${e.message} ${e.cause?.message ?? ''}`));";
    const said = (await sh(process.execPath, ['--input-type=module', '-e', probe], dir)).stdout;
    assert.match(
      said,
      /user 'eks' authenticates with an exec plugin, which bosun runs through @kubernetes\/client-node, an optional dependency that is not installed\. Fix: npm install @kubernetes\/client-node/,
      said,
    );

    const prod = (await sh('npm', ['ls', '--all', '--omit=dev', '--parseable'], dir)).stdout.split('\n').filter(Boolean).length - 1;
    t.diagnostic(
      `tarball ${info.filename}: ${(info.size / 1024).toFixed(0)} KiB packed, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${info.entryCount} files; the new project's production dependencies (npm ls --all --omit=dev): ${prod} packages`,
    );
  },
);

void test('bosun init refuses a non-empty directory with exit 1 and a message naming it', async () => {
  const bosun = join(pkgDir, 'bin/bosun.js');
  await sh(process.execPath, [bosun, 'init', 'taken'], tmp).catch(() => undefined);
  const r = await run(process.execPath, [bosun, 'init', 'taken'], { cwd: tmp }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ScaffoldError: directory taken is not empty .*Fix:/);
  const k = await run(process.execPath, [bosun, 'init', 'other', '--kind', 'lower'], { cwd: tmp }).then(
    () => ({ stderr: '' }),
    (e: { stderr: string }) => e,
  );
  assert.match(k.stderr, /--kind 'lower' is not a valid kind/);
});
