// Custom resources the API server refuses on our generated CRD schemas (and on object metadata):
// `kubectl apply` as a user runs it, the exact message, the field it names, and nothing stored.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { startTestEnv, type TestEnv } from 'bosun/envtest';
import { recordCase } from './lib/cli.js';

const CRDS = [
  'config/crd/messages.myorg.dev.yaml',
  'config/crd/applications.shclub.github.io.yaml',
  'config/crd/flighttickets.flights.com.yaml',
];
const API: Record<string, string> = { Message: 'myorg.dev/v1', Application: 'shclub.github.io/v1', FlightTicket: 'flights.com/v1' };
// Printed by the API server whenever a CEL rule was skipped because a field already failed.
const CEL_SKIPPED =
  '* <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';

/** One refused object: what is applied and what kubectl prints. */
interface SchemaCase {
  name: string;
  kind: 'Message' | 'Application' | 'FlightTicket';
  objectName?: string;
  spec?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** kubectl's stderr, exactly. */
  expect: (objectName: string) => string;
  field: string;
  fix: string;
}

const BIG = 262_144;

const cases: SchemaCase[] = [
  {
    name: 'Message without spec',
    kind: 'Message',
    expect: (n) => `The Message "${n}" is invalid: spec: Required value`,
    field: 'spec',
    fix: 'implied: add spec',
  },
  {
    name: 'Message without spec.text',
    kind: 'Message',
    spec: {},
    expect: (n) => `The Message "${n}" is invalid: spec.text: Required value`,
    field: 'spec.text',
    fix: 'implied: add it',
  },
  {
    name: 'Message with an empty text',
    kind: 'Message',
    spec: { text: '' },
    expect: (n) => `The Message "${n}" is invalid: spec.text: Invalid value: "": spec.text in body should be at least 1 chars long`,
    field: 'spec.text',
    fix: 'at least 1 character',
  },
  {
    name: 'Message with a text over 4096 characters',
    kind: 'Message',
    spec: { text: 'x'.repeat(4097) },
    expect: (n) => `The Message "${n}" is invalid: spec.text: Too long: may not be more than 4096 bytes`,
    field: 'spec.text',
    fix: 'at most 4096',
  },
  {
    name: 'Message with a number for text',
    kind: 'Message',
    spec: { text: 5 },
    expect: (n) =>
      `The Message "${n}" is invalid: spec.text: Invalid value: "integer": spec.text in body must be of type string: "integer"`,
    field: 'spec.text',
    fix: 'a string',
  },
  {
    name: 'Message with a misspelt field',
    kind: 'Message',
    spec: { txt: 'hi' },
    expect: () =>
      'Error from server (BadRequest): error when creating "STDIN": Message in version "v1" cannot be handled as a Message: strict decoding error: unknown field "spec.txt"',
    field: 'spec.txt',
    fix: 'implied: the field is unknown',
  },
  {
    name: 'Message with a name that is not a DNS subdomain',
    kind: 'Message',
    objectName: 'Hello_World',
    spec: { text: 'hi' },
    expect: (n) =>
      `The Message "${n}" is invalid: metadata.name: Invalid value: "${n}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    field: 'metadata.name',
    fix: 'the allowed characters and an example',
  },
  {
    name: 'Message with a name over 253 characters',
    kind: 'Message',
    objectName: 'm'.repeat(254),
    spec: { text: 'hi' },
    expect: (n) => `The Message "${n}" is invalid: metadata.name: Invalid value: "${n}": must be no more than 253 characters`,
    field: 'metadata.name',
    fix: 'at most 253',
  },
  {
    name: 'Message with annotations over 256 KiB',
    kind: 'Message',
    spec: { text: 'hi' },
    metadata: { annotations: { 'example.com/blob': 'x'.repeat(BIG) } },
    expect: (n) => `The Message "${n}" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes`,
    field: 'metadata.annotations',
    fix: 'at most 262144 bytes',
  },
  {
    name: 'Application with negative replicas',
    kind: 'Application',
    spec: { image: 'nginx', replicas: -1, port: 80 },
    expect: (n) =>
      `The Application "${n}" is invalid: spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0`,
    field: 'spec.replicas',
    fix: '>= 0',
  },
  {
    name: 'Application with replicas beyond int32',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 3_000_000_000, port: 80 },
    expect: (n) =>
      `The Application "${n}" is invalid: spec.replicas: Invalid value: 3000000000: spec.replicas in body should be less than or equal to 2147483647`,
    field: 'spec.replicas',
    fix: '<= 2147483647',
  },
  {
    name: 'Application with replicas as a word',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 'three', port: 80 },
    expect: (n) =>
      `The Application "${n}" is invalid: spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`,
    field: 'spec.replicas',
    fix: 'an integer',
  },
  {
    name: 'Application with fractional replicas',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 1.5, port: 80 },
    expect: (n) =>
      `The Application "${n}" is invalid: spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number"`,
    field: 'spec.replicas',
    fix: 'an integer',
  },
  {
    name: 'Application with port 0',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 1, port: 0 },
    expect: (n) => `The Application "${n}" is invalid: spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1`,
    field: 'spec.port',
    fix: '>= 1',
  },
  {
    name: 'Application with port 70000',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 1, port: 70000 },
    expect: (n) =>
      `The Application "${n}" is invalid: spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535`,
    field: 'spec.port',
    fix: '<= 65535',
  },
  {
    name: 'Application without port',
    kind: 'Application',
    spec: { image: 'nginx', replicas: 1 },
    expect: (n) => `The Application "${n}" is invalid: spec.port: Required value`,
    field: 'spec.port',
    fix: 'implied: add it',
  },
  {
    name: 'Application with an empty image',
    kind: 'Application',
    spec: { image: '', replicas: 1, port: 80 },
    expect: (n) => `The Application "${n}" is invalid: spec.image: Invalid value: "": spec.image in body should be at least 1 chars long`,
    field: 'spec.image',
    fix: 'at least 1 character',
  },
  {
    name: 'FlightTicket from and to the same airport',
    kind: 'FlightTicket',
    spec: { from: 'ICN', to: 'ICN', number: 1 },
    expect: (n) => `The FlightTicket "${n}" is invalid: spec: Invalid value: spec.from and spec.to must differ`,
    field: 'spec (the CEL rule names spec.from and spec.to)',
    fix: 'make them differ',
  },
  {
    name: 'FlightTicket for 11 seats',
    kind: 'FlightTicket',
    spec: { from: 'ICN', to: 'NRT', number: 11 },
    expect: (n) =>
      `The FlightTicket "${n}" is invalid: spec.number: Invalid value: 11: spec.number in body should be less than or equal to 10`,
    field: 'spec.number',
    fix: '<= 10',
  },
  {
    name: 'FlightTicket for 0 seats',
    kind: 'FlightTicket',
    spec: { from: 'ICN', to: 'NRT', number: 0 },
    expect: (n) =>
      `The FlightTicket "${n}" is invalid: spec.number: Invalid value: 0: spec.number in body should be greater than or equal to 1`,
    field: 'spec.number',
    fix: '>= 1',
  },
  {
    name: 'FlightTicket without number',
    kind: 'FlightTicket',
    spec: { from: 'ICN', to: 'NRT' },
    expect: (n) => `The FlightTicket "${n}" is invalid: \n* spec.number: Required value\n${CEL_SKIPPED}`,
    field: 'spec.number',
    fix: 'implied: add it',
  },
  {
    name: 'FlightTicket with number as a string',
    kind: 'FlightTicket',
    spec: { from: 'ICN', to: 'NRT', number: '2' },
    expect: (n) =>
      `The FlightTicket "${n}" is invalid: \n* spec.number: Invalid value: "string": spec.number in body must be of type integer: "string"\n${CEL_SKIPPED}`,
    field: 'spec.number',
    fix: 'an integer',
  },
  {
    name: 'FlightTicket with an empty departure',
    kind: 'FlightTicket',
    spec: { from: '', to: 'NRT', number: 1 },
    expect: (n) => `The FlightTicket "${n}" is invalid: spec.from: Invalid value: "": spec.from in body should be at least 1 chars long`,
    field: 'spec.from',
    fix: 'at least 1 character',
  },
];

