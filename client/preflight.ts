/**
 * Launch preflight: everything a campaign needs is checked before anything is created — the
 * question files line by line, the API key variables, that every endpoint answers and serves
 * its model and takes the requests the stages will send (the canary), and that the fine-tune
 * backend answers (Slurm and its partition, the Kubernetes API
 * and namespace, the shared folder, the trainer command). All problems are reported together,
 * scrubbed of keys: providers echo the key they were given in their 401 texts.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { createBackend } from '../activities/finetune/backends';
import { runCanaries, type CanaryOutcome } from './canary';
import { errorMessage, fileProblem, UserError } from '../core/errors';
import { classifyLlmError } from '../core/llm/errors';
import { scrubSecrets, secretValues, specSecretNames } from '../core/secrets';
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

/** Null when the endpoint answers and serves its model; else what is wrong, naming `models.<role>`. */
export async function checkEndpoint(
  role: string,
  ep: EndpointSpec,
  env: NodeJS.ProcessEnv,
  secrets: readonly string[],
): Promise<string | null> {
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
    const ref = { role, baseURL: ep.baseURL, model: ep.model, apiKeyEnv: ep.apiKeyEnv };
    return `models.${role}: ${classifyLlmError(err, ref, secrets).message}`;
  }
}

async function endpointProblems(
  loaded: LoadedSpec,
  env: NodeJS.ProcessEnv,
  secrets: readonly string[],
): Promise<string[]> {
  const models = loaded.spec.models;
  return (
    await Promise.all(
      ROLES.map((role) => {
        const ep = models[role];
        return ep ? checkEndpoint(role, ep, env, secrets) : Promise.resolve(null);
      }),
    )
  ).filter((p): p is string => p !== null);
}

/** The fine-tune backend answers and can take the campaign's jobs (cluster, partition, namespace, shared dir). */
async function backendProblems(loaded: LoadedSpec, env: NodeJS.ProcessEnv): Promise<string[]> {
  const ft = loaded.spec.fineTune;
  const problems: string[] = [];
  if (ft.type !== 'local') {
    // Datasets are copied here before submit and adapters come back here: it must be writable.
    const probe = path.join(ft.sharedDir, `.meteor-preflight-${process.pid}-${Date.now()}`);
    try {
      await mkdir(ft.sharedDir, { recursive: true });
      await writeFile(probe, 'ok');
      await rm(probe, { force: true });
    } catch (err) {
      problems.push(`fineTune.sharedDir: ${ft.sharedDir} is not writable from here (${fileProblem(err)})`);
    }
  }
  try {
    problems.push(...(await (await createBackend(ft, { env, specDir: loaded.dir })).preflight()));
  } catch (err) {
    problems.push(`fineTune (${ft.type}): ${errorMessage(err)}`);
  }
  return problems;
}

/**
 * Every check that needs the outside world, all problems reported together; nothing is created.
 * Once every endpoint answers, the canary (client/canary.ts) sends each kind of request the
 * stages will; its answered calls are returned, for the campaign's call log.
 */
export async function checkServices(
  loaded: LoadedSpec,
  env: NodeJS.ProcessEnv = process.env,
  opts: { canary?: boolean } = {},
): Promise<CanaryOutcome> {
  const secrets = secretValues(env, specSecretNames(loaded.spec));
  const [endpoints, backend] = await Promise.all([
    endpointProblems(loaded, env, secrets),
    backendProblems(loaded, env),
  ]);
  // A canary to an endpoint that does not answer would only repeat its problem.
  const canary =
    endpoints.length === 0 && opts.canary !== false
      ? await runCanaries(loaded.spec, env, secrets)
      : { problems: [], calls: [], ms: 0 };
  const problems = [...endpoints, ...canary.problems, ...backend]
    // Backends quote URLs and command output too; nothing printed may carry a key.
    .map((p) => scrubSecrets(p, secrets));
  if (problems.length > 0) throw new UserError('Preflight failed; nothing was created:', problems);
  return canary;
}
