// Bad input to the bosun CLI that needs no cluster: unknown operators and flags, kubeconfigs that are
// missing, unreadable, malformed or name an unknown context, operator configuration, cluster
// directories the cluster cannot use, and scaffolding into the wrong place. Each case pins the exact
// line the user reads, a prompt exit (no hang, no stack trace) and that nothing was written.
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commandLine, errorLine, recordCase, runCli, type CliOptions } from './lib/cli.js';

/** One CLI case: what is run, what the user must read, and what must not exist afterwards. */
interface CliCase {
  name: string;
  /** Arguments after `bosun`; a function when they name the case's temp files. */
  args: () => string[];
  env?: () => CliOptions['env'];
  /** The error line(s) exactly, or a pattern when a part (an errno text, a temp path) varies. */
  expect: () => string | RegExp;
  /** Exit code (default 1). */
  code?: number;
  /** Paths that must not exist afterwards: nothing was written. */
  absent?: () => string[];
  /** For docs/bad-input.md. */
  input: string;
  names: string;
  fix: string;
  /** A fix still pending in a file another helper owns. */
  todo?: string;
}

let tmp: string;
const t = (...p: string[]) => join(tmp, ...p);
const OPS = 'message, message-handlers, flightticket, application';
const DIR_FIX = 'choose another --dir (a writable directory, e.g. .bosun/cluster)';
const KC_FIX = 'Check the path given with --kubeconfig or in $KUBECONFIG.';
// Flags that keep a `bosun run` case from binding ports or waiting long, should it get that far.
const QUIET = ['--metrics-addr', '0', '--health-addr', '0', '--cache-sync-timeout', '2000'];

