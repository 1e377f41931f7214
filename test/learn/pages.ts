// The learning path's pages and their one source: each page's "Run it" block is rendered from docs/learn/steps.yaml.
// `node --import tsx test/learn/pages.ts --write` rewrites those blocks (and creates a missing page as a skeleton);
// pages.test.ts fails when a page and steps.yaml disagree.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  LEARN_LANGS,
  loadSteps,
  pagePath,
  renderRunBlock,
  type LearnLang,
  type LearnStep,
} from '../../packages/bosun/src/tooling/cli/learn.js';

/** The repository root. */
export const root = join(import.meta.dirname, '..', '..');

/** The sections of every page, in order, per language: the same page structure in both. */
export const SECTIONS: Record<LearnLang, readonly string[]> = {
  en: ['The idea', 'Run it', 'What you will see', 'Try next', 'Where it lives in the code'],
  ko: ['개념', '실행하기', '보게 될 결과', '더 해 보기', '코드에서 찾아보기'],
};

const BLOCK = /<!-- learn:begin[^\n]*-->[\s\S]*?<!-- learn:end -->/;

/** The rendered block a page holds, or undefined. */
export function blockOf(markdown: string): string | undefined {
  return BLOCK.exec(markdown)?.[0];
}

/** The H1 a step's page starts with. */
export function heading(step: LearnStep, lang: LearnLang): string {
  return lang === 'en' ? `# Step ${step.step}. ${step.title.en}` : `# ${step.step}단계. ${step.title.ko}`;
}

function skeleton(step: LearnStep, lang: LearnLang): string {
  const [idea, run, ...rest] = SECTIONS[lang];
  return [
    heading(step, lang),
    '',
    `## ${idea}`,
    '',
    'TODO',
    '',
    `## ${run}`,
    '',
    renderRunBlock(step, lang),
    '',
    ...rest.flatMap((s) => [`## ${s}`, '', 'TODO', '']),
  ].join('\n');
}

/** Rewrites every page's block from steps.yaml; returns the pages it changed. */
export function writePages(): string[] {
  const changed: string[] = [];
  for (const step of loadSteps(root)) {
    for (const lang of LEARN_LANGS) {
      const file = join(root, pagePath(step, lang));
      const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
      const after = before === undefined ? skeleton(step, lang) : before.replace(BLOCK, () => renderRunBlock(step, lang));
      if (after !== before) {
        writeFileSync(file, after);
        changed.push(pagePath(step, lang));
      }
    }
  }
  return changed;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (!process.argv.includes('--write')) {
    process.stderr.write('usage: node --import tsx test/learn/pages.ts --write\n');
    process.exitCode = 2;
  } else {
    for (const p of writePages()) process.stdout.write(`wrote ${p}\n`);
  }
}
