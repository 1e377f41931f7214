// The guide's TypeScript examples are compiled against the package as it is, so an API change that
// breaks them fails here instead of in a reader's editor.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// What the guide leaves to the reader: the Pod a Message wants, the handler that makes it, a shutdown signal.
const PRELUDE = `
import type { HandlerArgs, Pod } from 'bosun';
declare function desiredPod(msg: Message): Pod;
declare function ensurePod(args: HandlerArgs<Message>): Promise<void>;
declare const signal: AbortSignal;
`;

const IMPORT = /^import (type )?\{([^}]*)\} from '([^']+)';$/;

/**
 * One module from every ```ts block of a markdown text, in order: the blocks build on each other
 * (the resource of section 1 is reconciled in section 2), and each repeats the imports it needs, so
 * the imports are merged and hoisted.
 */
export function guideModule(markdown: string, prelude = PRELUDE): string {
  const blocks = [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  const imports = new Map<string, Map<string, boolean>>(); // module → name → imported as a type only
  const body: string[] = [];
  for (const line of [prelude, ...blocks].join('\n').split('\n')) {
    const m = IMPORT.exec(line.trim());
    if (!m) {
      body.push(line);
      continue;
    }
    const [, wholeType, names = '', from = ''] = m;
    const names_ = imports.get(from) ?? new Map<string, boolean>();
    imports.set(from, names_);
    for (const raw of names
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean)) {
      const typeOnly = wholeType !== undefined || raw.startsWith('type ');
      const name = raw.replace(/^type /, '');
      names_.set(name, (names_.get(name) ?? true) && typeOnly);
    }
  }
  const header = [...imports].map(
    ([from, names]) => `import { ${[...names].map(([n, typeOnly]) => (typeOnly ? `type ${n}` : n)).join(', ')} } from '${from}';`,
  );
  return [...header, ...body].join('\n');
}

/**
 * Type errors of modules compiled in one program with the repository's tsconfig, each placed in `dirs[name]`
 * (relative to the repository root; default `docs`) so its relative imports resolve as the reader's would.
 */
export function typeErrors(sources: Record<string, string>, dirs: Record<string, string> = {}): Record<string, string[]> {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, root).options, noEmit: true };
  // Names no other file has, so nothing in the repository imports or shadows them.
  const files = new Map(Object.entries(sources).map(([name, text]) => [join(root, dirs[name] ?? 'docs', `${name}.generated.ts`), text]));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    const text = files.get(name);
    return text !== undefined ? ts.createSourceFile(name, text, version) : getSourceFile(name, version, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host });
  const result: Record<string, string[]> = {};
  for (const [file, text] of files) {
    const sf = program.getSourceFile(file);
    assert.ok(sf, `${file} is part of the program`);
    // Only these modules' errors: the rest of the repository is type-checked by \`tsc\` itself.
    const name = Object.keys(sources).find((n) => file.endsWith(`${n}.generated.ts`)) ?? file;
    result[name] = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)].map((d) => {
      const line = d.start !== undefined ? sf.getLineAndCharacterOfPosition(d.start).line : -1;
      return `line ${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}\n  ${text.split('\n')[line] ?? ''}`;
    });
  }
  return result;
}

const guide = readFileSync(join(root, 'docs', 'guide.md'), 'utf8');
// What the other documents leave to the reader: the operator under test.
const DOC_PRELUDE = "\nimport type { ControllerSpec } from 'bosun';\ndeclare const messageController: ControllerSpec;\n";
/** Every other document with TypeScript blocks, and where its examples live (their relative imports start there). */
const DOCS: Record<string, { file: string; dir: string }> = {
  readme: { file: 'README.md', dir: '.' },
  application: { file: 'operators/application/README.md', dir: 'operators/elevenstapp' },
  errors: { file: 'docs/errors.md', dir: 'docs' },
};
const docModule = (file: string) => guideModule(readFileSync(join(root, file), 'utf8'), DOC_PRELUDE);
// A use of an inferred type that must not compile: a Pod's phase is a string union, not a number.
const misuse =
  "\n```ts\nimport { Pod, type CacheReader } from 'bosun';\n" +
  'declare const cache: CacheReader;\nconst phase: number | undefined = cache.ownedBy(Pod, {} as Message)[0]?.status?.phase;\n```\n';
// One program for every check: building it is most of the cost.
let checked: Record<string, string[]> | undefined;
const errorsOf = (name: string): string[] =>
  (checked ??= typeErrors(
    {
      guide: guideModule(guide),
      misuse: guideModule(guide + misuse),
      ...Object.fromEntries(Object.entries(DOCS).map(([n, d]) => [n, docModule(d.file)])),
    },
    Object.fromEntries(Object.entries(DOCS).map(([n, d]) => [n, d.dir])),
  ))[name] ?? [];

void test("docs/guide.md's TypeScript examples compile against bosun", () => {
  assert.match(guideModule(guide), /ctx\.cache\.get\(MessageResource/, 'the guide still shows a typed cache read');
  assert.deepEqual(errorsOf('guide'), []);
});

for (const [name, { file }] of Object.entries(DOCS)) {
  void test(`${file}'s TypeScript examples compile against bosun`, () => {
    assert.match(docModule(file), /from 'bosun/, `${file} still has an example`);
    assert.deepEqual(errorsOf(name), []);
  });
}

void test('every markdown file with a TypeScript example is checked', () => {
  const checkedFiles = new Set(['docs/guide.md', ...Object.values(DOCS).map((d) => d.file)]);
  const withExamples = [
    'README.md',
    ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`),
    ...readdirSync(join(root, 'operators')).map((d) => `operators/${d}/README.md`),
  ].filter((f) => f.endsWith('.md') && existsSync(join(root, f)) && /^```ts$/m.test(readFileSync(join(root, f), 'utf8')));
  assert.deepEqual(
    withExamples.filter((f) => !checkedFiles.has(f)),
    [],
  );
});

void test('an example that misuses an inferred type fails the check (the check is not vacuous)', () => {
  const errors = errorsOf('misuse');
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0] ?? '', /is not assignable to type 'number'/);
});
