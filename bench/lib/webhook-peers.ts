// The contenders of bench/webhook.ts, each one webhook server process on loopback: bosun's startWebhookServer
// (bench/lib/webhook-bosun.ts, bundled and run with plain node) and controller-runtime's webhook.Server
// (bench/peers/controller-runtime/cmd/webhook, built like the Message peer into ~/.cache/bosun/peers).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { build } from 'esbuild';
import { withFileLock } from 'bosun/envtest';
import { widgetWebhook } from './webhook-widget.js';

/** The webhook servers measured, in the order they are interleaved. */
export const WEBHOOK_CONTENDERS = ['bosun', 'controller-runtime'] as const;
/** One webhook server contender. */
export type WebhookContender = (typeof WEBHOOK_CONTENDERS)[number];

/** A webhook server contender could not be built or did not start; the message names the step and holds its output's tail. */
export class WebhookPeerError extends Error {
  override name = 'WebhookPeerError';
}

const ROOT = join(import.meta.dirname, '..', '..');
const CR_DIR = join(ROOT, 'bench', 'peers', 'controller-runtime');
const CR_SOURCES = ['go.mod', 'go.sum', join('cmd', 'webhook', 'main.go')];
const CR_BINARY = 'widget-webhook';

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bosun', 'peers');
}

async function hashFiles(paths: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths)
    h.update(p)
      .update('\0')
      .update(await readFile(join(CR_DIR, p)))
      .update('\0');
  return h.digest('hex').slice(0, 12);
}

/**
 * The controller-runtime webhook binary, `~/.cache/bosun/peers/cr-webhook-<hash of go.mod, go.sum and
 * cmd/webhook/main.go>/widget-webhook`, built with `go build` (modules from the Go module proxy) when missing:
 * under a lock, into a temporary directory renamed into place, as bench/peers.ts builds the Message peer.
 */
export async function ensureControllerRuntimeWebhook(log: (line: string) => void): Promise<string> {
  const dir = cacheDir();
  const final = join(dir, `cr-webhook-${await hashFiles(CR_SOURCES)}`);
  const binary = join(final, CR_BINARY);
  if (existsSync(binary)) return binary;
  await mkdir(dir, { recursive: true });
  return withFileLock(`${final}.lock`, log, async () => {
    if (existsSync(binary)) return binary;
    const tmp = join(dir, `.tmp-cr-webhook-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    const logFile = `${final}.build.log`;
    log(`webhook bench: building the controller-runtime webhook peer: go build ./cmd/webhook (log: ${logFile})`);
    const out = await open(logFile, 'w');
    try {
      const code = await new Promise<number | null>((res, rej) => {
        const child = spawn('go', ['build', '-o', join(tmp, CR_BINARY), './cmd/webhook'], {
          cwd: CR_DIR,
          env: { ...process.env, GOFLAGS: '-mod=readonly' },
          stdio: ['ignore', out.fd, out.fd],
        });
        child.on('error', rej);
        child.on('exit', res);
      });
      if (code !== 0) {
        const tail = (await readFile(logFile, 'utf8')).split('\n').slice(-30).join('\n');
        throw new WebhookPeerError(`go build ./cmd/webhook in ${CR_DIR} failed (exit ${code}); output in ${logFile}:\n${tail}`);
      }
      await rename(tmp, final);
    } finally {
      await out.close();
      await rm(tmp, { recursive: true, force: true });
    }
    return binary;
  });
}

/**
 * bench/lib/webhook-bosun.ts and the bosun sources it imports bundled into one ES module (npm packages left
 * as imports), so the contender runs compiled on plain node like a built operator. Written under the
 * repository's node_modules/.cache so its imports resolve from the workspace.
 */
export async function bundleBosunWebhook(): Promise<string> {
  const outfile = join(ROOT, 'node_modules', '.cache', 'bosun-bench', 'webhook-bosun.mjs');
  await build({
    entryPoints: [join(ROOT, 'bench', 'lib', 'webhook-bosun.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

/** A webhook server contender that is listening. */
export interface RunningWebhook {
  contender: WebhookContender;
  child: ChildProcess;
  /** `https://127.0.0.1:<port>`, the base of the URL registered. */
  url: string;
  /** Stops it (SIGTERM, SIGKILL after 10 s). */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TLS handshake with 127.0.0.1:port succeeds, as controller-runtime's StartedChecker tests its server. */
async function awaitHandshake(port: number, child: ChildProcess, output: () => string, limitMs = 60_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new WebhookPeerError(`the webhook server exited with ${child.exitCode} before listening: ${output()}`);
    const ok = await new Promise<boolean>((res) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        socket.end();
        res(true);
      });
      socket.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new WebhookPeerError(`no TLS handshake with 127.0.0.1:${port} within ${limitMs / 1000} s: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `contender`'s server with the certificate in `certDir` (tls.crt, tls.key) and waits until it answers TLS. */
export async function startWebhookContender(
  contender: WebhookContender,
  certDir: string,
  programs: { bosun: string; controllerRuntime: string },
): Promise<RunningWebhook> {
  const port = await freePort();
  const child =
    contender === 'bosun'
      ? spawn(process.execPath, [programs.bosun, '--cert-dir', certDir, '--addr', `127.0.0.1:${port}`, '--contender', contender], {
          cwd: ROOT,
          env: { ...process.env, BOSUN_LOG_FORMAT: 'json' },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(
          programs.controllerRuntime,
          ['--host=127.0.0.1', `--port=${port}`, `--cert-dir=${certDir}`, `--path=${widgetWebhook(contender).path}`],
          { cwd: CR_DIR, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-4000));
  // Both log to stdout or stderr; read both, so neither blocks on a full pipe.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  try {
    await awaitHandshake(port, child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { contender, child, url: `https://127.0.0.1:${port}`, stop };
}
