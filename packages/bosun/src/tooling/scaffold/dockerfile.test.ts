// No Docker engine runs in CI, so the image's rules are pinned on the Dockerfile itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATOR_ENTRYPOINT } from '../image/operator.js';
import { dockerfileProblems, parseDockerfile } from './dockerfile.js';

const root = join(import.meta.dirname, '..', '..', '..', '..', '..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

void test("the repository's Dockerfile: multi-stage, production deps only, non-root, entrypoint, health", () => {
  assert.deepEqual(dockerfileProblems(dockerfile, { entrypoint: OPERATOR_ENTRYPOINT }), []);
  const { stages } = parseDockerfile(dockerfile);
  const final = stages[stages.length - 1]!;
  assert.ok(
    final.instructions.some((i) => i.keyword === 'COPY' && /--from=build\s+\/app\/dist/.test(i.args)),
    'the runtime stage takes the compiled dist/ from the build stage',
  );
  assert.ok(
    stages[0]!.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)),
    'the build stage compiles',
  );
  assert.ok(
    stages.every((s) => /node:20|NODE_IMAGE/.test(s.from)),
    'Node 20 in every stage',
  );
  assert.match(dockerfile, /ARG NODE_IMAGE=node:20-alpine/);
});

void test('.dockerignore keeps local state and dependencies out of the build context', () => {
  const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.bosun', '.git']) assert.ok(ignored.includes(p), `.dockerignore lists ${p}`);
});

void test('the checker refuses single-stage, root, dev dependencies and copied node_modules', () => {
  const one = 'FROM node:20\nRUN npm ci\nUSER root\nENTRYPOINT ["node"]\n';
  const problems = dockerfileProblems(one).join('\n');
  assert.match(problems, /1 stage/);
  assert.match(problems, /npm ci --omit=dev/);
  assert.match(problems, /installs dev dependencies/);
  assert.match(problems, /USER root/);
  assert.match(problems, /HEALTHCHECK/);
  const copied =
    'FROM node:20 AS b\nRUN npm ci\nFROM node:20\nCOPY --from=b /app/node_modules ./node_modules\nRUN npm ci --omit=dev\nENTRYPOINT ["node", "x.js"]\nHEALTHCHECK CMD true\n';
  assert.match(dockerfileProblems(copied).join('\n'), /copies node_modules/);
  assert.match(dockerfileProblems(copied).join('\n'), /no USER/);
  assert.match(dockerfileProblems(copied, { entrypoint: ['node', 'bin/bosun.js', 'run'] }).join('\n'), /ENTRYPOINT is/);
});

void test('continuation lines and comments parse as one instruction', () => {
  const { stages } = parseDockerfile('# c\nFROM a AS x\nRUN one \\\n  two\n# between\nFROM b\n');
  assert.equal(stages.length, 2);
  assert.equal(stages[0]!.name, 'x');
  assert.equal(stages[0]!.instructions[0]!.args, 'one  two');
});