describe('custom resources refused by their CRD schema', () => {
  let env: TestEnv;
  let ns: string;

  before(async () => {
    env = await startTestEnv({ crds: CRDS });
    ns = await env.namespace('badinput-schema');
  });
  after(async () => env?.cleanup());

  cases.forEach((c, i) => {
    test(c.name, async () => {
      const name = c.objectName ?? `${c.kind.toLowerCase()}-${i}`;
      const manifest = { apiVersion: API[c.kind], kind: c.kind, metadata: { name, ...c.metadata }, ...(c.spec ? { spec: c.spec } : {}) };
      const r = await env.kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(manifest));
      const shown = r.stderr.trim();
      const long = (s: string) => s.replace(/x{200,}|m{200,}/g, (m) => `${m[0]}×${m.length}`);
      recordCase({
        id: `schema: ${c.name}`,
        input: long(
          JSON.stringify(
            c.spec === undefined ? { metadata: c.metadata ?? {} } : { spec: c.spec, ...(c.metadata ? { metadata: c.metadata } : {}) },
          ),
        ),
        message: long(shown),
        names: c.field,
        fix: c.fix,
        command: `kubectl apply -f <${c.kind}> (test/badinput/schema.test.ts)`,
      });
      assert.equal(r.code, 1, `refused; stdout: ${r.stdout}`);
      assert.equal(shown, c.expect(name));
      const get = await env.kubectl(['get', '-n', ns, c.kind.toLowerCase(), name, '-o', 'name']);
      assert.notEqual(get.code, 0, 'nothing stored');
    });
  });

  test('FlightTicket status with a state outside its enum is refused, the stored status unchanged', async () => {
    await env.kubectlOk(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: API.FlightTicket,
        kind: 'FlightTicket',
        metadata: { name: 'status-enum' },
        spec: { from: 'ICN', to: 'NRT', number: 1 },
      }),
    );
    const args = [
      'patch',
      '-n',
      ns,
      'flightticket',
      'status-enum',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"state":"Lost"}}',
    ];
    const r = await env.kubectl(args);
    const shown = r.stderr.trim();
    recordCase({
      id: 'schema: FlightTicket status.state outside its enum',
      input: '{"status":{"state":"Lost"}}',
      message: shown,
      names: 'status.state',
      fix: 'the supported values',
      command: `kubectl ${args.join(' ')}`,
    });
    assert.equal(r.code, 1);
    assert.equal(
      shown,
      `The FlightTicket "status-enum" is invalid: \n* status.state: Unsupported value: "Lost": supported values: "Pending", "Booked", "Failed", "Cancelling"\n${CEL_SKIPPED}`,
    );
    const t = JSON.parse(await env.kubectlOk(['get', '-n', ns, 'flightticket', 'status-enum', '-o', 'json'])) as { status?: unknown };
    assert.equal(t.status, undefined);
  });
});
