// The learning-path runner on plain shell commands: a command that does not print what its step promises, prints
// something it must not, succeeds where it must fail, or hangs, fails the step; background commands are waited
// for and stopped. No cluster: steps without a namespace run no kubectl.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LearnError, loadSteps, renderRunBlock, runStep, type LearnCommand, type LearnStep } from './learn.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'bosun-learn-'));
});
after(() => rm(root, { recursive: true, force: true }));

const say = { en: 'x', ko: 'x' };
const step = (...commands: Omit<LearnCommand, 'say'>[]): LearnStep => ({
  step: 1,
  slug: 'probe',
  title: say,
  commands: commands.map((c) => ({ say, ...c })),
});
const run = (s: LearnStep) => runStep(s, { root, kubeconfig: '/nonexistent', print: () => {} });

void test('a step whose commands show what they promise passes', async () => {
  const r = await run(step({ run: 'echo one; echo two; echo two', expect: ['one', { text: 'two', times: 2 }], absent: ['three'] }));
  assert.deepEqual(r.failures, []);
  assert.equal(r.ok, true);
});

void test('a promised line that is not printed fails the step, naming the command and the line', async () => {
  const r = await run(step({ run: 'echo deployment.apps/hello configured', expect: ['deployment.apps/hello created'] }));
  assert.equal(r.ok, false);
  assert.match(r.failures[0]!, /echo deployment.apps\/hello configured: no "deployment.apps\/hello created"/);
});

void test('a count that differs, a forbidden line, a success where refusal is the lesson, a hang: each fails', async () => {
  assert.match((await run(step({ run: 'echo a a a', expect: [{ text: 'a', times: 2 }] }))).failures[0]!, /"a" 3 times, not 2/);
  assert.match((await run(step({ run: 'echo subscriptions', expect: [], absent: ['subscriptions'] }))).failures[0]!, /must not be/);
  assert.match((await run(step({ run: 'echo refused', fails: true, expect: ['refused'] }))).failures[0]!, /succeeded, but must fail/);
  assert.match((await run(step({ run: 'false' }))).failures[0]!, /exited 1/);
  assert.match((await run(step({ run: 'sleep 30', timeout: 1 }))).failures[0]!, /still running after 1 s/);
});

void test('the step stops at the first failing command', async () => {
  const r = await run(step({ run: 'false' }, { run: 'echo never' }));
  assert.equal(r.outputs.length, 1);
});

void test('a background command is waited for, its log checked at the end, and it is stopped', async () => {
  const s = step(
    { start: 'echo listening; trap "echo got TERM; exit 0" TERM; while true; do sleep 0.05; done', ready: 'listening', logs: ['got TERM'] },
    { run: 'echo work', expect: ['work'] },
  );
  const r = await run(s);
  assert.deepEqual(r.failures, []);
  const bg = r.outputs.find((o) => o.command.endsWith('&'));
  assert.match(bg!.output, /got TERM/);
});

void test('a background command that exits before it is ready fails the step', async () => {
  const r = await run(step({ start: 'echo starting; exit 3', ready: 'listening' }, { run: 'echo never' }));
  assert.match(r.failures[0]!, /exited before it was ready/);
  assert.equal(r.outputs.filter((o) => o.command === 'echo never').length, 0);
});

void test('the rendered block quotes every command and every promised line', () => {
  const s = step({ run: 'kubectl get nodes', expect: ['bosun-node-0'] }, { start: 'bosun run message', ready: 'caches synced' });
  for (const lang of ['en', 'ko'] as const) {
    const b = renderRunBlock(s, lang);
    assert.match(b, /make learn STEP=1/);
    assert.ok(b.includes('   kubectl get nodes\n'), b);
    assert.ok(b.includes('`bosun-node-0`'), b);
    assert.ok(b.includes('   bosun run message &\n'), b);
    assert.ok(b.includes('`caches synced`'), b);
  }
});

void test('steps.yaml loads: steps 1..n, each command run or start', () => {
  const steps = loadSteps();
  assert.deepEqual(
    steps.map((s) => s.step),
    steps.map((_, i) => i + 1),
  );
  assert.throws(() => loadSteps(join(root, 'nowhere')), LearnError);
});
