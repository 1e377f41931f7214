// The pure parts of the operator-process handle: which operators a process runs, and its RSS.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { OperatorProcessError, lastLines, operatorNames, operatorProcess, rssOf, servingPorts, windowMedian } from './operator.js';

test('operatorNames: the default, one name, several names; an empty list is refused', () => {
  assert.deepEqual(operatorNames(undefined), ['message']);
  assert.deepEqual(operatorNames('application'), ['application']);
  assert.deepEqual(operatorNames(['message', 'application', 'flightticket']), ['message', 'application', 'flightticket']);
  assert.throws(() => operatorNames([]), OperatorProcessError);
});

test('rssOf reads VmRSS in bytes; a status without it (a zombie) is an error', () => {
  assert.equal(rssOf('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   81234 kB\nRssAnon:\t 1 kB\n'), 81234 * 1024);
  assert.throws(() => rssOf('Name:\tnode\nState:\tZ (zombie)\n'), /no VmRSS/);
});

test('windowMedian: the median of the samples in [from, to); none in the window is undefined', () => {
  const s = [10, 30, 20, 90, 40].map((bytes, i) => ({ atMs: i * 1000, bytes }));
  assert.equal(windowMedian(s, 0, 3000), 20);
  assert.equal(windowMedian(s, 1000, 5000), 35);
  assert.equal(windowMedian(s, 0, 5000), 30);
  assert.equal(windowMedian(s, 5000, 9000), undefined);
});

test('servingPorts: the ports of the serving lines, JSON lines only; none yet is undefined', () => {
  const log = [
    '(node:1) ExperimentalWarning: something',
    '{"level":"info","msg":"starting","operators":["message"]}',
    '{"level":"info","msg":"serving /metrics","port":40123}',
    '{"level":"info","msg":"serving /healthz and /readyz","port":40124}',
    '{"level":"info","msg":"serving /metr', // cut short by a SIGKILL
  ].join('\n');
  assert.deepEqual(servingPorts(log), { metrics: 40123, health: 40124 });
  assert.deepEqual(servingPorts('{"level":"info","msg":"serving /metrics","port":1}\n'), { metrics: 1 });
  assert.deepEqual(servingPorts(''), {});
});

test('lastLines: the last n lines, indented, a very long one cut', () => {
  const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\n';
  const tail = lastLines(text, 3).split('\n');
  assert.deepEqual(tail, ['    line 27', '    line 28', '    line 29']);
  assert.equal(lastLines('x'.repeat(1000), 1).length, 4 + 400 + 1);
});

test('a log level that hides the serving lines is refused before any process starts', async () => {
  const op = operatorProcess({
    kubeconfig: '/nonexistent',
    namespace: 'x',
    logFile: '/nonexistent/op.log',
    env: { BOSUN_LOG_LEVEL: 'warn' },
  });
  await assert.rejects(op.start(), /BOSUN_LOG_LEVEL=warn hides the operator's 'serving' lines/);
  assert.equal(op.starts, 0);
});
