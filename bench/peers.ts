// The benchmark peers: the same Message operator written with kopf and with controller-runtime,
// built on first use into a cache outside the repository and handed back as commands to spawn.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withFileLock } from 'bosun/envtest';

/** A program to start: command, arguments and the complete environment to give it. */
export interface PeerCommand {
  /** The executable, an absolute path. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** The whole environment for the child (process.env plus KUBECONFIG and the peer's settings). */
  env: Record<string, string>;
  /** The directory to start it in. */
  cwd: string;
}

/** The two peers of bosun's Message operator. */
export interface Peers {
  /** kopf (Python): `python -m kopf run --standalone --all-namespaces main.py`. */
  kopf: PeerCommand;
  /** controller-runtime (Go): the `message-operator` binary. */
  controllerRuntime: PeerCommand;
}

/** Options of ensurePeers. */
export interface EnsurePeersOptions {
  /** Kubeconfig the peers talk to (as KUBECONFIG and, for controller-runtime, --kubeconfig); default: the caller's KUBECONFIG. */
  kubeconfig?: string;
  /** Watch only this namespace instead of all namespaces. */
  namespace?: string;
  /** controller-runtime's MaxConcurrentReconciles (--workers); default 8, the peer's own default. */
  workers?: number;
  /** Where built peers are kept; default ~/.cache/bosun/peers (or $XDG_CACHE_HOME/bosun/peers). */
  cacheDir?: string;
  /** The Python interpreter that makes the venv; default python3. */
  python?: string;
  /** The Go toolchain; default go. */
  go?: string;
  /** Where progress lines go; default stderr. */
  log?: (line: string) => void;
}

/** A peer could not be built; the message names the step, and the tail of its output follows. */
export class PeerBuildError extends Error {
  override name = 'PeerBuildError';
}

/** The sources of the peers could not be found next to this file or above it. */
export class PeerSourcesNotFoundError extends Error {
  override name = 'PeerSourcesNotFoundError';
}

const KOPF_DIR = join('bench', 'peers', 'kopf');
const CR_DIR = join('bench', 'peers', 'controller-runtime');
const CR_BINARY = 'message-operator';

/** The repository root: the first directory at or above this file that holds the peers' sources. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, KOPF_DIR, 'requirements.txt')) && existsSync(join(dir, CR_DIR, 'go.mod'))) return dir;
    const up = dirname(dir);
    if (up === dir)
      throw new PeerSourcesNotFoundError(
        `bench/peers/kopf and bench/peers/controller-runtime not found above ${fileURLToPath(import.meta.url)}; run from a bosun checkout`,
      );
    dir = up;
  }
}

/** The first 12 hex digits of the SHA-256 of the files' contents, in order. */
async function hashFiles(paths: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths) {
    h.update(p.split('/').pop() ?? p);
    h.update('\0');
    h.update(await readFile(p));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

/** Runs a build step; its output goes to logFile, and its tail into the error when it fails. */
async function run(
  step: string,
  command: string,
  args: string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): Promise<void> {
  const out = await open(opts.logFile, 'a');
  try {
    await out.write(`$ ${command} ${args.join(' ')}\n`);
    const code = await new Promise<number | null>((res, rej) => {
      const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out.fd, out.fd] });
      child.on('error', rej);
      child.on('exit', (c) => res(c));
    }).catch((err: Error) => {
      throw new PeerBuildError(`${step}: cannot run ${command}: ${err.message}; install it or pass its path in EnsurePeersOptions`);
    });
    if (code !== 0) {
      const tail = (await readFile(opts.logFile, 'utf8')).split('\n').slice(-30).join('\n');
      throw new PeerBuildError(`${step} failed (exit ${code}); full output in ${opts.logFile}:\n${tail}`);
    }
  } finally {
    await out.close();
  }
}

/**
 * Builds one peer into `<cacheDir>/<name>/` unless it is there: under a lock, into a temporary
 * directory renamed into place at the end, so a build cut short leaves nothing that looks done.
 */