const cases: CliCase[] = [
  {
    name: 'bosun run with an unknown operator',
    args: () => ['run', 'mesage', ...QUIET],
    expect: () => `bosun: InvalidArgumentError: unknown operator 'mesage'; choose from: ${OPS}`,
    input: 'operator name `mesage` (a typo)',
    names: 'the operator argument',
    fix: 'choose from the list of operators',
  },
  {
    name: 'bosun run with a misspelt flag',
    args: () => ['run', 'message', '--namespce', 'x'],
    expect: () => "error: unknown option '--namespce'\n(Did you mean --namespace?)\n(bosun run --help lists the options)",
    input: 'flag `--namespce`',
    names: 'the flag',
    fix: 'the nearest flag, and where the options are listed',
  },
  {
    name: 'bosun run --workers 0',
    args: () => ['run', 'message', '--workers', '0'],
    expect: () =>
      "error: option '--workers <n>' argument '0' is invalid. expected a whole number of at least 1\n(bosun run --help lists the options)",
    input: '`--workers 0`',
    names: '--workers',
    fix: 'a whole number of at least 1',
  },
  {
    name: 'bosun run --cache-sync-timeout soon',
    args: () => ['run', 'message', '--cache-sync-timeout', 'soon'],
    expect: () =>
      "error: option '--cache-sync-timeout <ms>' argument 'soon' is invalid. expected a whole number of at least 1\n(bosun run --help lists the options)",
    input: '`--cache-sync-timeout soon`',
    names: '--cache-sync-timeout',
    fix: 'a whole number of milliseconds',
  },
  {
    name: 'bosun run --standalone --leader-elect',
    args: () => ['run', 'message', '--standalone', '--leader-elect'],
    expect: () => "error: option '--standalone' cannot be used with option '--leader-elect'\n(bosun run --help lists the options)",
    input: 'two flags that exclude each other',
    names: '--standalone and --leader-elect',
    fix: 'drop one of them',
  },
  {
    name: 'an unknown command',
    args: () => ['runn', 'message'],
    expect: () => "error: unknown command 'runn'\n(Did you mean run?)",
    input: 'command `runn`',
    names: 'the command',
    fix: 'the nearest command (the full help follows)',
  },
  {
    name: 'bosun run --metrics-addr that is no address',
    args: () => ['run', 'message', '--kubeconfig', t('unreachable.yaml'), '--metrics-addr', 'nonsense', '--health-addr', '0'],
    expect: () =>
      "bosun: InvalidAddressError: --metrics-addr 'nonsense' is invalid; use 'host:port', ':port' (all interfaces), ':0' (any free port) or '0' (disabled)",
    input: '`--metrics-addr nonsense`',
    names: 'the flag and its value',
    fix: 'the address forms',
  },
  {
    name: 'a kubeconfig that does not exist',
    args: () => ['run', 'message', '--kubeconfig', t('nope.yaml'), ...QUIET],
    expect: () =>
      `bosun: KubeConfigError: cannot read kubeconfig ${t('nope.yaml')}: ENOENT: no such file or directory, open '${t('nope.yaml')}'. ${KC_FIX}`,
    input: '`--kubeconfig` naming a missing file',
    names: 'the file',
    fix: 'check --kubeconfig or $KUBECONFIG',
  },
  {
    name: 'a kubeconfig that cannot be read (a directory)',
    args: () => ['run', 'message', '--kubeconfig', t('kubedir'), ...QUIET],
    expect: () =>
      `bosun: KubeConfigError: cannot read kubeconfig ${t('kubedir')}: EISDIR: illegal operation on a directory, read. ${KC_FIX}`,
    input: '`--kubeconfig` naming a directory',
    names: 'the file',
    fix: 'check --kubeconfig or $KUBECONFIG',
  },
  {
    name: 'a kubeconfig that is not YAML',
    args: () => ['run', 'message', '--kubeconfig', t('malformed.yaml'), ...QUIET],
    expect: () =>
      new RegExp(
        `^bosun: KubeConfigError: kubeconfig ${t('malformed.yaml')} is not valid YAML: Block collections are not allowed within flow collections at line 2, column 3:`,
      ),
    input: 'a kubeconfig with broken YAML',
    names: 'the file, line and column',
    fix: '(the YAML error shows where)',
  },
  {
    name: 'a kubeconfig that is YAML but not a mapping',
    args: () => ['run', 'message', '--kubeconfig', t('scalar.yaml'), ...QUIET],
    expect: () => new RegExp(`^bosun: KubeConfigError: kubeconfig ${t('scalar.yaml')} is not a kubeconfig`),
    input: 'a kubeconfig holding a plain string',
    names: 'the file',
    fix: 'check the path',
  },
  {
    name: 'a kubeconfig without current-context',
    args: () => ['run', 'message', '--kubeconfig', t('nocurrent.yaml'), ...QUIET],
    expect: () => `bosun: KubeConfigError: kubeconfig ${t('nocurrent.yaml')} has no current-context; pass --context (known: none)`,
    input: 'no current-context, no contexts',
    names: 'the file and current-context',
    fix: 'pass --context',
  },
  {
    name: 'an unknown context',
    args: () => ['run', 'message', '--kubeconfig', t('good.yaml'), '--context', 'prod', ...QUIET],
    expect: () =>
      `bosun: KubeConfigError: kubeconfig ${t('good.yaml')} has no context 'prod'; known contexts: local. Fix: pass --context local, or add the context`,
    input: '`--context prod`, not in the file',
    names: 'the file and the context',
    fix: 'pass a known context, or add it',
  },
  {
    name: 'a context naming a missing cluster',
    args: () => ['run', 'message', '--kubeconfig', t('nocluster.yaml'), ...QUIET],
    expect: () =>
      "bosun: KubeConfigError: kubeconfig context 'a' names cluster 'nowhere', which is missing or has no server; fix the clusters entry",
    input: 'context → cluster `nowhere`',
    names: 'the context and the cluster',
    fix: 'fix the clusters entry',
  },
  {
    name: 'a context naming a missing user',
    args: () => ['run', 'message', '--kubeconfig', t('nouser.yaml'), ...QUIET],
    expect: () => "bosun: KubeConfigError: kubeconfig context 'a' names user 'ghost', which is not defined; fix the users entry",
    input: 'context → user `ghost`',
    names: 'the context and the user',
    fix: 'fix the users entry',
  },
  {
    name: 'a cluster server that is not a URL',
    args: () => ['run', 'message', '--kubeconfig', t('badserver.yaml'), ...QUIET],
    expect: () =>
      `bosun: KubeConfigError: kubeconfig ${t('badserver.yaml')}: cluster 'c' has server '127.0.0.1:6443', which is not a URL; write it as https://127.0.0.1:6443`,
    input: 'server `127.0.0.1:6443` (no scheme)',
    names: 'the file, the cluster and the server',
    fix: 'the URL to write',
  },
  {
    name: 'a certificate-authority file that is missing',
    args: () => ['run', 'message', '--kubeconfig', t('missingca.yaml'), ...QUIET],
    expect: () =>
      `bosun: KubeConfigError: cannot read ${t('missing-ca.crt')} named in kubeconfig ${t('missingca.yaml')}: ENOENT: no such file or directory, open '${t('missing-ca.crt')}'`,
    input: 'certificate-authority: ./missing-ca.crt',
    names: 'the CA file and the kubeconfig',
    fix: '(implied: the path)',
  },
  {
    name: '$KUBECONFIG naming only missing files',
    args: () => ['run', 'message', ...QUIET],
    env: () => ({ KUBECONFIG: `${t('a.yaml')}:${t('b.yaml')}` }),
    expect: () =>
      `bosun: KubeConfigError: none of the files in $KUBECONFIG (${t('a.yaml')}:${t('b.yaml')}) exists; fix $KUBECONFIG or pass --kubeconfig`,
    input: '$KUBECONFIG=a.yaml:b.yaml, both missing',
    names: '$KUBECONFIG',
    fix: 'fix $KUBECONFIG or pass --kubeconfig',
  },
  {
    name: 'no kubeconfig anywhere',
    args: () => ['run', 'message', ...QUIET],
    env: () => ({ KUBECONFIG: undefined, HOME: t('emptyhome'), KUBERNETES_SERVICE_HOST: undefined }),
    expect: () =>
      'bosun: KubeConfigError: no kubeconfig found: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run in a Pod (in-cluster config)',
    input: 'no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, not in a Pod',
    names: 'every place looked',
    fix: 'the four ways to give one',
  },
  {
    name: 'bosun run flightticket without FLIGHTTICKET_BOOKING_URL',
    args: () => ['run', 'flightticket', '--kubeconfig', t('unreachable.yaml'), ...QUIET],
    env: () => ({ FLIGHTTICKET_BOOKING_URL: undefined, FLIGHTTICKET_API_KEY_SECRET: 'ns/key' }),
    expect: () =>
      'bosun: FlightTicketConfigError: FLIGHTTICKET_BOOKING_URL is not set; set it to the booking service base URL, e.g. http://booking:8080',
    input: 'FLIGHTTICKET_BOOKING_URL unset',
    names: 'the variable',
    fix: 'an example value',
  },
  {
    name: 'bosun run flightticket with a booking URL that is no URL',
    args: () => ['run', 'flightticket', '--kubeconfig', t('unreachable.yaml'), ...QUIET],
    env: () => ({ FLIGHTTICKET_BOOKING_URL: 'booking:8080', FLIGHTTICKET_API_KEY_SECRET: 'ns/key' }),
    expect: () =>
      'bosun: FlightTicketConfigError: FLIGHTTICKET_BOOKING_URL="booking:8080" is not a URL; set it to e.g. http://booking:8080',
    input: 'FLIGHTTICKET_BOOKING_URL=booking:8080',
    names: 'the variable and its value',
    fix: 'an example value',
  },
  {
    name: 'bosun run flightticket with a booking URL that is not http(s)',
    args: () => ['run', 'flightticket', '--kubeconfig', t('unreachable.yaml'), ...QUIET],
    env: () => ({ FLIGHTTICKET_BOOKING_URL: 'ftp://booking:8080', FLIGHTTICKET_API_KEY_SECRET: 'ns/key' }),
    expect: () =>
      'bosun: FlightTicketConfigError: FLIGHTTICKET_BOOKING_URL="ftp://booking:8080" uses ftp:; the booking service is reached over http: or https:, e.g. http://booking:8080',
    input: 'FLIGHTTICKET_BOOKING_URL=ftp://booking:8080',
    names: 'the variable, its value and its scheme',
    fix: 'http: or https:, an example value',
  },
  {
    name: 'bosun run flightticket with a Secret reference that is not namespace/name',
    args: () => ['run', 'flightticket', '--kubeconfig', t('unreachable.yaml'), ...QUIET],
    env: () => ({ FLIGHTTICKET_BOOKING_URL: 'http://127.0.0.1:1', FLIGHTTICKET_API_KEY_SECRET: 'booking-key' }),
    expect: () =>
      'bosun: FlightTicketConfigError: FLIGHTTICKET_API_KEY_SECRET="booking-key" must be "namespace/name" of the Secret whose key apiKey holds the booking API key',
    input: 'FLIGHTTICKET_API_KEY_SECRET=booking-key',
    names: 'the variable and its value',
    fix: 'the namespace/name form',
  },
  {
    name: 'bosun cluster up --dir under /proc',
    args: () => ['cluster', 'up', '--dir', '/proc/bosun-badinput'],
    expect: () =>
      `bosun: ClusterError: cannot use /proc/bosun-badinput as the cluster directory: /proc is a kernel filesystem that cannot hold files; ${DIR_FIX}`,
    absent: () => ['/proc/bosun-badinput'],
    input: '`--dir /proc/bosun-badinput`',
    names: 'the directory and /proc',
    fix: DIR_FIX,
  },
  {
    name: 'bosun cluster up --dir that is a file',
    args: () => ['cluster', 'up', '--dir', t('afile')],
    expect: () =>
      `bosun: ClusterError: cannot use ${t('afile')} as the cluster directory: ${t('afile')} is a file, not a directory; ${DIR_FIX}`,
    input: '`--dir` naming a file',
    names: 'the file',
    fix: DIR_FIX,
  },
  {
    name: 'bosun cluster up --dir below a file',
    args: () => ['cluster', 'up', '--dir', t('afile', 'cluster')],
    expect: () =>
      `bosun: ClusterError: cannot use ${t('afile', 'cluster')} as the cluster directory: ${t('afile')} is a file, not a directory; ${DIR_FIX}`,
    input: '`--dir afile/cluster`',
    names: 'the file in the way',
    fix: DIR_FIX,
  },
  {
    name: 'bosun cluster up --port 70000',
    args: () => ['cluster', 'up', '--dir', t('port-cluster'), '--port', '70000'],
    expect: () =>
      "error: option '--port <port>' argument '70000' is invalid. a TCP port is a whole number from 1 to 65535\n(bosun cluster up --help lists the options)",
    absent: () => [t('port-cluster')],
    input: '`--port 70000`',
    names: '--port',
    fix: 'a port from 1 to 65535',
  },
  {
    name: 'bosun create api --kind in lower case',
    args: () => ['create', 'api', '--group', 'example.com', '--version', 'v1', '--kind', 'widget', '--dir', t('proj')],
    expect: () =>
      "bosun: ScaffoldError: --kind 'widget' is not a valid kind. Fix: UpperCamelCase letters and digits, starting with a capital letter (e.g. --kind Widget)",
    absent: () => [t('proj', 'src')],
    input: '`--kind widget`',
    names: '--kind',
    fix: 'UpperCamelCase, e.g. Widget',
  },
  {
    name: 'bosun create api --group without a dot',
    args: () => ['create', 'api', '--group', 'example', '--version', 'v1', '--kind', 'Widget', '--dir', t('proj')],
    expect: () =>
      "bosun: ScaffoldError: --group 'example' is not a DNS subdomain with a dot. Fix: a lower-case domain you own (e.g. --group example.com)",
    absent: () => [t('proj', 'src')],
    input: '`--group example`',
    names: '--group',
    fix: 'a domain, e.g. example.com',
  },
  {
    name: 'bosun create api --version that is not an API version',
    args: () => ['create', 'api', '--group', 'example.com', '--version', '1', '--kind', 'Widget', '--dir', t('proj')],
    expect: () => "bosun: ScaffoldError: --version '1' is not a Kubernetes API version. Fix: v1, v2, v1beta1 or v1alpha2",
    absent: () => [t('proj', 'src')],
    input: '`--version 1`',
    names: '--version',
    fix: 'v1, v1beta1, ...',
  },
  {
    name: 'bosun create api without --kind',
    args: () => ['create', 'api', '--group', 'example.com', '--version', 'v1', '--dir', t('proj')],
    expect: () => "error: required option '--kind <kind>' not specified\n(bosun create api --help lists the options)",
    absent: () => [t('proj', 'src')],
    input: '`--kind` missing',
    names: '--kind',
    fix: 'where the options are listed',
  },
  {
    name: 'bosun create api outside a project',
    args: () => ['create', 'api', '--group', 'example.com', '--version', 'v1', '--kind', 'Widget', '--dir', t('proj')],
    expect: () =>
      `bosun: ScaffoldError: ${t('proj', 'src', 'operator.ts')} not found. Fix: run 'bosun create api' in a project made by 'bosun init' (or pass --dir <project>)`,
    absent: () => [t('proj', 'src')],
    input: 'a directory bosun init did not make',
    names: 'the missing src/operator.ts',
    fix: 'run it in a bosun init project',
  },
  {
    name: 'bosun init into a non-empty directory',
    args: () => ['init', t('full')],
    expect: () =>
      `bosun: ScaffoldError: directory ${t('full')} is not empty (notes.txt). Fix: pass a new or empty directory, or use 'bosun create api' inside an existing project`,
    absent: () => [t('full', 'package.json'), t('full', 'src')],
    input: 'a directory holding notes.txt',
    names: 'the directory and what is in it',
    fix: 'an empty directory, or create api',
  },
  {
    name: 'bosun init with a directory name that is no project name',
    args: () => ['init', t('My_Operator')],
    expect: () =>
      "bosun: ScaffoldError: project name 'My_Operator' (from the directory name) must be lower-case letters, digits and dashes, starting with a letter. Fix: pass --name my-operator",
    absent: () => [t('My_Operator')],
    input: 'directory `My_Operator`',
    names: 'the project name and where it came from',
    fix: 'pass --name',
  },
  {
    name: 'bosun generate --from a module that does not exist',
    args: () => ['generate', '--check', '--from', t('operator.ts')],
    expect: () =>
      `bosun: ProjectModuleError: --from ${t('operator.ts')}: no such file. Fix: pass --from <module>, or set "bosun": { "project": "<module>" } in the project's package.json`,
    input: '`--from` naming a missing file',
    names: '--from and the path',
    fix: 'the module to pass',
  },
  {
    name: 'bosun generate --from a file that fails to load',
    args: () => ['generate', '--check', '--from', t('broken.js')],
    expect: () =>
      `bosun: ProjectModuleError: --from ${t('broken.js')} failed to load: ReferenceError: x is not defined. Fix: make it load on its own (node ${t('broken.js')})`,
    input: '`--from` naming a file that throws on import',
    names: '--from, the path and the error',
    fix: 'the module to pass',
  },
];

