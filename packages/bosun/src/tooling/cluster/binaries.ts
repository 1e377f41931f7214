import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsc, readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, rename, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { homedir, arch as osArch } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withFileLock } from './lock.js';
import { KUBERNETES_VERSION, PROGRAMS, versionOf, type ProgramName } from './versions.js';
import { bosunError } from '../../errors.js';

export { pidAlive } from './lock.js';

const execFileP = promisify(execFile);

/** Where each control-plane program was found, by name. */
export type ProgramPaths = Record<ProgramName, string>;

/** Reports progress of slow steps (downloads, builds) to the person waiting. */
export type Progress = (line: string) => void;

/** Raised when a program cannot be found, fetched or built; the message says which and what to do. */
export class BinaryError extends bosunError('BOSUN_BINARY') {
  override name = 'BinaryError';
}

/** The root of the bosun package: tools/ (the Go wrapper modules) lives there. */
export function packageRoot(): string {
  // Walk up from this file (src/tooling/cluster or dist/tooling/cluster) to the package.json that names bosun.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'bosun') return dir;
    } catch {
      /* not here */
    }
    const up = dirname(dir);
    if (up === dir)
      throw new BinaryError('cannot find the bosun package root (package.json named "bosun") above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The cache directory for built programs: $BOSUN_CACHE_DIR, else $XDG_CACHE_HOME/bosun, else ~/.cache/bosun. */
export function cacheDir(): string {
  if (process.env.BOSUN_CACHE_DIR) return process.env.BOSUN_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg !== '' ? xdg : join(homedir(), '.cache'), 'bosun');
}

/** The versioned cache path of one program. */
export function cachedPath(name: ProgramName): string {
  return join(cacheDir(), 'bin', `${name}-${versionOf(name)}`, name);
}

/** Options for resolving the programs. */
export interface ResolveOptions {
  /** Where progress lines go; default stderr. */
  progress?: Progress;
  /** Skip the release-download step (used by tests of the build path). */
  noDownload?: boolean;
}

/**
 * Finds every control-plane program: an explicit directory, the versioned cache, the official
 * release downloads (checksum-verified), and last a build from Go modules.
 */
export async function resolvePrograms(opts: ResolveOptions = {}): Promise<ProgramPaths> {
  const progress = opts.progress ?? ((l) => process.stderr.write(`${l}\n`));
  const found: Partial<ProgramPaths> = {};
  for (const name of PROGRAMS) {
    const p = await fromExplicitDirs(name);
    if (p) found[name] = p;
  }
  for (const name of PROGRAMS) {
    if (found[name]) continue;
    const p = cachedPath(name);
    if (await isExecutable(p)) {
      const problem = await checkProgram(name, p);
      if (problem === undefined) {
        found[name] = p;
        continue;
      }
      progress(`bosun: cached ${name} at ${p} is unusable (${problem}); removing it and fetching it again`);
      await rm(dirname(p), { recursive: true, force: true });
    }
  }
  let missing = PROGRAMS.filter((n) => !found[n]);
  if (missing.length > 0 && !opts.noDownload && process.env.BOSUN_NO_DOWNLOAD !== '1') {
    for (const name of missing) {
      const p = await tryDownload(name, progress);
      if (p) found[name] = p;
    }
    missing = PROGRAMS.filter((n) => !found[n]);
  }
  if (missing.length > 0) {
    await buildFromGoModules(missing, progress);
    for (const name of missing) {
      const p = cachedPath(name);
      const problem = await checkProgram(name, p);
      if (problem !== undefined)
        throw new BinaryError(`built ${name} at ${p} does not run: ${problem}; delete ${dirname(p)} and try again`);
      found[name] = p;
    }
  }
  return found as ProgramPaths;
}

