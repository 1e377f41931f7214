// The pure parts of the operator-process handle: which operators a process runs, and its RSS.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { OperatorProcessError, operatorNames, rssOf } from './operator.js';

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
