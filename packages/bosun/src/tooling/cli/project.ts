// The project module: what `bosun run` and `bosun generate` read of an operator project. Named by `--from`, or
// by the `bosun.project` field of the nearest package.json, so a project's commands need no flags.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ControllerSpec } from '../../controller/builder.js';
import type { CustomResource } from '../../resource/resource.js';
import type { NamedRead } from '../generate/rbac.js';
import type { AdmissionWebhook, ApiVersions } from '../../webhook/declare.js';
import { bosunError } from '../../errors.js';

/** One operator `bosun run <name>` can start: its controllers (built at start, so they may read the environment). */
export interface OperatorEntry {
  /** One line for `bosun run --help`. */
  description: string;
  controllers(): ControllerSpec[];
}

/**
 * What a project module exports. `bosun run` needs `operators`; `bosun generate` needs `resources` and
 * `controllers` (every controller the deployed operator runs: RBAC is generated from what they declare).
 */
export interface ProjectModule {
  /** The operators by name; the first is what `bosun run` starts when given none. */
  operators?: Record<string, OperatorEntry>;
  /** Every controller of the deployed operator, for RBAC. */
  controllers?: ControllerSpec[];
  /** Every custom resource the project defines, for its CRDs: every version of each (several versions of one CRD need `versions`). */
  resources?: readonly CustomResource[];
  /** The CRDs served at several versions, with their conversions: one multi-version CRD and a conversion webhook each. */
  versions?: readonly ApiVersions[];
  /** The admission webhooks the operator serves: `bosun run` serves and registers them, `bosun generate` writes their configuration. */
  webhooks?: readonly AdmissionWebhook[];
  /** Objects the controllers read by name (RBAC `resourceNames`). */
  reads?: NamedRead[];
  /** The prefix of the generated ServiceAccount, roles and bindings. */
  prefix?: string;
  /** The namespace the operator is deployed to. */
  namespace?: string;
}

/** Raised when the project module cannot be found or loaded, or lacks an export; names the module and the fix. */
export class ProjectModuleError extends bosunError('BOSUN_PROJECT_MODULE') {
  override name = 'ProjectModuleError';
}

/** A loaded project module and where it came from (for messages). */
export interface LoadedProject {
  module: ProjectModule;
  /** The path as the user gave it (`--from`) or as package.json names it. */
  source: string;
}

/** This CLI runs from its TypeScript sources, so a TypeScript loader is already in place. */
const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');

const FIX = 'Fix: pass --from <module>, or set "bosun": { "project": "<module>" } in the project\'s package.json';

/** The module the nearest package.json (from `cwd` up) names in `bosun.project`, resolved to an absolute path. */
export function projectModulePath(cwd = process.cwd()): { path: string; source: string } | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const pkgFile = join(dir, 'package.json');
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { bosun?: { project?: unknown } };
      if (typeof pkg.bosun?.project === 'string')
        return { path: resolve(dir, pkg.bosun.project), source: `${pkgFile} bosun.project (${pkg.bosun.project})` };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

// A TypeScript module under a compiled CLI: load it through the project's own tsx. Without the project's tsconfig:
// its `paths` may map 'bosun' to sources, and a second copy of bosun beside the running one breaks every
// `instanceof` between them (a PermanentError from one is an unknown error to the other).
async function registerTsx(from: string): Promise<boolean> {
  try {
    // require.resolve gives the CommonJS build, whose register() cannot install the ESM hooks; the .mjs beside it can.
    const api = createRequire(join(dirname(from), 'noop.js'))
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs');
    const { register } = (await import(pathToFileURL(api).href)) as { register: (o: { tsconfig: false }) => unknown };
    register({ tsconfig: false });
    return true;
  } catch {
    return false;
  }
}

/** Loads the project module `from` (a path; default: package.json's `bosun.project`). */
export async function loadProject(from?: string, cwd = process.cwd()): Promise<LoadedProject> {
  const found = from !== undefined ? { path: resolve(cwd, from), source: `--from ${from}` } : projectModulePath(cwd);
  if (!found) throw new ProjectModuleError(`no project module: no --from and no package.json with "bosun.project" from ${cwd} up. ${FIX}`);
  if (!existsSync(found.path)) {
    // --from names the path already; package.json's field is relative to it, so the resolved path is worth saying.
    throw new ProjectModuleError(`${found.source}: no such file${from === undefined ? ` ${found.path}` : ''}. ${FIX}`);
  }
  // A module that failed to load stays failed in Node's module map, so tsx is registered before the first import.
  const typescript = /\.[mc]?ts$/.test(found.path) && !RUNNING_FROM_SOURCE;
  if (typescript && !(await registerTsx(found.path))) {
    throw new ProjectModuleError(
      `${found.source}: ${found.path} is TypeScript and tsx is not installed in the project. Fix: npm install --save-dev tsx, or point at the compiled .js`,
    );
  }
  let mod: ProjectModule;
  try {
    mod = (await import(pathToFileURL(found.path).href)) as ProjectModule;
  } catch (err) {
    const e = err as Error;
    throw new ProjectModuleError(
      `${found.source} failed to load: ${e.name}: ${e.message}. Fix: make it load on its own (${/\.[mc]?ts$/.test(found.path) ? 'node --import tsx' : 'node'} ${found.path})`,
      { cause: err },
    );
  }
  return { module: mod, source: found.source };
}
