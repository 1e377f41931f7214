// `bosun run` on a cluster without the operators' CRDs: a control plane of its own (the shared test
// cluster's CRDs are never deleted), so the operator's lists get 404s. It must name each missing CRD
// and the command that installs it, exit instead of waiting forever, and not storm the API server.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runKubectl } from 'bosun/envtest';
import { down, up } from '../../packages/bosun/src/tooling/cluster/controlplane.js';
import { commandLine, errorLine, recordCase, runCli } from './lib/cli.js';

const QUIET = ['--standalone', '--metrics-addr', '0', '--health-addr', '0', '--cache-sync-timeout', '3000'];
const missing = (r: string) =>
  `cannot watch ${r}: 404: the CRD is not installed or does not serve this version (kubectl apply -f config/crd)`;

describe('operators run on a cluster without their CRDs', { concurrency: 2 }, () => {
  let dir: string;
  let kubeconfig: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bosun-badinput-nocrd-'));
    ({ kubeconfig } = await up({ dir, progress: () => {} }));
  });
  after(async () => {
    if (dir) await down({ dir, purge: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [ops, resources] of [
    [['message'], ['messages.myorg.dev']],
    [
      ['message', 'application'],
      ['messages.myorg.dev', 'applications.shclub.github.io'],
    ],
  ] as const) {
    test(`bosun run ${ops.join(' ')} names ${resources.join(' and ')} as not installed and exits`, async () => {
      const args = ['run', ...ops, '--kubeconfig', kubeconfig, ...QUIET];
      const r = await runCli(args, { timeoutMs: 60_000 });
      const line = errorLine(r);
      recordCase({
        id: `crd-missing: bosun run ${ops.join(' ')}`,
        input: 'a cluster without the CRDs',
        message: line,
        names: 'each missing CRD (plural.group)',
        fix: 'kubectl apply -f config/crd',
        command: commandLine(args).replace(kubeconfig, '<cluster without CRDs>/kubeconfig'),
      });
      assert.equal(r.timedOut, false);
      assert.equal(r.code, 1);
      assert.equal(
        line,
        `bosun: CacheSyncTimeoutError: caches did not sync within 3000 ms (cacheSyncTimeoutMs): ${resources.map(missing).join('; ')}`,
      );
      const restarts = r.stdout.split('\n').filter((l) => l.includes('"msg":"watch restarting"')).length;
      assert.ok(restarts <= 5 * (resources.length + 1), `${restarts} watch restarts in 3 s: backoff, not a storm`);
      // The log, read while it still runs, says the same: which CRD, not the server's '404 page not found'.
      for (const res of resources) {
        const warned = r.stdout.split('\n').filter((l) => l.includes('"msg":"watch restarting"') && l.includes(`"resource":"${res}"`));
        assert.ok(warned.length > 0, `a watch warning for ${res}`);
        for (const l of warned)
          assert.ok(l.includes(`"err":"cannot watch ${res}: 404: the CRD is not installed`), `the warning names the missing CRD: ${l}`);
      }
    });
  }

  test('kubectl apply of a Message says the kind is unknown and that the CRDs come first', async () => {
    const args = ['apply', '-f', 'examples/message.yaml'];
    const r = await runKubectl(kubeconfig, args);
    recordCase({
      id: 'crd-missing: kubectl apply examples/message.yaml',
      input: 'a Message on a cluster without its CRD',
      message: r.stderr.trim(),
      names: 'the kind and version',
      fix: 'ensure CRDs are installed first',
      command: `kubectl ${args.join(' ')}`,
    });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr.trim(),
      'error: resource mapping not found for name: "example-message" namespace: "" from "examples/message.yaml": no matches for kind "Message" in version "myorg.dev/v1"\nensure CRDs are installed first',
    );
  });
});
