// What an operator process loads: every module is memory the process holds for its whole life.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The packages (under node_modules) a fresh process has required after importing `modules`. */
async function requiredPackages(modules: string[]): Promise<string[]> {
  const script = [
    ...modules.map((m) => `await import(${JSON.stringify(resolve(REPO, m))});`),
    "const { createRequire } = await import('node:module');",
    'const keys = Object.keys(createRequire(import.meta.url).cache);',
    "console.log(JSON.stringify(keys.filter((k) => k.includes('/node_modules/')).map((k) => k.split('/node_modules/').pop())));",
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO });
  return JSON.parse(stdout) as string[];
}

test('`bosun run` and the operators load no certificate library until a certificate is made (@peculiar/x509 costs ~9 MiB)', async () => {
  const loaded = await requiredPackages(['packages/bosun/src/tooling/cli/main.ts', 'operators/index.ts']);
  assert.ok(
    loaded.some((p) => p.startsWith('pino/')),
    `the check sees CommonJS packages the graph requires (pino): ${loaded.join(', ')}`,
  );
  const x509 = loaded.filter((p) => p.startsWith('@peculiar/') || p.startsWith('tsyringe/') || p.startsWith('reflect-metadata/'));
  assert.deepEqual(x509, [], 'loaded at startup');
});
