// The local control plane itself: lifecycle, idempotence, and the bad states a user meets.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, runKubectl, startTestEnv, type TestEnv } from '../envtest/testenv.js';
import { BinaryError, pidAlive, resolvePrograms } from './binaries.js';
import { ClusterError, down, status, up } from './controlplane.js';
import { KUBERNETES_VERSION } from './versions.js';

const quiet = () => undefined;

describe('a cluster directory of its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-cluster-test-'));
  after(async () => {
    await down({ dir, purge: true, progress: quiet });
    rmSync(dir, { recursive: true, force: true });
  });

  test('up starts everything, a second up starts nothing, down leaves no process behind', async () => {
    const first = await up({ dir, progress: quiet });
    assert.equal(first.started, true);
    const st = await status(dir);
    assert.ok(st.apiserverReady);
    assert.deepEqual(
      st.programs.map((p) => [p.name, p.running]),
      [
        ['etcd', true],
        ['kube-apiserver', true],
        ['kube-controller-manager', true],
        ['kube-scheduler', true],
        ['kwok', true],
      ],
    );
    const second = await up({ dir, progress: quiet });
    assert.equal(second.started, false);
    assert.deepEqual(second.state.pids, first.state.pids, 'the same processes, nothing new');
    const pids = Object.values(first.state.pids);
    await down({ dir, progress: quiet });
    assert.deepEqual(
      pids.filter((p) => pidAlive(p)),
      [],
      'no process left behind',
    );
  });

  test('two ups at once on one directory start one cluster, and neither fails', async () => {
    const [a, b] = await Promise.all([up({ dir, progress: quiet }), up({ dir, progress: quiet })]);
    assert.equal([a, b].filter((r) => r.started).length, 1, 'exactly one of them started the programs');
    assert.deepEqual(a.state.pids, b.state.pids, 'both report the same processes');
    const st = await status(dir);
    assert.ok(st.apiserverReady && st.programs.every((p) => p.running), JSON.stringify(st.programs));
    await down({ dir, progress: quiet });
  });

  test('a --dir the cluster cannot use is refused at once with the fix, never a hang', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const cases: [string, RegExp][] = [
      ['/proc/bosun-x', /\/proc\/bosun-x.*\/proc is a kernel filesystem.*choose another --dir/s],
      [join(file, 'sub'), /a-file is a file, not a directory.*choose another --dir/s],
      [file, /a-file is a file, not a directory.*choose another --dir/s],
    ];
    for (const [bad, message] of cases) {
      const t0 = Date.now();
      await assert.rejects(
        up({ dir: bad, progress: quiet }),
        (err: Error) => err instanceof ClusterError && message.test(err.message),
        bad,
      );
      assert.ok(Date.now() - t0 < 5000, `${bad}: refused in ${Date.now() - t0} ms`);
    }
  });

  test('a stale pid file from a dead process is cleaned up and up proceeds', async () => {
    const dead = spawnSync('true').pid!;
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(join(dir, 'pids', 'etcd.pid'), String(dead));
    const lines: string[] = [];
    const r = await up({ dir, progress: (l) => lines.push(l) });
    assert.equal(r.started, true);
    assert.ok(
      lines.some((l) => /stale pid files/.test(l)),
      lines.join('\n'),
    );
    await down({ dir, progress: quiet });
  });

  test('damaged etcd data gives a clear error with the way out, and leaves nothing running', async () => {
    const snapDir = join(dir, 'data', 'etcd', 'member', 'snap');
    const db = join(snapDir, 'db');
    assert.ok(existsSync(db) && statSync(db).size > 0, 'etcd wrote its data');
    writeFileSync(db, 'this is not a bbolt database');
    await assert.rejects(up({ dir, progress: quiet, timeoutMs: 30_000 }), (err: Error) => {
      assert.ok(err instanceof ClusterError);
      assert.match(err.message, /etcd/);
      assert.match(err.message, /bosun cluster down --dir .* --purge/);
      return true;
    });
    const st = await status(dir);
    assert.deepEqual(
      st.programs.filter((p) => p.running).map((p) => p.name),
      [],
    );
    await down({ dir, purge: true, progress: quiet });
    assert.ok(!existsSync(join(dir, 'data')), '--purge removed the data');
  });

  test('a port already in use is refused before anything starts', async () => {
    const srv: Server = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      await assert.rejects(up({ dir, port, progress: quiet }), /port \d+ on 127\.0\.0\.1 is already in use; choose another with --port/);
      assert.ok(!existsSync(join(dir, 'state.json')), 'nothing started');
    } finally {
      srv.close();
    }
  });
});

