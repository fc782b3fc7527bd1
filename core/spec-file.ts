/** Reading a campaign spec file: YAML → validated CampaignSpec, with errors that name the field. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { CampaignSpecSchema, type CampaignSpec } from './spec';
import { fileProblem, UserError } from './errors';

export interface LoadedSpec {
  spec: CampaignSpec;
  /** Absolute path of the spec file; relative paths in the spec are relative to its folder. */
  file: string;
  dir: string;
}

export function formatZodIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}

export function parseSpec(raw: unknown, source: string): CampaignSpec {
  const parsed = CampaignSpecSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`Invalid campaign spec ${source}:`, formatZodIssues(parsed.error.issues));
  }
  return parsed.data;
}

export async function loadSpecFile(file: string): Promise<LoadedSpec> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read campaign spec ${file}: ${fileProblem(err)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UserError(
      `Campaign spec ${file} is not valid YAML:`,
      doc.errors.map((e) => e.message.split('\n')[0] ?? e.message),
    );
  }
  return { spec: parseSpec(doc.toJS(), file), file: abs, dir: path.dirname(abs) };
}
