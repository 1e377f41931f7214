// `bosun run`'s log format as a user sees it, against an API server address that takes no connections
// (no cluster needed): the run logs its first lines, waits for its caches and exits at the cache-sync timeout.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const root = resolve(import.meta.dirname, '../../../../..');
const entry = join(root, 'packages/bosun/src/tooling/cli/run-main.ts');
let tmp: string;
let kubeconfig: string;

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bosun-run-format-'));
  kubeconfig = join(tmp, 'kubeconfig');
  const server = `https://127.0.0.1:${await closedPort()}`;
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
    { mode: 0o600 },
  );
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const runArgs = (...extra: string[]) => [
  'run',
  'message',
  '--kubeconfig',
  kubeconfig,
  '--standalone',
  '--metrics-addr',
  '0',
  '--health-addr',
  '0',
  ...extra,
];

/** Runs the CLI with stdout on a pipe (not a terminal), to its exit. */
function bosun(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: root,
    env: { ...process.env, BOSUN_LOG_FORMAT: '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.once('close', (code) => r({ code, stdout, stderr })));
}

const TEXT_LINE = /^\d\d:\d\d:\d\d\.\d{3} {2}(INFO|WARN|ERROR|DEBUG) /;

void test('bosun run --help lists --log-format with its choices', async () => {
  const r = await bosun(['run', '--help']);
  assert.equal(r.code, 0, r.stderr);
  // Commander wraps help to the terminal's width.
  assert.match(r.stdout.replace(/\s+/g, ' '), /--log-format <format> log lines as text or json .*\(choices: "auto", "text", "json"\)/);
});

void test('bosun run --log-format yaml is refused before anything starts', async () => {
  const r = await bosun(runArgs('--log-format', 'yaml'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /argument 'yaml' is invalid\. Allowed choices are auto, text, json/);
  assert.equal(r.stdout, '');
});

void test('on a pipe, bosun run logs JSON; --log-format text forces readable lines, with cache-sync progress', async () => {
  // The progress interval in text is 2 s and the caches wait 3 s (counted from later), so one progress line comes first.
  const [json, text] = await Promise.all([
    bosun(runArgs('--cache-sync-timeout', '1000')),
    bosun(runArgs('--log-format', 'text', '--cache-sync-timeout', '3000')),
  ]);
  assert.equal(json.code, 1, json.stderr);
  const records = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; level: string });
  assert.equal(records[0]?.msg, 'starting');
  assert.ok(
    records.some((r) => r.level === 'warn' && /cannot connect to/.test(r.msg)),
    json.stdout,
  );

  assert.equal(text.code, 1, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.ok(
    lines.every((l) => TEXT_LINE.test(l)),
    text.stdout,
  );
  assert.match(lines[0]!, /INFO {3}starting {2}operators=\["message"\] {2}namespaces=all /);
  assert.ok(
    lines.some((l) => /INFO {3}synced 0 objects of kind Message so far {2}resource=messages\.myorg\.dev {2}objects=0 /.test(l)),
    text.stdout,
  );
  assert.match(text.stderr, /CacheSyncTimeoutError/);
});

const hasScript = spawnSync('script', ['--version']).status === 0;

void test(
  'on a terminal, bosun run logs readable lines by default, and JSON with --log-format json',
  { skip: hasScript ? false : 'needs script(1) for a pseudo-terminal' },
  async () => {
    const inPty = (extra: string[]) => {
      const cmd = [process.execPath, '--import', 'tsx', entry, ...runArgs('--cache-sync-timeout', '1000', ...extra)]
        .map((a) => `'${a}'`)
        .join(' ');
      return runScript(cmd);
    };
    const [auto, json] = await Promise.all([inPty([]), inPty(['--log-format', 'json'])]);
    const autoLines = auto.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('bosun: '));
    assert.ok(autoLines.length > 0 && autoLines.every((l) => TEXT_LINE.test(l)), auto);
    const jsonLines = json.split(/\r?\n/).filter((l) => l.startsWith('{'));
    assert.equal((JSON.parse(jsonLines[0]!) as { msg: string }).msg, 'starting', json);
  },
);

/** Runs `cmd` under script(1), so its stdout is a terminal; returns what it printed there. */
function runScript(cmd: string): Promise<string> {
  const child = spawn('script', ['-qec', cmd, '/dev/null'], {
    cwd: root,
    env: { ...process.env, BOSUN_LOG_FORMAT: '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((r) => child.once('close', () => r(out)));
}

void test('bosun run --leader-elect with a lease shorter than the renew deadline exits at once, naming both flags', async () => {
  const args = runArgs('--leader-elect-lease-duration', '5s').filter((a) => a !== '--standalone');
  const r = await bosun([...args, '--leader-elect', '--leader-election-namespace', 'default', '--cache-sync-timeout', '60000']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(
    r.stderr + r.stdout,
    /the lease duration \(leaseDurationMs, bosun run --leader-elect-lease-duration\) 5000 ms must be greater than the renew deadline \(renewDeadlineMs, --leader-elect-renew-deadline\) 10000 ms/,
  );
});

void test('bosun run --leader-elect-* take Go-style durations and refuse anything else', async () => {
  const { duration } = await import('./run.js');
  assert.equal(duration('15s'), 15_000);
  assert.equal(duration('1m30s'), 90_000);
  assert.equal(duration('500ms'), 500);
  assert.equal(duration('1.5s'), 1_500);
  for (const bad of ['15', 's', '15sec', '1m 30s', '-1s']) assert.throws(() => duration(bad), /expected a duration such as 15s/, bad);
  const r = await bosun([...runArgs('--leader-elect-retry-period', '2 seconds')]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /option '--leader-elect-retry-period <duration>' argument '2 seconds' is invalid\. expected a duration such as 15s/,
  );
});