async function ensureBuilt(
  cacheDir: string,
  name: string,
  log: (line: string) => void,
  build: (dir: string, logFile: string) => Promise<void>,
): Promise<string> {
  const final = join(cacheDir, name);
  if (existsSync(final)) return final;
  await mkdir(cacheDir, { recursive: true });
  return withFileLock(join(cacheDir, `${name}.lock`), log, async () => {
    if (existsSync(final)) return final; // built by whoever held the lock
    // Leftovers of builds that died: we hold the lock, so nobody is writing them.
    for (const entry of await readdir(cacheDir)) {
      if (entry.startsWith(`.tmp-${name}-`)) await rm(join(cacheDir, entry), { recursive: true, force: true });
    }
    const tmp = join(cacheDir, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    const logFile = join(cacheDir, `${name}.build.log`);
    await writeFile(logFile, '');
    const started = Date.now();
    try {
      await build(tmp, logFile);
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    log(`peers: built ${final} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return final;
  });
}

/**
 * Makes sure both benchmark peers are built, and returns how to start each against a cluster:
 * a Python venv `kopf-<hash of requirements.txt>` and a Go binary `cr-message-<hash of go.mod,
 * go.sum and main.go>`, both under ~/.cache/bosun/peers. Builds what is missing, printing what it
 * does; two callers never build the same peer at once.
 */
export async function ensurePeers(options: EnsurePeersOptions = {}): Promise<Peers> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const root = repoRoot();
  const cacheDir = resolve(options.cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bosun', 'peers'));
  const python = options.python ?? 'python3';
  const go = options.go ?? 'go';
  const kopfSrc = join(root, KOPF_DIR);
  const crSrc = join(root, CR_DIR);

  const kopfName = `kopf-${await hashFiles([join(kopfSrc, 'requirements.txt')])}`;
  const venv = await ensureBuilt(cacheDir, kopfName, log, async (dir, logFile) => {
    log(`peers: building the kopf peer: ${python} -m venv, pip install -r ${join(KOPF_DIR, 'requirements.txt')} (log: ${logFile})`);
    await run('python -m venv', python, ['-m', 'venv', dir], { cwd: kopfSrc, logFile });
    const pip = join(dir, 'bin', 'python');
    const env = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
    await run('pip install', pip, ['-m', 'pip', 'install', '--no-input', '-r', join(kopfSrc, 'requirements.txt')], {
      cwd: kopfSrc,
      logFile,
      env,
    });
    await run('import kopf', pip, ['-c', 'import kopf, kubernetes'], { cwd: kopfSrc, logFile });
  });

  const crName = `cr-message-${await hashFiles(['go.mod', 'go.sum', 'main.go'].map((f) => join(crSrc, f)))}`;
  const crDir = await ensureBuilt(cacheDir, crName, log, async (dir, logFile) => {
    log(`peers: building the controller-runtime peer: go build in ${CR_DIR} (log: ${logFile})`);
    await run('go build', go, ['build', '-o', join(dir, CR_BINARY), '.'], {
      cwd: crSrc,
      logFile,
      env: { ...process.env, GOFLAGS: '-mod=readonly' },
    });
  });

  const kubeconfig = options.kubeconfig ? resolve(options.kubeconfig) : process.env.KUBECONFIG;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  if (kubeconfig) env.KUBECONFIG = kubeconfig;

  // The venv is built in a temporary directory and renamed, which breaks the shebangs of its
  // console scripts: `python -m kopf` is the same program without them.
  const kopf: PeerCommand = {
    command: join(venv, 'bin', 'python'),
    args: [
      '-m',
      'kopf',
      'run',
      '--standalone',
      ...(options.namespace ? ['--namespace', options.namespace] : ['--all-namespaces']),
      join(kopfSrc, 'main.py'),
    ],
    env: { ...env, PYTHONUNBUFFERED: '1' },
    cwd: kopfSrc,
  };
  const controllerRuntime: PeerCommand = {
    command: join(crDir, CR_BINARY),
    args: [
      ...(kubeconfig ? [`--kubeconfig=${kubeconfig}`] : []),
      `--workers=${options.workers ?? 8}`,
      ...(options.namespace ? [`--namespace=${options.namespace}`] : []),
    ],
    env,
    cwd: crSrc,
  };
  return { kopf, controllerRuntime };
}

// `npx tsx bench/peers.ts` builds both peers and prints how to start them.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const peers = await ensurePeers();
  for (const [name, p] of Object.entries(peers) as [string, PeerCommand][]) {
    process.stdout.write(`${name}: (cd ${p.cwd} && ${p.command} ${p.args.join(' ')})\n`);
  }
}
