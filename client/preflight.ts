/**
 * Launch preflight: everything a campaign needs is checked before anything is created — the
 * question files line by line, the API key variables, and that every endpoint answers and
 * serves its model. All problems are reported together.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { UserError } from '../core/errors';
import { classifyLlmError } from '../core/llm/errors';
import { assertDisjoint, loadQuestionFile, type Question } from '../core/questions';
import type { LoadedSpec } from '../core/spec-file';
import { ROLES, type EndpointSpec } from '../core/spec';

export interface LoadedQuestions {
  train: Question[];
  eval: Question[];
}

export async function loadSpecQuestions(loaded: LoadedSpec): Promise<LoadedQuestions> {
  const { spec, dir } = loaded;
  const train = await loadQuestionFile(
    path.resolve(dir, spec.questions.train),
    'train',
    spec.questions.train,
  );
  const evalQs = spec.questions.eval
    ? await loadQuestionFile(path.resolve(dir, spec.questions.eval), 'eval', spec.questions.eval)
    : [];
  assertDisjoint(train, evalQs);
  return { train, eval: evalQs };
}

async function checkEndpoint(role: string, ep: EndpointSpec, env: NodeJS.ProcessEnv): Promise<string | null> {
  if (ep.apiKeyEnv && !env[ep.apiKeyEnv]) {
    return `models.${role}: environment variable ${ep.apiKeyEnv} (its API key) is not set`;
  }
  const client = new OpenAI({
    baseURL: ep.baseURL,
    apiKey: ep.apiKeyEnv ? (env[ep.apiKeyEnv] as string) : 'none',
    timeout: 10_000,
    maxRetries: 1,
  });
  try {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    if (ids.length > 0 && !ids.includes(ep.model)) {
      return `models.${role}: ${ep.baseURL} does not serve model "${ep.model}" (it serves: ${ids.slice(0, 10).join(', ')})`;
    }
    return null;
  } catch (err) {
    return `models.${role}: ${classifyLlmError(err, { role, baseURL: ep.baseURL, model: ep.model, apiKeyEnv: ep.apiKeyEnv }).message}`;
  }
}

export async function checkEndpoints(
  loaded: LoadedSpec,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const models = loaded.spec.models;
  const problems = (
    await Promise.all(
      ROLES.map((role) => {
        const ep = models[role];
        return ep ? checkEndpoint(role, ep, env) : Promise.resolve(null);
      }),
    )
  ).filter((p): p is string => p !== null);
  if (problems.length > 0) throw new UserError('Preflight failed; nothing was created:', problems);
}