async function fromExplicitDirs(name: ProgramName): Promise<string | undefined> {
  for (const env of ['BOSUN_K8S_BIN_DIR', 'KUBEBUILDER_ASSETS'] as const) {
    const dir = process.env[env];
    if (!dir) continue;
    const p = join(dir, name);
    if (!(await isExecutable(p))) continue;
    const problem = await checkProgram(name, p);
    if (problem !== undefined) {
      throw new BinaryError(
        `${name} at ${p} (from ${env}) does not run: ${problem}. Replace it, or unset ${env} to let bosun use its cache or build it.`,
      );
    }
    return p;
  }
  return undefined;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, fsc.X_OK);
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Runs `<program> --version`; returns undefined when it runs and reports the pinned version, else the problem. */
export async function checkProgram(name: ProgramName, path: string): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await execFileP(path, ['--version'], { timeout: 20_000 });
    const out = `${stdout}${stderr}`;
    const want = versionOf(name);
    // etcd prints "etcd Version: 3.6.5"; Kubernetes programs print "Kubernetes v1.35.4"; kwok prints its tag.
    if (!out.includes(want) && !out.includes(want.replace(/^v/, ''))) {
      return `it reports "${out.trim().split('\n')[0] ?? ''}", not ${want}`;
    }
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    return e.code === 'ENOEXEC' || /exec format/i.test(String(e.message))
      ? 'not an executable for this machine (corrupt or wrong architecture)'
      : (e.stderr?.trim() || e.message).split('\n')[0];
  }
}

function goArch(): string {
  const a = osArch();
  return a === 'x64' ? 'amd64' : a === 'arm64' ? 'arm64' : a;
}

/** Release download, verified by its published SHA-256; any failure falls through quickly to the build. */
async function tryDownload(name: ProgramName, progress: Progress): Promise<string | undefined> {
  if (name === 'kwok' || name === 'etcd') return undefined; // their releases ship archives without per-file checksums we can verify here; build instead
  const url = `https://dl.k8s.io/release/${KUBERNETES_VERSION}/bin/linux/${goArch()}/${name}`;
  try {
    const sumRes = await fetch(`${url}.sha256`, { signal: AbortSignal.timeout(5_000) });
    if (!sumRes.ok) return undefined;
    const want = (await sumRes.text()).trim().split(/\s+/)[0] ?? '';
    progress(`bosun: downloading ${name} ${KUBERNETES_VERSION}`);
    const res = await fetch(url, { signal: AbortSignal.timeout(300_000) });
    if (!res.ok) return undefined;
    const body = Buffer.from(await res.arrayBuffer());
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== want) {
      progress(`bosun: ${name} download failed its checksum (got ${got}, want ${want}); building it instead`);
      return undefined;
    }
    const dest = cachedPath(name);
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(`${dest}.tmp`, body, { mode: 0o755 });
    await rename(`${dest}.tmp`, dest);
    return dest;
  } catch {
    progress(`bosun: no release download reachable for ${name}; building it from Go modules`);
    return undefined;
  }
}

/** ldflags that make the built programs report the pinned release, so `kubectl version` shows the real server version. */
function kubeLdflags(): string {
  const v = KUBERNETES_VERSION;
  const [major, minor] = v.replace(/^v/, '').split('.');
  const x = (pkg: string, k: string, val: string): string => `-X ${pkg}.${k}=${val}`;
  const parts = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    parts.push(
      x(pkg, 'gitVersion', v),
      x(pkg, 'gitMajor', major ?? ''),
      x(pkg, 'gitMinor', minor ?? ''),
      x(pkg, 'gitTreeState', 'clean'),
      x(pkg, 'buildDate', '1970-01-01T00:00:00Z'),
    );
  }
  return parts.join(' ');
}

interface GoTarget {
  /** Go wrapper module directory under tools/. */
  module: string;
  /** Package to build, as `go build` takes it inside the module. */
  pkg: string;
  ldflags: string;
}

function goTarget(name: ProgramName): GoTarget {
  switch (name) {
    case 'etcd':
      return { module: 'controlplane', pkg: './cmd/etcd', ldflags: '-s -w' };
    case 'kwok':
      return { module: 'kwok', pkg: 'sigs.k8s.io/kwok/cmd/kwok', ldflags: '-s -w' };
    default:
      return { module: 'controlplane', pkg: `k8s.io/kubernetes/cmd/${name}`, ldflags: kubeLdflags() };
  }
}