describe('bad input to the CLI (no cluster)', { concurrency: 2 }, () => {
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bosun-badinput-cli-'));
    mkdirSync(t('kubedir'));
    mkdirSync(t('emptyhome'));
    mkdirSync(t('proj'));
    mkdirSync(t('full'));
    writeFileSync(t('full', 'notes.txt'), 'mine\n');
    writeFileSync(t('afile'), 'not a directory\n');
    writeFileSync(t('broken.js'), 'x;\n');
    writeFileSync(t('malformed.yaml'), 'clusters: [\n  - bad\n');
    writeFileSync(t('scalar.yaml'), 'just a string\n');
    writeFileSync(t('nocurrent.yaml'), 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n');
    const kc = (clusters: string, contexts: string, current = 'a') =>
      `apiVersion: v1\nkind: Config\nclusters: ${clusters}\nusers: [{name: u, user: {token: t}}]\ncontexts: ${contexts}\ncurrent-context: ${current}\n`;
    const c = (server: string, more = '') => `[{name: c, cluster: {server: "${server}"${more}}}]`;
    writeFileSync(t('good.yaml'), kc(c('https://127.0.0.1:1'), '[{name: local, context: {cluster: c, user: u}}]', 'local'));
    writeFileSync(t('unreachable.yaml'), kc(c('https://127.0.0.1:1'), '[{name: a, context: {cluster: c, user: u}}]'));
    writeFileSync(t('nocluster.yaml'), kc('[]', '[{name: a, context: {cluster: nowhere, user: u}}]'));
    writeFileSync(t('nouser.yaml'), kc(c('https://127.0.0.1:1'), '[{name: a, context: {cluster: c, user: ghost}}]'));
    writeFileSync(t('badserver.yaml'), kc(c('127.0.0.1:6443'), '[{name: a, context: {cluster: c, user: u}}]'));
    writeFileSync(
      t('missingca.yaml'),
      kc(c('https://127.0.0.1:1', ', certificate-authority: ./missing-ca.crt'), '[{name: a, context: {cluster: c, user: u}}]'),
    );
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const c of cases) {
    test(c.name, c.todo ? { todo: c.todo } : {}, async () => {
      const before = readdirSync(tmp).sort();
      const r = await runCli(c.args(), { env: c.env?.(), timeoutMs: 20_000 });
      const line = errorLine(r);
      recordCase({
        id: `cli: ${c.name}`,
        input: c.input,
        message: line || r.stdout.trim(),
        names: c.names,
        fix: c.fix,
        command: commandLine(c.args()),
      });
      assert.equal(r.timedOut, false, `bosun ${c.args().join(' ')} hung (killed after ${Math.round(r.ms)} ms)`);
      assert.equal(r.code, c.code ?? 1, `exit code; stderr: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, 'no stack trace');
      const want = c.expect();
      if (typeof want === 'string') assert.equal(line, want);
      else assert.match(line, want);
      for (const p of c.absent?.() ?? []) assert.equal(existsSync(p), false, `${p} must not be created`);
      assert.deepEqual(readdirSync(tmp).sort(), before, 'no file appeared or went in the case directory');
    });
  }

  test('bosun cluster status --dir with no cluster says where none is and how to start one', async () => {
    const args = ['cluster', 'status', '--dir', t('no-cluster-2')];
    const r = await runCli(args);
    recordCase({
      id: 'cli: bosun cluster status --dir with no cluster',
      input: '`--dir` where no cluster is',
      message: r.stdout.trim(),
      names: 'the directory',
      fix: 'the up command to run',
      command: commandLine(args),
    });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `no cluster in ${t('no-cluster-2')} (start one with: bosun cluster up --dir ${t('no-cluster-2')})\n`);
    assert.equal(existsSync(t('no-cluster-2')), false);
  });
});
