// The learning path's pages agree with their one source and with each other: every step has an English and a
// Korean page, each quotes exactly the commands and promised output of docs/learn/steps.yaml (its "Run it" block
// is compared with the rendering), both have the same sections in the same order, point at the same files (which
// exist), and step 5 quotes the benchmark figures docs/benchmarks.md records. No cluster needed.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { LEARN_LANGS, loadSteps, pagePath, renderRunBlock, type LearnLang } from '../../packages/bosun/src/tooling/cli/learn.js';
import { SECTIONS, blockOf, heading, root } from './pages.js';

const steps = loadSteps(root);
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const FIX = 'Fix: edit docs/learn/steps.yaml, then node --import tsx test/learn/pages.ts --write';

/** The page's H2 sections, each with its text. */
function sections(markdown: string): { title: string; body: string }[] {
  const outside = markdown.replace(/^```[\s\S]*?^```$/gm, (m) => m.replace(/^#/gm, ' #'));
  return outside
    .split(/^## /m)
    .slice(1)
    .map((s) => ({ title: s.slice(0, s.indexOf('\n')).trim(), body: s.slice(s.indexOf('\n')) }));
}

/** Repository paths a text names in backticks or links (a slash and a known top-level folder or file). */
function repoPaths(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/`((?:packages|operators|test|docs|config|bench|examples|hack)\/[^`\s:]+?)(?::\d+)?`/g)) found.add(m[1]!);
  return [...found].sort();
}

void test('every step has its English and Korean page, and docs/learn holds no other page', () => {
  const expected = steps.flatMap((s) => LEARN_LANGS.map((l) => pagePath(s, l).split('/').pop()!)).sort();
  const actual = readdirSync(join(root, 'docs/learn'))
    .filter((f) => f.endsWith('.md'))
    .sort();
  assert.deepEqual(actual, expected);
});

for (const step of steps) {
  void test(`step ${step.step}: both pages quote exactly the commands and output of steps.yaml`, () => {
    for (const lang of LEARN_LANGS) {
      const page = read(pagePath(step, lang));
      assert.ok(page.startsWith(`${heading(step, lang)}\n`), `${pagePath(step, lang)} starts with "${heading(step, lang)}"`);
      const block = blockOf(page);
      assert.ok(block, `${pagePath(step, lang)} has no <!-- learn:begin --> … <!-- learn:end --> block. ${FIX}`);
      assert.equal(block, renderRunBlock(step, lang), `${pagePath(step, lang)}: its Run it block is not what steps.yaml says. ${FIX}`);
      assert.equal(page.split('<!-- learn:begin').length, 2, `${pagePath(step, lang)}: one block only`);
      for (const c of step.commands) {
        const cmd = c.run ?? `${c.start} &`;
        assert.ok(page.includes(`   ${cmd}\n`), `${pagePath(step, lang)} quotes ${cmd}`);
      }
    }
  });

  void test(`step ${step.step}: both pages have the same sections in order, no TODO left, and the block under Run it`, () => {
    const byLang = {} as Record<LearnLang, { title: string; body: string }[]>;
    for (const lang of LEARN_LANGS) {
      const page = read(pagePath(step, lang));
      byLang[lang] = sections(page);
      assert.deepEqual(
        byLang[lang].map((s) => s.title),
        SECTIONS[lang],
        `${pagePath(step, lang)}: sections are ${SECTIONS[lang].join(', ')}`,
      );
      assert.ok(byLang[lang][1]!.body.includes('<!-- learn:begin'), `${pagePath(step, lang)}: the block sits under ${SECTIONS[lang][1]}`);
      assert.doesNotMatch(page, /\bTODO\b/, `${pagePath(step, lang)} still has a TODO`);
      for (const s of byLang[lang]) assert.ok(s.body.trim().length > 0, `${pagePath(step, lang)}: section ${s.title} is empty`);
    }
    // "Where it lives in the code": the same files in both languages, and each exists.
    const en = repoPaths(byLang.en[4]!.body);
    const ko = repoPaths(byLang.ko[4]!.body);
    assert.ok(en.length > 0, `${pagePath(step, 'en')}: ${SECTIONS.en[4]} names files`);
    assert.deepEqual(ko, en, `${pagePath(step, 'ko')} points at the same files as ${pagePath(step, 'en')}`);
    for (const p of en) assert.ok(existsSync(join(root, p)), `${pagePath(step, 'en')} names ${p}, which does not exist`);
  });

  void test(`step ${step.step}: every relative link of both pages leads to a file`, () => {
    for (const lang of LEARN_LANGS) {
      const page = read(pagePath(step, lang));
      for (const m of page.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const p = normalize(join(dirname(pagePath(step, lang)), target));
        assert.ok(existsSync(join(root, p)), `${pagePath(step, lang)} links to ${target}, which does not exist`);
      }
    }
  });
}

void test('step 5 quotes the convergence figures docs/benchmarks.md records, in both languages', () => {
  const bench = read('docs/benchmarks.md');
  const table = /^\| N \| rounds \|.*\n\|[-|]+\|\n((?:\|.*\n)+)/m.exec(bench);
  assert.ok(table, 'docs/benchmarks.md has the convergence table');
  const rows = table[1]!.trim().split('\n');
  assert.ok(rows.length >= 2, 'N = 100 and 1000 (the quick profile), and 5000 when FULL=1 made it');
  const step5 = steps.find((s) => s.slug.startsWith('kopf-style'))!;
  for (const lang of LEARN_LANGS) {
    const page = read(pagePath(step5, lang));
    for (const row of rows) {
      const [n, , floor, , bosun, kopf, cr] = row
        .split('|')
        .slice(1)
        .map((c) => c.trim());
      assert.ok(
        page.includes(`| ${n} | ${floor} | ${bosun} | ${kopf} | ${cr} |`),
        `${pagePath(step5, lang)} quotes N=${n}: | ${n} | ${floor} | ${bosun} | ${kopf} | ${cr} | (from docs/benchmarks.md)`,
      );
    }
    // And the peak memory at N = 1000, from the resources table.
    for (const who of ['bosun', 'kopf', 'controller-runtime']) {
      const rss = new RegExp(`^\\| 1000 \\| ${who} \\| ([0-9.]+ MiB) \\|`, 'm').exec(bench)?.[1];
      assert.ok(rss, `docs/benchmarks.md has the peak RSS of ${who} at N=1000`);
      assert.ok(page.includes(rss), `${pagePath(step5, lang)} quotes ${who}'s peak memory at N=1000, ${rss}`);
    }
  }
});

void test('the README links every page, in both languages', () => {
  const readme = read('README.md');
  for (const step of steps)
    for (const lang of LEARN_LANGS) assert.ok(readme.includes(`(${pagePath(step, lang)})`), `README links ${pagePath(step, lang)}`);
});
