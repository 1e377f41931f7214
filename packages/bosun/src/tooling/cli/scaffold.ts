// `bosun init` and `bosun create api`: start an operator project, then grow it one API at a time.
import { Command } from 'commander';
import { createApi, initProject } from '../scaffold/scaffold.js';

/** `bosun init <dir>`: a new operator project with one typed resource, a controller, a test, Makefile, Dockerfile and config/. */
export function initCommand(): Command {
  return (
    new Command('init')
      .description(
        'scaffold a new operator project: typed CRD (TypeBox), reconcile-style controller, envtest test, Makefile, Dockerfile, config/',
      )
      .argument('<dir>', 'directory to create (must be absent or empty)')
      /** npm package name and RBAC prefix of the project. */
      .option('--name <name>', 'project name (default: the directory name)')
      /** API group of the first resource. */
      .option('--group <group>', 'API group of the first resource', 'example.com')
      /** API version of the first resource. */
      .option('--version <version>', 'API version of the first resource', 'v1')
      /** Kind of the first resource. */
      .option('--kind <kind>', 'kind of the first resource (UpperCamelCase)', 'Guestbook')
      /** The bosun dependency specifier (a version range, a tarball, a path). */
      .option('--bosun <spec>', 'bosun dependency in package.json (default: ^<this version>; file:<checkout> when run from a checkout)')
      .addHelpText(
        'after',
        [
          '',
          'Examples:',
          '  bosun init my-operator',
          '  bosun init my-operator --group shop.example.com --kind Order',
          '  cd my-operator && npm install && npm test',
        ].join('\n'),
      )
      .action(async (dir: string, o: { name?: string; group: string; version: string; kind: string; bosun?: string }) => {
        const files = await initProject(dir, { name: o.name, group: o.group, version: o.version, kind: o.kind, bosunSpec: o.bosun });
        process.stdout.write(`created ${dir}:\n${files.map((f) => `  ${f}`).join('\n')}\nnext: cd ${dir} && npm install && npm test\n`);
      })
  );
}

/** `bosun create api`: add a typed resource and its controller to a project made by `bosun init`. */
export function createApiCommand(): Command {
  const create = new Command('create').description('add to a project made by bosun init');
  create
    .command('api')
    .description('add a typed resource (TypeBox), its reconcile-style controller, a test and a sample; register them in src/operator.ts')
    /** API group of the new resource. */
    .requiredOption('--group <group>', 'API group (a DNS subdomain, e.g. example.com)')
    /** API version of the new resource. */
    .requiredOption('--version <version>', 'API version (v1, v1beta1, ...)')
    /** Kind of the new resource. */
    .requiredOption('--kind <kind>', 'kind (UpperCamelCase, e.g. Widget)')
    /** The project directory. */
    .option('--dir <dir>', 'project directory', '.')
    .addHelpText(
      'after',
      '\nExamples:\n  bosun create api --group example.com --version v1 --kind Widget\n  bosun create api --group shop.example.com --version v1beta1 --kind Order --dir my-operator\n\nThen: npm run generate (CRDs and RBAC) and npm test.',
    )
    .action(async (o: { group: string; version: string; kind: string; dir: string }) => {
      const files = await createApi(o.dir, o);
      process.stdout.write(`added ${o.kind}:\n${files.map((f) => `  ${f}`).join('\n')}\nnext: npm run generate && npm test\n`);
    });
  return create;
}
