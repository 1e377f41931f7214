// Every error class any module under src/ exports is a BosunError with a code of its own from
// ERROR_CODES, and docs/errors.md explains every code: a class added without a code, or with a code
// taken from its parent, fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BosunError, ERROR_CODES, bosunError, codeOf, type BosunErrorCode } from './errors.js';

const SRC = import.meta.dirname;
// Entry scripts that run the CLI when imported.
const SCRIPTS = new Set(['tooling/cli/run-main.ts']);

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'testdata' ? [] : modules(p);
    const rel = relative(SRC, p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts') && !SCRIPTS.has(rel) ? [p] : [];
  });
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Every exported class that is an Error, by the first module that exports it. */
async function exportedErrorClasses(): Promise<Map<ErrorClass, string>> {
  const found = new Map<ErrorClass, string>();
  for (const file of modules(SRC)) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (typeof value === 'function' && value.prototype instanceof Error && !found.has(value as ErrorClass))
        found.set(value as ErrorClass, `${relative(SRC, file)}: ${name}`);
    }
  }
  return found;
}

void test('every error class exported under src/ is a BosunError with its own registered code and keeps its name', async () => {
  const classes = await exportedErrorClasses();
  assert.ok(classes.size >= Object.keys(ERROR_CODES).length, `found only ${classes.size} error classes`);
  const byCode = new Map<BosunErrorCode, string>();
  for (const [cls, where] of classes) {
    if (cls === BosunError) continue;
    assert.ok(
      cls.prototype instanceof BosunError,
      `${where} does not extend BosunError: declare it as \`extends bosunError('BOSUN_...')\``,
    );
    const code = codeOf(cls);
    assert.ok(code, `${where} has no registered code`);
    const taken = byCode.get(code);
    assert.equal(taken, undefined, `${where} has the code ${code} of ${taken}: give it its own with bosunError(code, Parent)`);
    byCode.set(code, where);
    assert.equal(ERROR_CODES[code], cls.name, `ERROR_CODES.${code} names ${ERROR_CODES[code]}, but ${where} carries it`);
  }
  const unused = (Object.keys(ERROR_CODES) as BosunErrorCode[]).filter((c) => !byCode.has(c));
  assert.deepEqual(unused, [], 'codes in ERROR_CODES that no exported class carries');
});

void test('docs/errors.md explains exactly the registered codes', () => {
  const doc = readFileSync(join(SRC, '../../../docs/errors.md'), 'utf8');
  const documented = [...doc.matchAll(/^## (BOSUN_[A-Z0-9_]+)\b/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  for (const code of documented) {
    const section = doc.split(`## ${code}`)[1]!.split('\n## ')[0]!;
    assert.match(section, new RegExp(`\`${ERROR_CODES[code as BosunErrorCode]}\``), `${code}'s section names its class`);
    assert.match(section, /\*\*Fix\*\*/, `${code}'s section says how to fix it`);
  }
});

void test('an error carries its code on the instance and the class, and a subclass its own', () => {
  class Parent extends bosunError('BOSUN_PERMANENT') {
    override name = 'Parent';
  }
  class Child extends bosunError('BOSUN_CHILD_INVALID', Parent) {
    override name = 'Child';
  }
  const e = new Child('the message', { cause: 'why' });
  assert.ok(e instanceof Parent && e instanceof BosunError && e instanceof Error);
  assert.equal(e.code, 'BOSUN_CHILD_INVALID');
  assert.equal(new Parent('x').code, 'BOSUN_PERMANENT');
  assert.equal(codeOf(Child), 'BOSUN_CHILD_INVALID');
  assert.equal(e.name, 'Child');
  assert.equal(e.message, 'the message');
  assert.equal(e.cause, 'why');
  // Enumerable, so JSON log lines carry it as they carry Node's own error codes.
  assert.equal(JSON.parse(JSON.stringify(e)).code, 'BOSUN_CHILD_INVALID');
  assert.equal(codeOf(Error), undefined);
  assert.equal(
    codeOf(
      class extends BosunError {
        readonly code = 'BOSUN_PERMANENT' as const;
      },
    ),
    undefined,
    'a class without its own static code is not registered',
  );
});
