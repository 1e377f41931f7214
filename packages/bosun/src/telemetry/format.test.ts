import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLine, resolveLogFormat, textDestination } from './format.js';
import { InvalidLogFormatError, createLogger, objectLogger } from './logger.js';
import { ChildInvalidError } from '../writes/context.js';

const utcTime = (iso: string) => iso.slice(11, 23);

void test('a reconcile line reads time, level, controller, namespace/name, message, then the other fields', () => {
  const line = formatLine(
    {
      level: 'info',
      time: '2026-03-01T12:34:56.789Z',
      pid: 42,
      controller: 'message',
      kind: 'Message',
      namespace: 'default',
      name: 'hello',
      msg: 'reconciled',
      durationMs: 12,
      result: 'ok',
    },
    { time: utcTime },
  );
  assert.equal(line, '12:34:56.789  INFO   [message]  default/hello  reconciled  durationMs=12  result=ok');
});

void test('a line without an object has no object column; a namespace alone is a field; values that need quotes get them', () => {
  assert.equal(
    formatLine(
      {
        level: 'warn',
        time: '2026-03-01T00:00:01.000Z',
        msg: 'watch restarting',
        resource: 'pods',
        reason: 'the server said "no"',
        namespace: 'ns1',
        tags: ['a', 'b'],
      },
      { time: utcTime },
    ),
    '00:00:01.000  WARN   watch restarting  resource=pods  reason="the server said \\"no\\""  tags=["a","b"]  namespace=ns1',
  );
  assert.equal(
    formatLine({ level: 'info', name: 'kube-system', msg: 'x', empty: '' }, { time: utcTime }),
    'INFO   kube-system  x  empty=""',
  );
});

void test('an error shows its type, bosun code and message, and its stack on the lines below', () => {
  const out: string[] = [];
  const log = createLogger({ destination: { write: (s: string) => void out.push(s) } });
  log.error({ err: new ChildInvalidError('Pod default/p: spec.containers: Required value') }, 'reconcile failed');
  const text = formatLine(JSON.parse(out[0]!) as Record<string, unknown>, { time: utcTime });
  const [first, ...stack] = text.split('\n');
  assert.match(
    first!,
    /ERROR {2}reconcile failed {2}err="ChildInvalidError \[BOSUN_CHILD_INVALID\]: Pod default\/p: spec.containers: Required value"$/,
  );
  assert.ok(stack.length > 0 && stack.every((l) => /^ {4}at /.test(l)), stack.join('\n'));
});

void test('colour only when asked: level, controller and object are painted', () => {
  const rec = { level: 'error', controller: 'c', name: 'n', msg: 'm' };
  assert.ok(!formatLine(rec).includes('\x1b['));
  const painted = formatLine(rec, { color: true });
  assert.ok(painted.includes('\x1b[31mERROR\x1b[0m'), painted);
  assert.ok(painted.includes('\x1b[36m[c]\x1b[0m'), painted);
});

void test('textDestination turns each JSON line of a logger into a text line and passes other lines on', () => {
  const out: string[] = [];
  const dest = textDestination({ write: (s: string) => out.push(s) }, { time: utcTime });
  const log = objectLogger(
    createLogger({ destination: dest }),
    { kind: 'Message', metadata: { namespace: 'ns', name: 'm' } },
    { controller: 'messages' },
  );
  log.info({ step: 'apply' }, 'reconciled');
  dest.write('not json\n');
  assert.equal(out.length, 2);
  assert.match(out[0]!, /^\d\d:\d\d:\d\d\.\d{3} {2}INFO {3}\[messages\] {2}ns\/m {2}reconciled {2}step=apply\n$/);
  assert.equal(out[1], 'not json\n');
});

void test('auto is text on a terminal and JSON otherwise; text and json are forced as given', () => {
  assert.equal(resolveLogFormat('auto', true), 'text');
  assert.equal(resolveLogFormat('auto', false), 'json');
  assert.equal(resolveLogFormat('json', true), 'json');
  assert.equal(resolveLogFormat('text', false), 'text');
});

void test('createLogger: format text formats, json and a given destination under auto stay JSON, an unknown format is a named error', () => {
  const lines = (format?: 'text' | 'json' | 'auto') => {
    const out: string[] = [];
    createLogger({ format, destination: { write: (s: string) => void out.push(s) } }).info('hi');
    return out.join('');
  };
  assert.match(lines('text'), /^\d\d:\d\d:\d\d\.\d{3} {2}INFO {3}hi\n$/);
  assert.equal((JSON.parse(lines('json')) as { msg: string }).msg, 'hi');
  assert.equal((JSON.parse(lines()) as { msg: string }).msg, 'hi', 'a destination is no terminal');
  assert.throws(
    () => createLogger({ format: 'pretty' as never }),
    (err: unknown) =>
      err instanceof InvalidLogFormatError && err.code === 'BOSUN_LOG_FORMAT' && /'pretty'.*auto, text, json/.test(err.message),
  );
});
