// Without a Docker engine to build images, the rules an operator image must follow are checked on the Dockerfile text.

/** One Dockerfile instruction: its keyword (upper case) and the rest of the logical line. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** One build stage: from `FROM` to the next `FROM`. */
export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions, joining continuation lines and dropping comments. */
export function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (!pending) start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = pending + line;
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) instructions.push({ keyword: (m[1] ?? '').toUpperCase(), args: m[2] ?? '', line: start });
  });
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.args);
      stages.push({ from: m?.[1] ?? '', name: m?.[2], instructions: [] });
    } else if (stages.length === 0) args.push(ins);
    else stages[stages.length - 1]!.instructions.push(ins);
  }
  return { args, stages };
}

/**
 * What is wrong with an operator image's Dockerfile, as sentences naming the fix (empty when fine):
 * multi-stage, the final stage installs production dependencies only and runs as a non-root user,
 * an entrypoint, and a HEALTHCHECK or a comment pointing at the probes.
 */
export function dockerfileProblems(text: string, opts: { entrypoint?: string[] } = {}): string[] {
  const problems: string[] = [];
  const { stages } = parseDockerfile(text);
  if (stages.length < 2)
    problems.push(
      `Dockerfile has ${stages.length} stage(s). Fix: build in one stage (npm ci, npm run build) and copy the output into a runtime stage`,
    );
  const final = stages[stages.length - 1];
  if (!final) return problems;
  const runs = final.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  if (!runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)))
    problems.push('the final stage does not run `npm ci --omit=dev`. Fix: install production dependencies only in the runtime stage');
  if (runs.some((r) => /\bnpm (ci|install)\b/.test(r) && !/--omit=dev/.test(r)))
    problems.push('the final stage installs dev dependencies. Fix: add --omit=dev');
  for (const c of final.instructions.filter((i) => i.keyword === 'COPY' && /--from=/.test(i.args))) {
    if (/node_modules/.test(c.args))
      problems.push(
        `line ${c.line}: copies node_modules from a build stage, which holds dev dependencies. Fix: run npm ci --omit=dev in the final stage instead`,
      );
  }
  const users = final.instructions.filter((i) => i.keyword === 'USER');
  const user = users[users.length - 1]?.args.trim();
  if (!user) problems.push('the final stage has no USER, so it runs as root. Fix: USER 65532:65532 (or USER node)');
  else if (!/^(node|[1-9]\d*)(:[1-9]\d*)?$/.test(user))
    problems.push(`USER ${user} is root or not verifiably non-root. Fix: USER 65532:65532 (numeric, so runAsNonRoot can check it)`);
  const entry = final.instructions.filter((i) => i.keyword === 'ENTRYPOINT').pop();
  if (!entry) problems.push('the final stage has no ENTRYPOINT. Fix: ENTRYPOINT ["node", "dist/main.js"]');
  else if (opts.entrypoint) {
    let got: unknown;
    try {
      got = JSON.parse(entry.args);
    } catch {
      got = entry.args;
    }
    if (JSON.stringify(got) !== JSON.stringify(opts.entrypoint))
      problems.push(`ENTRYPOINT is ${entry.args}. Fix: ENTRYPOINT ${JSON.stringify(opts.entrypoint)} (exec form, so signals reach node)`);
  }
  const hasHealthcheck = final.instructions.some((i) => i.keyword === 'HEALTHCHECK' && !/^NONE\b/i.test(i.args));
  if (!hasHealthcheck && !/probe/i.test(text))
    problems.push(
      'no HEALTHCHECK and no mention of the probes. Fix: add a HEALTHCHECK on :8081/healthz or a comment naming the Deployment probes',
    );
  return problems;
}
