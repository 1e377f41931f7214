// `bosun init` and `bosun create api`: write a project, or add an API to one, refusing anything that would clobber work.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { packageRoot } from '../cluster/binaries.js';
import * as t from './templates.js';
import { bosunError } from '../../errors.js';

/** Raised when a flag, directory or file makes scaffolding impossible; the message names it and the fix. */
export class ScaffoldError extends bosunError('BOSUN_SCAFFOLD') {
  override name = 'ScaffoldError';
}

/** The flags that name an API. */
export interface ApiFlags {
  group: string;
  version: string;
  kind: string;
}

const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;
const GROUP = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
const PROJECT = /^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$/;

/** English plural of a lower-case kind, as kubebuilder makes it (widget → widgets, policy → policies). */
export function pluralOf(lower: string): string {
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(lower)) return `${lower}es`;
  return `${lower}s`;
}

/** Validates the API flags and derives every name the templates use. */
export function apiNames(f: ApiFlags): t.ApiNames {
  if (!KIND.test(f.kind))
    throw new ScaffoldError(
      `--kind '${f.kind}' is not a valid kind. Fix: UpperCamelCase letters and digits, starting with a capital letter (e.g. --kind Widget)`,
    );
  if (!VERSION.test(f.version))
    throw new ScaffoldError(`--version '${f.version}' is not a Kubernetes API version. Fix: v1, v2, v1beta1 or v1alpha2`);
  if (!GROUP.test(f.group))
    throw new ScaffoldError(
      `--group '${f.group}' is not a DNS subdomain with a dot. Fix: a lower-case domain you own (e.g. --group example.com)`,
    );
  const lower = f.kind.toLowerCase();
  return {
    group: f.group,
    version: f.version,
    kind: f.kind,
    lower,
    plural: pluralOf(lower),
    camel: f.kind[0]!.toLowerCase() + f.kind.slice(1),
  };
}

/** The files one API adds, by path relative to the project root. */
export function apiFiles(a: t.ApiNames): Record<string, string> {
  return {
    [`src/apis/${a.lower}.ts`]: t.apiFile(a),
    [`src/controllers/${a.lower}.ts`]: t.controllerFile(a),
    [`src/controllers/${a.lower}.test.ts`]: t.controllerTestFile(a),
    [`config/samples/${a.lower}.yaml`]: t.sampleFile(a),
  };
}

async function writeAll(root: string, files: Record<string, string>): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, text);
    written.push(rel);
  }
  return written;
}

/**
 * The bosun dependency of a new project: this bosun's version range when it runs as an installed package, a
 * `file:` path when it runs from a checkout of its repository (a development build no registry has).
 */
export function defaultBosunSpec(): string {
  const root = packageRoot();
  if (root.split(sep).includes('node_modules'))
    return `^${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version}`;
  return `file:${root}`;
}

/** Options of `initProject`. */
export interface InitOptions extends ApiFlags {
  /** npm name and RBAC prefix; default the directory's name. */
  name?: string;
  /** The bosun dependency; default {@link defaultBosunSpec}. */
  bosunSpec?: string;
}

/** Writes a new operator project into dir (which must be absent or empty) with one API; returns the files written. */
export async function initProject(dir: string, o: InitOptions): Promise<string[]> {
  const root = resolve(dir);
  const entries = await readdir(root).catch(() => [] as string[]);
  if (entries.length > 0)
    throw new ScaffoldError(
      `directory ${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}). Fix: pass a new or empty directory, or use 'bosun create api' inside an existing project`,
    );
  const name = o.name ?? basename(root);
  if (!PROJECT.test(name))
    throw new ScaffoldError(
      `project name '${name}' (from ${o.name ? '--name' : 'the directory name'}) must be lower-case letters, digits and dashes, starting with a letter. Fix: pass --name my-operator`,
    );
  apiNames(o); // refuse bad flags before writing anything
  const p: t.ProjectNames = { name, namespace: `${name}-system`, bosunSpec: o.bosunSpec ?? defaultBosunSpec() };
  const files: Record<string, string> = {
    'package.json': t.packageJson(p),
    'tsconfig.json': t.tsconfigFile(),
    'tsconfig.build.json': t.tsconfigBuildFile(),
    Makefile: t.makefile(p),
    Dockerfile: t.dockerfile(),
    '.dockerignore': 'node_modules\ndist\n.bosun\n.git\n',
    '.gitignore': 'node_modules/\ndist/\n.bosun/\n',
    'README.md': t.readme(p),
    'src/operator.ts': t.operatorFile(p),
    'src/main.ts': t.mainFile(p),
    ...t.configFiles(p),
  };
  const written = await writeAll(root, files);
  // createApi edits src/operator.ts, already listed above.
  written.push(...(await createApi(root, o)).filter((f) => !written.includes(f)));
  return written;
}

/** Adds a typed resource, its controller, a test and a sample to the project in dir, and registers them in src/operator.ts. */
export async function createApi(dir: string, f: ApiFlags): Promise<string[]> {
  const root = resolve(dir);
  const a = apiNames(f);
  const registry = join(root, 'src/operator.ts');
  const text = await readFile(registry, 'utf8').catch(() => undefined);
  if (text === undefined)
    throw new ScaffoldError(
      `${registry} not found. Fix: run 'bosun create api' in a project made by 'bosun init' (or pass --dir <project>)`,
    );
  for (const m of Object.values(t.MARKERS)) {
    if (!text.includes(m))
      throw new ScaffoldError(`${registry} lacks the marker '${m}'. Fix: put the line back where the list it marks ends`);
  }
  const files = apiFiles(a);
  const clash = Object.keys(files).find((rel) => existsSync(join(root, rel)));
  if (clash)
    throw new ScaffoldError(
      `${clash} already exists: the project already has kind ${a.kind}. Fix: choose another --kind, or delete ${clash} first`,
    );
  const edited = text
    .replace(
      t.MARKERS.imports,
      `import { ${a.kind}Resource } from './apis/${a.lower}.js';\nimport { ${a.camel}Controller } from './controllers/${a.lower}.js';\n${t.MARKERS.imports}`,
    )
    .replace(t.MARKERS.resources, `${a.kind}Resource,\n  ${t.MARKERS.resources}`)
    .replace(t.MARKERS.controllers, `${a.camel}Controller,\n  ${t.MARKERS.controllers}`);
  const written = await writeAll(root, files);
  await writeFile(registry, edited);
  return [...written, 'src/operator.ts'];
}
