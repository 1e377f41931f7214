// `bosun generate`: every generated manifest (CRDs and RBAC) from one source of truth, the code.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { OPERATORS, RESOURCES } from '../../operators/index.js';
import type { ControllerSpec } from '../controller/builder.js';
import { Secret } from '../client/resources.js';
import type { CustomResource } from '../crd/resource.js';
import { checkCrds, crdFilePath, generateCrds } from '../crd/generate.js';
import { checkRbac, generateRbac, writeRbac, type NamedRead, type RbacFile } from '../rbac/generate.js';
import { bosunError } from '../errors.js';

/** The namespace the operator Deployment runs in (config/default sets it; overlays may change it). */
export const OPERATOR_NAMESPACE = 'bosun-system';
/** The prefix of the operator's ServiceAccount, roles and bindings. */
export const RBAC_PREFIX = 'bosun';
/** The Secret (in the operator namespace) holding the booking-service API key FlightTicket reads. */
export const FLIGHTTICKET_API_KEY_SECRET_NAME = 'flightticket-api-key';

/** What a project gives generation: its controllers, resources and named reads. */
export interface ManifestSources {
  controllers: ControllerSpec[];
  resources: readonly CustomResource[];
  reads: NamedRead[];
  prefix: string;
  namespace: string;
}

/** Raised when a `--from` module does not export what generation needs; names the export and the fix. */
export class ManifestSourceError extends bosunError('BOSUN_MANIFEST_SOURCE') {
  override name = 'ManifestSourceError';
}

/**
 * The environment config/manager/manager.yaml gives the operators. Some operators build their controllers
 * from the environment; generation declares them with the values the Deployment uses, not the caller's shell.
 */
export const DEPLOYMENT_ENV: Readonly<Record<string, string>> = {
  FLIGHTTICKET_API_KEY_SECRET: `${OPERATOR_NAMESPACE}/${FLIGHTTICKET_API_KEY_SECRET_NAME}`,
  FLIGHTTICKET_BOOKING_URL: `http://flightticket-booking.${OPERATOR_NAMESPACE}.svc:8080`,
};

function withDeploymentEnv<T>(fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(DEPLOYMENT_ENV).map((k) => [k, process.env[k]]));
  Object.assign(process.env, DEPLOYMENT_ENV);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** This repository's sources: every registered operator's controllers, deduplicated, and their named reads. */
export function repoManifestSources(): ManifestSources {
  const controllers = [...new Set(withDeploymentEnv(() => Object.values(OPERATORS).flatMap((o) => o.controllers())))];
  // The FlightTicket operator reads its API key by name; env FLIGHTTICKET_API_KEY_SECRET in
  // config/manager points at this Secret in the operator namespace, so a Role can name it exactly.
  const reads: NamedRead[] = OPERATORS.flightticket ? [{ type: Secret, names: [FLIGHTTICKET_API_KEY_SECRET_NAME] }] : [];
  return { controllers, resources: RESOURCES, reads, prefix: RBAC_PREFIX, namespace: OPERATOR_NAMESPACE };
}

/** Loads a project's sources from a module exporting `controllers`, `resources` and optionally `reads`, `prefix`, `namespace`. */
export async function moduleManifestSources(file: string): Promise<ManifestSources> {
  const fix = "Fix: pass the module that exports 'controllers' and 'resources' (e.g. --from src/operator.ts)";
  const path = resolve(file);
  // Node's own errors here name manifests.ts as the importer and say nothing of --from.
  if (!(await stat(path).then((s) => s.isFile(), () => false))) throw new ManifestSourceError(`--from ${file}: no such file. ${fix}`);
  let mod: Partial<ManifestSources>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Partial<ManifestSources>;
  } catch (err) {
    const e = err as Error;
    throw new ManifestSourceError(`--from ${file} failed to load: ${e.name}: ${e.message}. ${fix}, and check that it runs`, { cause: err });
  }
  if (!Array.isArray(mod.controllers)) throw new ManifestSourceError(`${file}: no 'controllers' array export. Fix: export const controllers: ControllerSpec[] = [...]`);
  if (!Array.isArray(mod.resources)) throw new ManifestSourceError(`${file}: no 'resources' array export. Fix: export const resources: CustomResource[] = [...]`);
  return { controllers: mod.controllers, resources: mod.resources, reads: mod.reads ?? [], prefix: mod.prefix ?? RBAC_PREFIX, namespace: mod.namespace ?? OPERATOR_NAMESPACE };
}

