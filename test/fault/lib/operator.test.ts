// The pure parts of the operator-process handle: which operators a process runs, and its RSS.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { OperatorProcessError, operatorNames, rssOf, windowMedian } from './operator.js';

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