test('a corrupt program in BOSUN_K8S_BIN_DIR is named, with the fix', async () => {
  const bin = mkdtempSync(join(tmpdir(), 'bosun-bin-'));
  writeFileSync(join(bin, 'etcd'), 'garbage, not a program');
  chmodSync(join(bin, 'etcd'), 0o755);
  const saved = process.env.BOSUN_K8S_BIN_DIR;
  process.env.BOSUN_K8S_BIN_DIR = bin;
  try {
    await assert.rejects(resolvePrograms({ progress: quiet, noDownload: true }), (err: Error) => {
      assert.ok(err instanceof BinaryError);
      assert.match(err.message, new RegExp(`etcd at ${bin}/etcd \\(from BOSUN_K8S_BIN_DIR\\) does not run`));
      assert.match(err.message, /unset BOSUN_K8S_BIN_DIR/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.BOSUN_K8S_BIN_DIR;
    else process.env.BOSUN_K8S_BIN_DIR = saved;
    rmSync(bin, { recursive: true, force: true });
  }
});

describe('the shared test cluster works as a cluster', () => {
  let env: TestEnv;
  before(async () => {
    env = await startTestEnv();
  });
  after(() => env?.cleanup());

  test('kubectl reports the pinned server version and a Ready node', async () => {
    const v = JSON.parse(await env.kubectlOk(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    assert.equal(v.serverVersion.gitVersion, KUBERNETES_VERSION);
    const ready = await env.kubectlOk(['get', 'node', 'bosun-node-0', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    assert.equal(ready, 'True');
  });

  test("the fake Node's Lease is renewed, so the node lifecycle controller never finds it stale", async () => {
    // kube-controller-manager marks a Node NotReady, and every Pod on it NotReady for good, once neither its Lease
    // nor its status was renewed within the 50 s grace period.
    const renewed = await eventually(
      'a Lease renewed in the last 40 s',
      async () => {
        const r = await runKubectl(env.kubeconfig, ['get', 'lease', 'bosun-node-0', '-n', 'kube-node-lease', '-o', 'json']);
        if (r.code !== 0) return undefined;
        const lease = JSON.parse(r.stdout) as { spec: { renewTime?: string; leaseDurationSeconds?: number } };
        const age = Date.now() - Date.parse(lease.spec.renewTime ?? '');
        return age < 40_000 ? lease.spec : undefined;
      },
      20_000,
    );
    assert.equal(renewed.leaseDurationSeconds, 40);
  });

  test('a Deployment reaches 3 Running Pods, and deleting it garbage-collects its ReplicaSet and Pods', async () => {
    const ns = await env.namespace('deploy');
    await env.kubectlOk(['create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=3', '-n', ns]);
    await eventually(
      '3 Running Pods',
      async () => {
        const phases = (await env.kubectlOk(['get', 'pods', '-n', ns, '-l', 'app=web', '-o', 'jsonpath={.items[*].status.phase}']))
          .split(' ')
          .filter((x) => x);
        return phases.length === 3 && phases.every((p) => p === 'Running') ? true : undefined;
      },
      60_000,
    );
    await env.kubectlOk(['delete', 'deployment', 'web', '-n', ns]);
    await eventually(
      'ReplicaSet and Pods gone',
      async () => {
        const left = await env.kubectlOk(['get', 'replicasets,pods', '-n', ns, '-o', 'name']);
        return left.trim() === '' ? true : undefined;
      },
      60_000,
    );
  });

  test('a kubeconfig path that does not exist is a clear kubectl error, not a hang', async () => {
    const r = await runKubectl(join(tmpdir(), 'no-such-kubeconfig'), ['get', 'pods']);
    assert.notEqual(r.code, 0);
    assert.ok(readdirSync(env.dir).includes('kubeconfig'));
  });
});
