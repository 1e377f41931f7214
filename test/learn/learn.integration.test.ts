// Every step of the learning path, run as `make learn STEP=n` runs it, on the test cluster: each command must show
// the output its page promises (docs/learn/steps.yaml is the one source of both). Steps start what they need
// (operators, the booking service) and stop it; what they leave behind is removed at the end.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestEnv, type TestEnv } from 'bosun/envtest';
import { loadSteps, pagePath, runStep } from '../../packages/bosun/src/tooling/cli/learn.js';
import { root } from './pages.js';

const steps = loadSteps(root);
let env: TestEnv;

before(async () => {
  env = await startTestEnv({ crds: ['config/crd'] });
  // Left by an earlier run (with KEEP_CLUSTER=1): their deletion proceeds while the first steps run, instead of
  // each step waiting for its own in turn.
  const namespaces = steps.flatMap((s) => (s.namespace ? [s.namespace] : []));
  await env.kubectl(['delete', 'namespace', '--ignore-not-found', '--wait=false', ...namespaces]);
});

after(async () => {
  if (!env) return;
  for (const s of steps)
    for (const c of s.cleanup ?? []) {
      const args = c.replace(/^kubectl /, '').split(' ');
      await env.kubectl([...args, '--ignore-not-found', '--wait=false']);
    }
});

for (const step of steps) {
  void test(`step ${step.step} (${pagePath(step, 'en')}): every command shows what the page promises`, async () => {
    const lines: string[] = [];
    const r = await runStep(step, { root, kubeconfig: env.kubeconfig, clusterDir: env.dir, print: (l) => lines.push(l) });
    assert.ok(r.ok, `${r.failures.join('\n')}\n--- output (last 120 lines) ---\n${lines.slice(-120).join('\n')}`);
  });
}
