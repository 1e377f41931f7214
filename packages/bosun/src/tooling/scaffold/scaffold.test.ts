// What `bosun init` and `bosun create api` write, and how they refuse: every error names the flag or file and the fix.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATOR_NODE_FLAGS } from '../image/operator.js';
import { dockerfileProblems } from './dockerfile.js';
import { ScaffoldError, apiNames, createApi, initProject, pluralOf } from './scaffold.js';
import { dockerfile } from './templates.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bosun-scaffold-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const api = { group: 'example.com', version: 'v1', kind: 'Widget' };

void test('names: plural and camelCase as kubebuilder makes them', () => {
  assert.deepEqual(
    [pluralOf('widget'), pluralOf('policy'), pluralOf('class'), pluralOf('box'), pluralOf('day')],
    ['widgets', 'policies', 'classes', 'boxes', 'days'],
  );
  assert.deepEqual(apiNames({ group: 'shop.example.com', version: 'v1beta1', kind: 'OrderItem' }), {
    group: 'shop.example.com',
    version: 'v1beta1',
    kind: 'OrderItem',
    lower: 'orderitem',
    plural: 'orderitems',
    camel: 'orderItem',
  });
});

void test('bad flags are refused naming the flag and the fix', () => {
  assert.throws(
    () => apiNames({ ...api, kind: 'widget' }),
    (e: Error) => e instanceof ScaffoldError && /--kind 'widget'.*Fix: UpperCamelCase/.test(e.message),
  );
  assert.throws(() => apiNames({ ...api, kind: 'My-Kind' }), /--kind/);
  assert.throws(() => apiNames({ ...api, version: '1' }), /--version '1'.*Fix: v1/);
  assert.throws(() => apiNames({ ...api, group: 'example' }), /--group 'example'.*Fix/);
  assert.throws(() => apiNames({ ...api, group: 'Example.com' }), /--group/);
});

void test('init writes a project with one API; create api adds and registers another', async () => {
  const dir = join(tmp, 'my-op');
  const files = await initProject(dir, { ...api, bosunSpec: 'file:/somewhere/bosun' });
  for (const f of [
    'package.json',
    'Makefile',
    'Dockerfile',
    'src/operator.ts',
    'src/main.ts',
    'src/apis/widget.ts',
    'src/controllers/widget.ts',
    'src/controllers/widget.test.ts',
    'config/default/kustomization.yaml',
    'config/manager/manager.yaml',
    'config/samples/widget.yaml',
  ]) {
    assert.ok(files.includes(f), `init wrote ${f}`);
  }
  assert.equal(new Set(files).size, files.length, 'each file listed once');
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
  assert.equal(pkg.name, 'my-op');
  assert.equal(pkg.dependencies.bosun, 'file:/somewhere/bosun');
  await createApi(dir, { group: 'example.com', version: 'v1alpha1', kind: 'Gadget' });
  const registry = await readFile(join(dir, 'src/operator.ts'), 'utf8');
  assert.match(registry, /import \{ GadgetResource \} from '\.\/apis\/gadget\.js';/);
  assert.match(registry, /WidgetResource,\n {2}GadgetResource,\n {2}\/\/ bosun:scaffold:resources/);
  assert.match(registry, /widgetController,\n {2}gadgetController,/);
  assert.match(await readFile(join(dir, 'src/apis/gadget.ts'), 'utf8'), /version: 'v1alpha1'/);
});

void test('init refuses a non-empty directory and a bad project name; create api refuses a duplicate kind and a non-project', async () => {
  const full = join(tmp, 'full');
  await mkdir(full);
  await writeFile(join(full, 'notes.txt'), 'mine');
  await assert.rejects(
    initProject(full, api),
    (e: Error) =>
      e instanceof ScaffoldError && /directory .*full is not empty \(notes\.txt\).*Fix: pass a new or empty directory/.test(e.message),
  );
  await assert.rejects(initProject(join(tmp, 'Bad_Name'), api), /project name 'Bad_Name'.*Fix: pass --name/);
  const dir = join(tmp, 'dup');
  await initProject(dir, api);
  await assert.rejects(createApi(dir, api), /src\/apis\/widget\.ts already exists.*Fix: choose another --kind/);
  await assert.rejects(
    createApi(join(tmp, 'nowhere'), api),
    /src\/operator\.ts not found.*Fix: run 'bosun create api' in a project made by 'bosun init'/,
  );
  await writeFile(join(dir, 'src/operator.ts'), 'export const controllers = [];\n');
  await assert.rejects(createApi(dir, { ...api, kind: 'Other' }), /lacks the marker '\/\/ bosun:scaffold:imports'/);
});

void test("the project's Dockerfile passes the same image rules as bosun's", () => {
  assert.deepEqual(dockerfileProblems(dockerfile(), { entrypoint: ['node', ...OPERATOR_NODE_FLAGS, 'dist/main.js'] }), []);
});
