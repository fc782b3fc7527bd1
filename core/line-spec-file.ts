/**
 * Reading a line spec file (LINE.yaml): YAML → validated LineSpec, then the campaign spec it
 * names (relative to the line file), with errors that name the file and the field. A line is
 * refused when its campaign cannot be judged: the promotion gate needs the evaluation stage
 * and enough held-out questions.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { fileProblem, UserError } from './errors';
import { LineSpecSchema, type LineSpec } from './line-spec';
import { loadQuestionFile } from './questions';
import { formatZodIssues, loadSpecFile, type LoadedSpec } from './spec-file';

export interface LoadedLineSpec {
  spec: LineSpec;
  /** Absolute path of the line file; `campaign` is relative to its folder. */
  file: string;
  dir: string;
  campaign: LoadedSpec;
}

const SCHEDULE_FORMS =
  'either `every: <duration>` (with optional offset, jitter) or `cron: "<expression>"` with `timezone`, not both';

/** zod says only "Invalid input" when neither schedule form fits: say what the two forms are. */
function lineIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) =>
    issue.code === 'invalid_union' && issue.path.join('.') === 'schedule'
      ? `schedule: ${SCHEDULE_FORMS}`
      : (formatZodIssues([issue])[0] as string),
  );
}

export function parseLineSpec(raw: unknown, source: string): LineSpec {
  const parsed = LineSpecSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`Invalid line spec ${source}:`, lineIssues(parsed.error.issues));
  }
  return parsed.data;
}

async function readYaml(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path.resolve(file), 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read line spec ${file}: ${fileProblem(err)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UserError(
      `Line spec ${file} is not valid YAML:`,
      doc.errors.map((e) => e.message.split('\n')[0] ?? e.message),
    );
  }
  return doc.toJS();
}

/** The campaign spec, its own errors kept but said to come from the line's `campaign` field. */
async function loadCampaign(spec: LineSpec, file: string, dir: string): Promise<LoadedSpec> {
  const campaignFile = path.resolve(dir, spec.campaign);
  try {
    return await loadSpecFile(campaignFile);
  } catch (err) {
    if (err instanceof UserError) {
      throw new UserError(
        `Invalid line spec ${file}: campaign: ${campaignFile} cannot be used:`,
        err.problems.length > 0 ? err.problems : [err.message],
      );
    }
    throw err;
  }
}

/** The promotion gate judges every candidate on the held-out set: refuse campaigns that cannot. */
async function checkJudgeable(spec: LineSpec, file: string, campaign: LoadedSpec): Promise<void> {
  const c = campaign.spec;
  const problems: string[] = [];
  if (!c.stages.evaluate.enabled) {
    problems.push(
      `campaign: ${campaign.file} sets stages.evaluate.enabled: false; the promotion gate needs the evaluation`,
    );
  }
  if (!c.questions.eval) {
    problems.push(
      `campaign: ${campaign.file} has no held-out questions (questions.eval); the promotion gate needs them`,
    );
  }
  if (problems.length > 0) throw new UserError(`Invalid line spec ${file}:`, problems);

  const evalPath = c.questions.eval as string;
  const heldOut = await loadQuestionFile(path.resolve(campaign.dir, evalPath), 'eval', evalPath);
  if (heldOut.length < spec.promotion.minHeldOut) {
    throw new UserError(`Invalid line spec ${file}:`, [
      `promotion.minHeldOut: ${spec.promotion.minHeldOut} held-out questions needed, but ${evalPath} has ${heldOut.length}`,
    ]);
  }
}

export async function loadLineSpecFile(file: string): Promise<LoadedLineSpec> {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const spec = parseLineSpec(await readYaml(file), file);
  const campaign = await loadCampaign(spec, file, dir);
  await checkJudgeable(spec, file, campaign);
  return { spec, file: abs, dir, campaign };
}
