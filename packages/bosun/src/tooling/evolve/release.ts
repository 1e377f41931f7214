// The CRDs of the last release, for the evolution gate of `bosun generate --check`: read from a git tag
// (or any ref) of the repository the CRD directory is in, or from a directory holding a stored copy.
import { execFile } from 'node:child_process';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { bosunError } from '../../errors.js';
import { compareCrdSets, formatFinding, type CrdDoc, type Finding } from './compat.js';

const run = promisify(execFile);

/** The release to compare with cannot be read: an --against that is neither a directory nor a git ref, or unreadable CRD files. */
export class ReleaseRefError extends bosunError('BOSUN_RELEASE_REF') {
  override name = 'ReleaseRefError';
}

/** The CRDs of a release, and where they were read from (for messages). */
export interface ReleasedCrds {
  /** e.g. `v0.2.0:config/crd` or a directory path. */
  source: string;
  crds: CrdDoc[];
}

function isCrd(doc: unknown): doc is CrdDoc {
  const d = doc as Partial<CrdDoc> | null;
  return d?.kind === 'CustomResourceDefinition' && typeof d.metadata?.name === 'string' && Array.isArray(d.spec?.versions);
}

function isManifest(file: string): boolean {
  return /\.(ya?ml|json)$/.test(file);
}

/** The CRD objects in a YAML or JSON text (every document of kind CustomResourceDefinition); `where` names it in errors. */
export function parseCrds(text: string, where: string): CrdDoc[] {
  const out: CrdDoc[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new ReleaseRefError(`${where}: not valid YAML (${doc.errors[0]!.message}). Fix: point --against at the release's CRD files`);
    }
    const value: unknown = doc.toJS();
    if (isCrd(value)) out.push(value);
  }
  return out;
}

/** The CRDs in the manifest files of a directory (not recursive: a CRD directory is flat). */
export async function readCrdDir(dir: string): Promise<CrdDoc[]> {
  const files = (await readdir(dir)).filter(isManifest).sort();
  const out: CrdDoc[] = [];
  for (const f of files) out.push(...parseCrds(await readFile(join(dir, f), 'utf8'), join(dir, f)));
  return out;
}

async function git(cwd: string, args: string[]): Promise<string | undefined> {
  try {
    return (await run('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch {
    return undefined;
  }
}

async function existingAncestor(dir: string): Promise<string> {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const s = await stat(d).catch(() => undefined);
    if (s?.isDirectory() === true) return realpath(d);
    if (dirname(d) === d) return d;
  }
}

/** The repository the CRD directory is in and the directory's path inside it, or undefined outside a repository. */
async function repoOf(crdDir: string): Promise<{ top: string; path: string } | undefined> {
  const near = await existingAncestor(crdDir);
  const top = (await git(near, ['rev-parse', '--show-toplevel']))?.trim();
  if (!top) return undefined;
  const missing = relative(near, resolve(crdDir));
  const path = relative(await realpath(top), join(near, missing))
    .split(sep)
    .join('/');
  return { top, path };
}

/** The CRDs under `path` of the tree at `ref`; none when the directory did not exist there. */
async function crdsAtRef(top: string, ref: string, path: string): Promise<CrdDoc[]> {
  const listing = await git(top, ['ls-tree', '--name-only', `${ref}:${path}`]);
  if (listing === undefined) return [];
  const out: CrdDoc[] = [];
  for (const name of listing.split('\n').filter(isManifest).sort()) {
    const text = await git(top, ['show', `${ref}:${path}/${name}`]);
    if (text === undefined) throw new ReleaseRefError(`git show ${ref}:${path}/${name} failed in ${top}. Fix: check that the ref exists`);
    out.push(...parseCrds(text, `${ref}:${path}/${name}`));
  }
  return out;
}

/**
 * The last release's CRDs: those in `against` (a directory, else a git ref), or with no `against` those
 * at the latest tag matching v* reachable from HEAD, read at the CRD directory's path; `{ none: reason }`
 * when there is nothing to compare with (no tag, or not in a git repository).
 */
export async function releasedCrds(crdDir: string, against?: string): Promise<ReleasedCrds | { none: string }> {
  if (against !== undefined) {
    const s = await stat(against).catch(() => undefined);
    if (s?.isDirectory() === true) return { source: against, crds: await readCrdDir(against) };
  }
  const repo = await repoOf(crdDir);
  if (repo === undefined) {
    if (against !== undefined) {
      throw new ReleaseRefError(
        `--against ${against}: not a directory, and ${crdDir} is not in a git repository to read a ref from. Fix: give a directory holding the release's CRD files`,
      );
    }
    return { none: `${crdDir} is not in a git repository` };
  }
  let ref = against;
  if (ref === undefined) {
    ref = (await git(repo.top, ['describe', '--tags', '--abbrev=0', '--match', 'v*', 'HEAD']))?.trim();
    if (!ref) return { none: `no git tag matching v* in ${repo.top}` };
  } else if ((await git(repo.top, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])) === undefined) {
    throw new ReleaseRefError(
      `--against ${ref}: neither a directory nor a git ref of ${repo.top}. Fix: give a tag or commit (git tag --list 'v*'), or a directory holding the release's CRD files`,
    );
  }
  return { source: `${ref}:${repo.path}`, crds: await crdsAtRef(repo.top, ref, repo.path) };
}

/** Options of `checkEvolution`. */
export interface EvolutionCheckOptions {
  /** The CRD directory `bosun generate` writes (and `--check` has verified against the code). */
  crdDir: string;
  /** A git ref or directory of the release to compare with; default the latest v* tag. */
  against?: string;
  /** The files the drift check found stale: when some are in crdDir, its files are not what the code generates, and are not compared. */
  stale?: readonly string[];
}

/**
 * The evolution gate of `bosun generate --check`: compares the CRDs in `crdDir` with the last release's,
 * writes one line per breaking change to `err` (or one line saying what was compared, or that there was
 * nothing to compare with, to `out`), and returns the findings.
 */
export async function checkEvolution(
  o: EvolutionCheckOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<Finding[]> {
  const crdDir = resolve(o.crdDir);
  if (o.stale?.some((f) => resolve(f).startsWith(crdDir + sep)) === true) {
    out(`the CRDs in ${o.crdDir} are stale: they are compared with the last release once regenerated`);
    return [];
  }
  const released = await releasedCrds(o.crdDir, o.against);
  if ('none' in released) {
    out(`no release to compare the CRDs with (${released.none}; --against <ref|dir> names one): checked drift only`);
    return [];
  }
  const findings = compareCrdSets(released.crds, await readCrdDir(o.crdDir).catch(() => []));
  if (findings.length === 0) {
    out(`CRDs are compatible with ${released.source} (${released.crds.length} CRD${released.crds.length === 1 ? '' : 's'} compared)`);
  } else {
    err(`breaking CRD changes against ${released.source}:\n${findings.map((f) => `  ${formatFinding(f)}`).join('\n')}`);
  }
  return findings;
}
