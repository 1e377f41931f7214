import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../cluster/binaries.js';
import { OPERATOR_ENTRYPOINT, OPERATOR_REF, OPERATOR_USER } from './operator.js';

const repo = join(packageRoot(), '..', '..');

test('the image bosun builds runs as the Dockerfile says: its USER, its ENTRYPOINT, under the name the manifests use', () => {
  const dockerfile = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  assert.equal(/^USER (\S+)$/m.exec(runtime)?.[1], OPERATOR_USER);
  assert.deepEqual(JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(runtime)?.[1] ?? 'null'), OPERATOR_ENTRYPOINT);
  const kustomization = readFileSync(join(repo, 'config/manager/kustomization.yaml'), 'utf8');
  const name = /newName:\s*(\S+)/.exec(kustomization)?.[1];
  const tag = /newTag:\s*(\S+)/.exec(kustomization)?.[1];
  assert.equal(`${name}:${tag}`, OPERATOR_REF);
});