async function buildFromGoModules(names: ProgramName[], progress: Progress): Promise<void> {
  const go = await findGo();
  await withFileLock(join(cacheDir(), 'build.lock'), progress, async () => {
    // Another caller may have finished the build while we waited for the lock.
    const todo: ProgramName[] = [];
    for (const n of names) if ((await checkProgram(n, cachedPath(n))) !== undefined) todo.push(n);
    await removeStaleTemps();
    for (const moduleName of ['controlplane', 'kwok']) {
      const group = todo.filter((n) => goTarget(n).module === moduleName);
      for (const name of group) await buildOne(go, name, progress);
    }
  });
}

async function removeStaleTemps(): Promise<void> {
  const dir = join(cacheDir(), 'bin');
  const entries = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.filter((e) => e.startsWith('.build-')).map((e) => rm(join(dir, e), { recursive: true, force: true })));
}

async function findGo(): Promise<string> {
  try {
    await execFileP('go', ['version'], { timeout: 20_000 });
    return 'go';
  } catch {
    throw new BinaryError(
      'the control-plane programs are not cached and no release download is reachable, so they must be built from Go modules, but `go` is not on PATH. ' +
        'Install Go 1.25 or newer, or point BOSUN_K8S_BIN_DIR at a directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.',
    );
  }
}

async function buildOne(go: string, name: ProgramName, progress: Progress): Promise<void> {
  const t = goTarget(name);
  await goBuild({
    go,
    name,
    module: t.module,
    pkg: t.pkg,
    ldflags: t.ldflags,
    dest: cachedPath(name),
    progress,
    announce: `bosun: building ${name} ${versionOf(name)} from Go modules (first time only; kube-apiserver takes several minutes on 2 cores)`,
  });
}

/** What `goBuild` builds: one program of a wrapper module under packages/bosun/tools, into the cache. */
export interface GoBuild {
  /** The go command. */
  go: string;
  name: string;
  /** The wrapper module's directory under packages/bosun/tools. */
  module: string;
  pkg: string;
  ldflags: string;
  /** The cached path; its directory is replaced as a whole. */
  dest: string;
  progress: Progress;
  /** The line said before the build starts. */
  announce: string;
}

/**
 * Builds one program from Go modules into the cache: into a temp dir first and renamed, so an interrupted build
 * leaves only a .build-* dir, which the next call removes; progress every 30 s; the compiler's last words in
 * the error when it fails.
 */
export async function goBuild(b: GoBuild): Promise<void> {
  const { name, progress } = b;
  const moduleDir = join(packageRoot(), 'tools', b.module);
  const binRoot = join(cacheDir(), 'bin');
  await mkdir(binRoot, { recursive: true });
  const tmp = await mkdtemp(join(binRoot, `.build-${name}-`));
  const started = Date.now();
  progress(b.announce);
  let compiled = 0;
  let last = '';
  const child = spawn(b.go, ['build', '-v', '-trimpath', '-ldflags', b.ldflags, '-o', join(tmp, name), b.pkg], {
    cwd: moduleDir,
    env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue;
      compiled++;
      last = line.trim();
      stderrTail = (stderrTail + line + '\n').slice(-4000);
    }
  });
  const timer = setInterval(() => {
    progress(`bosun:   ${name}: ${compiled} packages compiled, ${Math.round((Date.now() - started) / 1000)} s (last: ${last})`);
  }, 30_000);
  const code: number = await new Promise((res) => child.on('close', (c) => res(c ?? 1)));
  clearInterval(timer);
  if (code !== 0) {
    await rm(tmp, { recursive: true, force: true });
    throw new BinaryError(`building ${name} failed (go build exit ${code}) in ${moduleDir}:\n${stderrTail}`);
  }
  await rm(dirname(b.dest), { recursive: true, force: true });
  await rename(tmp, dirname(b.dest));
  await chmod(b.dest, 0o755);
  progress(`bosun: built ${name} in ${Math.round((Date.now() - started) / 1000)} s -> ${b.dest}`);
}