/** The RBAC files for a project's sources. */
export function rbacFor(src: ManifestSources): RbacFile[] {
  return generateRbac(src.controllers, { prefix: src.prefix, namespace: src.namespace, reads: src.reads });
}

/**
 * The CRD directory's kustomization, named `Kustomization` (no extension) on purpose: `kubectl apply -f
 * config/crd/` reads only .yaml/.json files, so it keeps working beside `kubectl apply -k`.
 */
export function crdKustomization(resources: readonly CustomResource[], crdOut: string): string {
  const files = resources.map((r) => `  - ${basename(crdFilePath(r, crdOut))}`).join('\n');
  return `# Generated by \`bosun generate\`: the CRDs for \`kubectl apply -k\` (config/default).\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${files}\n`;
}

/** Options of `bosun generate`. */
export interface ManifestsOptions {
  out: string;
  check?: boolean;
  rbacOut: string;
  from?: string;
}

/** Writes (or with `check`, verifies) the CRDs and RBAC; returns the stale files when checking. */
export async function generateManifests(o: ManifestsOptions, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<string[]> {
  const src = o.from ? await moduleManifestSources(o.from) : repoManifestSources();
  const crdOut = resolve(o.out);
  const rbacOut = resolve(o.rbacOut);
  const rbac = rbacFor(src);
  const kustomization = join(crdOut, 'Kustomization');
  const kustomizationText = crdKustomization(src.resources, crdOut);
  if (o.check) {
    const staleKustomization = (await readFile(kustomization, 'utf8').catch(() => '')) === kustomizationText ? [] : [kustomization];
    return [...(await checkCrds(src.resources, crdOut)), ...staleKustomization, ...(await checkRbac(rbac, rbacOut))];
  }
  for (const f of await generateCrds(src.resources, crdOut)) log(`wrote ${f}`);
  await writeFile(kustomization, kustomizationText);
  log(`wrote ${kustomization}`);
  for (const f of await writeRbac(rbac, rbacOut)) log(`wrote ${f}`);
  return [];
}

/** `bosun generate`: every generated manifest, CRDs and least-privilege RBAC, from the code. */
export function generateCommand(): Command {
  return (
    new Command('generate')
      .description('write config/crd/*.yaml and config/rbac/*.yaml from the code (CRDs from the resource definitions, RBAC from what the controllers declare)')
      /** Where the CRD files go. */
      .option('--out <dir>', 'output directory for CRDs', 'config/crd')
      /** Where the RBAC files and their kustomization.yaml go. */
      .option('--rbac-out <dir>', 'output directory for RBAC', 'config/rbac')
      /** A project module to read instead of this repository's operators (for projects made by bosun init). */
      .option('--from <module>', "module exporting 'controllers' and 'resources' (a .ts file needs node --import tsx)")
      /** Check only: exit 1 naming the files that differ from what generation gives. */
      .option('--check', 'write nothing; exit 1 naming the stale files')
      .addHelpText(
        'after',
        ['', 'Examples:', '  bosun generate', '  bosun generate --check', '  node --import tsx node_modules/bosun/bin/bosun.js generate --from src/operator.ts'].join('\n'),
      )
      .action(async (o: ManifestsOptions) => {
        const stale = await generateManifests(o);
        if (o.check && stale.length) {
          process.stderr.write(`stale manifests (run: make manifests, or bosun generate):\n${stale.map((f) => `  ${f}`).join('\n')}\n`);
          process.exitCode = 1;
        } else if (o.check) process.stdout.write('CRD and RBAC manifests are up to date\n');
      })
  );
}
