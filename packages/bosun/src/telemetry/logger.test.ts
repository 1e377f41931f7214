import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DestinationStream } from 'pino';
import { InvalidLogLevelError, createLogger, objectLogger } from './logger.js';

function capture(): { dest: DestinationStream; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  return {
    dest: { write: (s: string) => void out.push(s) },
    lines: () =>
      out
        .join('')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

void test('objectLogger lines carry namespace, name and kind', () => {
  const c = capture();
  const log = createLogger({ name: 'op', destination: c.dest });
  const olog = objectLogger(log, { kind: 'Message', metadata: { namespace: 'ns1', name: 'm1' } }, { controller: 'messages' });
  olog.info({ step: 'apply' }, 'reconciled');
  const [line] = c.lines();
  assert.ok(line);
  assert.equal(line.namespace, 'ns1');
  assert.equal(line.name, 'm1');
  assert.equal(line.kind, 'Message');
  assert.equal(line.controller, 'messages');
  assert.equal(line.step, 'apply');
  assert.equal(line.level, 'info', 'level names, not numbers');
  assert.equal(line.msg, 'reconciled');
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
});

void test('cluster-scoped objects log no namespace field', () => {
  const c = capture();
  const log = objectLogger(createLogger({ destination: c.dest }), { kind: 'Namespace', metadata: { name: 'kube-system' } });
  log.info('x');
  const [line] = c.lines();
  assert.ok(line);
  assert.equal(line.namespace, undefined);
  assert.equal(line.name, 'kube-system');
});

void test('verbose enables debug; default is info; bad level is a named error', () => {
  const c = capture();
  createLogger({ destination: c.dest }).debug('hidden');
  createLogger({ verbose: true, destination: c.dest }).debug('shown');
  assert.deepEqual(
    c.lines().map((l) => l.msg),
    ['shown'],
  );
  assert.equal(createLogger({ level: 'warn', verbose: true, destination: c.dest }).level, 'warn', 'explicit level wins');
  assert.throws(() => createLogger({ level: 'loud' as never }), InvalidLogLevelError);
});
