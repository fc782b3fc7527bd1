/**
 * meteorctl — run METEOR campaigns on Temporal. Every command prints errors to stderr and exits
 * non-zero; `--json` prints exactly one JSON document on stdout.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command, Option } from 'commander';
import { parseUsd, raiseBudget } from '../client/budget';
import { DEFAULT_FORECAST_SAMPLE, renderForecast, runForecast } from '../client/forecast';
import { launchCampaign } from '../client/launch';
import { loadSpecQuestions } from '../client/preflight';
import { buildReport, renderReportText } from '../client/report';
import { renderReportHtml } from '../client/report-html';
import { fineTuneEvents, listFineTunes } from '../client/finetunes';
import { registerServedModel } from '../client/models';
import { retryFailedQuestions } from '../client/retry-failed';
import { campaignStatus, getCampaignRow, listCampaigns } from '../client/status';
import { waitForCampaign } from '../client/wait';
import { writeToPathOrUri } from '../core/artifacts';
import { getCampaign } from '../core/campaigns';
import { UserError } from '../core/errors';
import { scrubSecrets, secretValues } from '../core/secrets';
import { auditRecords } from '../core/records';
import { searchTreeAudit } from '../core/search/pg-tree-store';
import { TRAINING_FORMATS, trainingLines, type TrainingFormat } from '../core/training-data';
import { stageNames, trainingStageNames, type StageName, type TrainingStage } from '../stages/registry';
import { loadSpecFile } from '../core/spec-file';
import { resumeSignal, pauseSignal } from '../workflows/messages';
import { ProgressView, renderStatus } from './progress';
import { printJson, withClients } from './common';
import { runDev } from './dev';
import { runWorker, type WorkerFlags } from './worker';
import { deploymentCommand } from './deployment';
import { lineCommand } from './line';

/** Writes JSONL to a file or stdout; returns the number of lines. */
async function writeLines(rows: AsyncIterable<unknown>, file: string | undefined): Promise<number> {
  const out: NodeJS.WritableStream = file ? createWriteStream(file) : process.stdout;
  let n = 0;
  for await (const row of rows) {
    if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
    n++;
  }
  if (file) {
    out.end();
    await once(out, 'finish');
  }
  return n;
}

const program = new Command('meteorctl')
  .description('Run METEOR self-evolution campaigns for LLMs as durable Temporal workflows.')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Services: DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (default "default"), TEMPORAL_API_KEY,
METEOR_TASK_QUEUE (default "meteor"); when unset, the stack started by \`meteorctl dev\` is used.`,
  );

program
  .command('dev')
  .description(
    'Run the local stack in the foreground: PostgreSQL, Temporal dev server, model simulator, worker (data in .meteor/)',
  )
  .option('--no-worker', 'do not start a worker')
  .option('--no-sim', 'do not start the model simulator')
  .option('--sim-port <port>', 'port of the model simulator', '8787')
  .action(async (opts: { worker: boolean; sim: boolean; simPort: string }) => {
    await runDev({ worker: opts.worker, sim: opts.sim, simPort: Number(opts.simPort) });
  });

program
  .command('worker')
  .description(
    'Run a worker for TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / DATABASE_URL (or the local stack); ' +
      'it waits for PostgreSQL and Temporal when they are down or restarting, and exits non-zero only ' +
      'for a configuration error',
  )
  .option('--task-queue <name>', 'the campaign task queue (default: $METEOR_TASK_QUEUE or "meteor")')
  .option(
    '--queues <list>',
    'task queues to serve, comma-separated: the campaign queue (workflows, LLM batches) and fine-tune ' +
      "queues (spec fineTune.queue; each also gets this host's own queue <queue>@<host>, host: " +
      '$METEOR_HOST_ID or the hostname) ' +
      '(default: "<task queue>,meteor-gpu")',
  )
  .option(
    '--db-pool-max <n>',
    'PostgreSQL connections this worker opens at most (default: $METEOR_DB_POOL_MAX or 20); ' +
      'the server must allow workers × n, plus 4 per meteorctl command',
  )
  .option(
    '--deployment-name <name>',
    'Worker Versioning: the Worker Deployment it polls as (default: $METEOR_DEPLOYMENT_NAME or "meteor")',
  )
  .option(
    '--build-id <id>',
    "Worker Versioning: this worker's build (default: $METEOR_BUILD_ID or the package version); campaigns " +
      'stay pinned to the build they started on, new ones start on the current build (`meteorctl deployment`)',
  )
  .option(
    '--unversioned',
    'poll without Worker Versioning (every run may move to this code on its next task)',
  )
  .action(async (opts: WorkerFlags) => {
    await runWorker(opts);
  });

const campaign = program.command('campaign').description('Launch, follow and steer campaigns');

campaign
  .command('launch')
  .description('Validate a campaign spec, check its endpoints, and start the campaign')
  .requiredOption('-f, --file <spec.yaml>', 'campaign spec (YAML)')
  .option('--wait', 'follow the campaign until it ends, with a progress bar per stage')
  .option(
    '--no-preflight',
    'skip the API key and endpoint checks (the spec and question files are always checked)',
  )
  .option(
    '--no-canary',
    'skip the canary: the one real request per kind the stages send to each model (billed, logged as preflight)',
  )
  .option('--yes', "launch even when the spec's latest forecast (`campaign plan`) exceeds budget.maxCostUsd")
  .option('--json', 'print {"campaignId", "workflowId", "forecast", "canary"} as JSON')
  .action(
    async (opts: {
      file: string;
      wait?: boolean;
      preflight: boolean;
      canary: boolean;
      yes?: boolean;
      json?: boolean;
    }) => {
      const loaded = await loadSpecFile(opts.file);
      await withClients(async (clients) => {
        const launched = await launchCampaign(clients, loaded, {
          preflight: opts.preflight,
          canary: opts.canary,
          overBudget: opts.yes ?? false,
        });
        if (!opts.json) {
          process.stderr.write(`launched ${launched.campaignId} (workflow ${launched.workflowId})\n`);
          if (launched.canary) {
            process.stderr.write(
              `canary: ${launched.canary.requests} requests accepted in ${launched.canary.ms} ms (logged as stage preflight)\n`,
            );
          }
          const f = launched.forecast;
          process.stderr.write(
            f
              ? `forecast (${f.campaignId}): $${f.forecast.total.costUsd.toFixed(2)} (95% range $${f.forecast.total.costRange.lo.toFixed(2)}–$${f.forecast.total.costRange.hi.toFixed(2)}), ${f.forecast.total.calls} calls\n`
              : 'no forecast of this spec yet: `meteorctl campaign plan -f SPEC` prices it on a sample\n',
          );
        }
        if (!opts.wait) {
          if (opts.json) printJson(launched);
          return;
        }
        const view = new ProgressView();
        const final = await waitForCampaign(clients, launched.campaignId, (s) => {
          if (!opts.json) view.update(s);
        });
        if (opts.json) printJson({ ...launched, state: final.state });
        if (final.state !== 'completed') process.exitCode = 1;
      });
    },
  );

campaign
  .command('plan')
  .description(
    "Forecast a campaign's bill: run it on a sample of its questions (real endpoints, fine-tunes on the sample), " +
      'then print per stage and in total the calls, tokens, cost and time, scaled to all questions',
  )
  .requiredOption('-f, --file <spec.yaml>', 'campaign spec (YAML)')
  .option('--sample <n>', 'questions sampled from each split', String(DEFAULT_FORECAST_SAMPLE))
  .option('--seed <n>', 'seed of the sample', '1')
  .option(
    '--no-train',
    'no fine-tune on the sample: every stage priced with the base model (faster; an upper bound when training helps)',
  )
  .option('--no-preflight', 'skip the API key and endpoint checks')
  .option('--json', 'print the forecast as JSON')
  .action(
    async (opts: {
      file: string;
      sample: string;
      seed: string;
      train: boolean;
      preflight: boolean;
      json?: boolean;
    }) => {
      const loaded = await loadSpecFile(opts.file);
      const questions = await loadSpecQuestions(loaded);
      await withClients(async (clients) => {
        const view = new ProgressView();
        const run = await runForecast(clients, loaded, questions, {
          sample: Number(opts.sample),
          seed: Number(opts.seed),
          train: opts.train,
          preflight: opts.preflight,
          onStatus: (s) => {
            if (!opts.json) view.update(s);
          },
        });
        if (opts.json) printJson(run);
        else process.stdout.write(`${renderForecast(run.forecast, run.campaignId).join('\n')}\n`);
      });
    },
  );

campaign
  .command('status <campaignId>')
  .description('Show state, stage, progress, cost and model lineage')
  .option('--json', 'print one JSON object')
  .option('--wait', 'follow the campaign until it ends, with a progress bar per stage (on stderr)')
  .action(async (campaignId: string, opts: { json?: boolean; wait?: boolean }) => {
    await withClients(async (clients) => {
      if (opts.wait) {
        const view = new ProgressView();
        const final = await waitForCampaign(clients, campaignId, (s) => {
          if (!opts.json) view.update(s);
        });
        if (opts.json) printJson(final);
        if (final.state !== 'completed') process.exitCode = 1;
        return;
      }
      const s = await campaignStatus(clients, campaignId);
      if (opts.json) printJson(s);
      else process.stdout.write(`${renderStatus(s).join('\n')}\n`);
    });
  });

campaign
  .command('list')
  .description('List campaigns, newest first')
  .option('--json', 'print a JSON array of status objects')
  .action(async (opts: { json?: boolean }) => {
    await withClients(async (clients) => {
      const all = await listCampaigns(clients);
      if (opts.json) return printJson(all);
      if (all.length === 0) process.stdout.write('no campaigns\n');
      for (const s of all) {
        const stage = s.stage ? `${s.stage} #${s.iteration}` : '-';
        const why = s.pauseReason ? `  (${s.pauseReason})` : '';
        process.stdout.write(
          `${s.campaignId.padEnd(36)} ${s.state.padEnd(10)} ${stage.padEnd(12)} $${s.costUsd.toFixed(4)}  ${s.createdAt}${why}\n`,
        );
      }
    });
  });

campaign
  .command('pause <campaignId>')
  .description(
    'Signal the campaign: it pauses once the calls in flight finish (its running batches start no new call)',
  )
  .action(async (campaignId: string) => {
    await withClients(async (clients) => {
      const row = await getCampaignRow(clients.db, campaignId);
      await clients.temporal.workflow.getHandle(row.workflow_id).signal(pauseSignal);
      process.stderr.write(`pause sent to ${campaignId}\n`);
    });
  });

campaign
  .command('resume <campaignId>')
  .description(
    'Signal the campaign: it continues where it stopped (after a pause, a budget reached, an endpoint outage)',
  )
  .option('--max-cost-usd <usd>', "first raise the campaign's budget (budget.maxCostUsd) to this")
  .option('--stage <stage>', "with --max-cost-usd: raise this stage's budget (stages.S.maxCostUsd) instead")
  .action(async (campaignId: string, opts: { maxCostUsd?: string; stage?: string }) => {
    if (opts.stage !== undefined && opts.maxCostUsd === undefined) {
      throw new UserError('--stage goes with --max-cost-usd (the stage whose budget to raise)');
    }
    const usd = opts.maxCostUsd === undefined ? undefined : parseUsd(opts.maxCostUsd, '--max-cost-usd');
    await withClients(async (clients) => {
      const row = await getCampaignRow(clients.db, campaignId);
      if (usd !== undefined) {
        await raiseBudget(clients.db, campaignId, usd, opts.stage);
        process.stderr.write(
          `budget of ${opts.stage ? `stage ${opts.stage}` : 'the campaign'} raised to $${usd}\n`,
        );
      }
      await clients.temporal.workflow.getHandle(row.workflow_id).signal(resumeSignal);
      process.stderr.write(`resume sent to ${campaignId}\n`);
    });
  });

campaign
  .command('cancel <campaignId>')
  .description(
    'Cancel the campaign, any fine-tune job it is running and its provider batches (their answers so far are logged)',
  )
  .action(async (campaignId: string) => {
    await withClients(async (clients) => {
      const row = await getCampaignRow(clients.db, campaignId);
      await clients.temporal.workflow.getHandle(row.workflow_id).cancel();
      process.stderr.write(`cancel requested for ${campaignId}\n`);
    });
  });

campaign
  .command('retry-failed <campaignId>')
  .description(
    'Retry the questions a finished campaign gave up on (rejected requests, retries exhausted, replies ' +
      'that never parsed), once their cause is fixed; successes are marked resolved',
  )
  .addOption(new Option('--stage <stage>', 'only this stage').choices(stageNames()))
  .option('--json', 'print the result as one JSON document')
  .action(async (campaignId: string, opts: { stage?: StageName; json?: boolean }) => {
    await withClients(async (clients) => {
      const result = await retryFailedQuestions(clients, campaignId, opts.stage);
      if (opts.json) printJson(result);
      else {
        if (result.stages.length === 0)
          process.stdout.write(`no failed questions to retry in ${campaignId}\n`);
        for (const s of result.stages) {
          process.stdout.write(
            `${s.stage} #${s.iteration}: ${s.retried} retried, ${s.resolved} resolved, ${s.stillFailed} still failed\n`,
          );
        }
      }
      process.stderr.write(`${result.limits}\n`);
    });
  });

campaign
  .command('report <campaignId>')
  .description(
    'Report the evaluation (win/tie/loss, win rates with 95% CI, scores, lengths per model and dimension), ' +
      'records, datasets, tokens and cost per stage, and the model lineage',
  )
  .option('--json', 'print the report as one JSON document')
  .option(
    '--html <file>',
    'also write the report as one self-contained HTML file (inline SVG charts); a path, or s3://bucket/key',
  )
  .action(async (campaignId: string, opts: { json?: boolean; html?: string }) => {
    await withClients(async (clients) => {
      const report = await buildReport(clients.db, campaignId);
      if (opts.html) {
        const where = await writeToPathOrUri(opts.html, await renderReportHtml(report), process.env);
        process.stderr.write(`HTML report written to ${where}\n`);
      }
      if (opts.json) printJson(report);
      else process.stdout.write(renderReportText(report));
    });
  });

const stageOption = (stages: readonly string[]) =>
  new Option('--stage <stage>', 'stage').choices(stages as string[]).makeOptionMandatory();

const audit = program.command('audit').description('Audit what a campaign produced');

audit
  .command('export <campaignId>')
  .description('Export every record of a stage as JSONL, each with the ids of the LLM calls that made it')
  .addOption(stageOption(stageNames()))
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(async (campaignId: string, opts: { stage: StageName; output?: string }) => {
    await withClients(async (clients) => {
      await getCampaignRow(clients.db, campaignId);
      const n = await writeLines(auditRecords(clients.db, campaignId, opts.stage), opts.output);
      process.stderr.write(
        `${n} ${opts.stage} record(s)${opts.output ? ` written to ${opts.output}` : ''}\n`,
      );
    });
  });

audit
  .command('tree <campaignId>')
  .description(
    "Print a question's search tree in a stage (mcts; contrast with method rstar) as JSON, nested from the root: every node with " +
      'its step, value, visits and children in creation order; one tree per iteration, or the one of --iteration',
  )
  .addOption(stageOption(stageNames()))
  .requiredOption('--question <id>', 'the question id')
  .option('--iteration <n>', 'only the tree of this iteration (prints that tree, not an array)')
  .action(async (campaignId: string, opts: { stage: StageName; question: string; iteration?: string }) => {
    const iteration = opts.iteration === undefined ? undefined : Number(opts.iteration);
    if (iteration !== undefined && (!Number.isInteger(iteration) || iteration < 1))
      throw new UserError('--iteration takes a whole number from 1');
    await withClients(async (clients) => {
      await getCampaignRow(clients.db, campaignId);
      const trees = (await searchTreeAudit(clients.db, campaignId, opts.stage, opts.question)).filter(
        (t) => iteration === undefined || t.iteration === iteration,
      );
      const which = `question ${opts.question} in stage ${opts.stage} of campaign ${campaignId}`;
      if (trees.length === 0)
        throw new UserError(
          `no search tree for ${which}${iteration === undefined ? '' : ` (iteration ${iteration})`}`,
        );
      printJson(iteration === undefined ? trees : trees[0]);
    });
  });

program
  .command('dataset')
  .description('Training datasets')
  .command('export <campaignId>')
  .description(
    "Export a training stage's dataset in a trainer's format (SFT for distill, assess and mcts; preference pairs for contrast), rows below a row filter's minScore left out",
  )
  .addOption(stageOption(trainingStageNames()))
  .addOption(new Option('--format <format>', 'format').choices([...TRAINING_FORMATS]).default('openai'))
  .option('--iteration <n>', 'iteration of the stage', '1')
  .option('-o, --output <file>', 'write to a file instead of stdout')
  .action(
    async (
      campaignId: string,
      opts: { stage: TrainingStage; format: TrainingFormat; iteration: string; output?: string },
    ) => {
      const iteration = Number(opts.iteration);
      if (!Number.isInteger(iteration) || iteration < 1)
        throw new UserError('--iteration takes a whole number from 1');
      await withClients(async (clients) => {
        const { spec } = await getCampaign(clients.db, campaignId);
        const n = await writeLines(
          trainingLines(clients.db, spec, campaignId, opts.stage, iteration, opts.format),
          opts.output,
        );
        if (n === 0) {
          throw new UserError(
            `campaign ${campaignId} has no ${opts.stage} training rows for iteration ${iteration} yet`,
          );
        }
        process.stderr.write(
          `${n} row(s) in ${opts.format} format${opts.output ? ` written to ${opts.output}` : ''}\n`,
        );
      });
    },
  );

const finetune = program.command('finetune').description("A campaign's fine-tune jobs");

finetune
  .command('list <campaignId>')
  .description('Each fine-tune: stage, iteration, backend, job id, state, start, end, final loss')
  .option(
    '--json',
    'print an array of {stage, iteration, backend, externalId, state, startedAt, finishedAt, finalLoss}',
  )
  .action(async (campaignId: string, opts: { json?: boolean }) => {
    await withClients(async (clients) => {
      await getCampaignRow(clients.db, campaignId);
      const jobs = await listFineTunes(clients.db, campaignId);
      if (opts.json) return printJson(jobs);
      if (jobs.length === 0) return void process.stdout.write('no fine-tunes yet\n');
      for (const j of jobs) {
        const loss = j.finalLoss === null ? '' : `  loss ${j.finalLoss.toFixed(4)}`;
        const took = j.durationSec === null ? '' : `  ${j.durationSec}s`;
        process.stdout.write(
          `${j.stage}-${j.iteration}  ${j.backend}  ${j.externalId ?? '(not submitted)'}  ${j.state}` +
            `${j.detail ? ` (${j.detail})` : ''}${took}${loss}${j.error ? `\n    ${j.error}` : ''}\n`,
        );
      }
    });
  });

finetune
  .command('logs <campaignId>')
  .description("A fine-tune's events and log lines (submit, state changes, trainer output, metrics)")
  .addOption(stageOption(trainingStageNames()))
  .option('--iteration <n>', 'iteration of the stage', '1')
  .action(async (campaignId: string, opts: { stage: TrainingStage; iteration: string }) => {
    const iteration = Number(opts.iteration);
    if (!Number.isInteger(iteration) || iteration < 1)
      throw new UserError('--iteration takes a whole number from 1');
    await withClients(async (clients) => {
      await getCampaignRow(clients.db, campaignId);
      for (const e of await fineTuneEvents(clients.db, campaignId, opts.stage, iteration)) {
        process.stdout.write(e.kind === 'log' ? `${e.message}\n` : `[${e.at} ${e.kind}] ${e.message}\n`);
      }
    });
  });

const model = program.command('model').description("A campaign's model versions");

model
  .command('register <campaignId> <label>')
  .description(
    'deploy: manual — name the served model of a fine-tuned version (e.g. M1) once you serve its checkpoint; ' +
      'the waiting campaign goes on with it',
  )
  .requiredOption('--served-model <name>', 'the name the weak endpoint serves the version under')
  .option('--no-check', 'skip checking that the weak endpoint serves the name (GET /models)')
  .option('--timeout <seconds>', 'how long to wait for the campaign to take the name', '60')
  .option('--json', 'print {campaignId, label, servedModel}')
  .action(
    async (
      campaignId: string,
      label: string,
      opts: { servedModel: string; check: boolean; timeout: string; json?: boolean },
    ) => {
      const timeoutSec = Number(opts.timeout);
      if (!Number.isFinite(timeoutSec) || timeoutSec <= 0)
        throw new UserError('--timeout takes seconds, e.g. 60');
      await withClients(async (clients) => {
        const registered = await registerServedModel(clients, campaignId, label, opts.servedModel, {
          check: opts.check,
          timeoutMs: timeoutSec * 1000,
          env: process.env,
        });
        if (opts.json) return printJson(registered);
        process.stdout.write(`${registered.label} of ${campaignId} is served as ${registered.servedModel}\n`);
      });
    },
  );

program.addCommand(lineCommand());
program.addCommand(deploymentCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  // Stacks only on request: users need the message, developers can set METEOR_DEBUG=1.
  const message =
    err instanceof Error
      ? process.env.METEOR_DEBUG && !(err instanceof UserError)
        ? (err.stack ?? err.message)
        : err.message
      : String(err);
  // Whatever the error carries (a provider's echo of a key, a URL with a password) stays off the terminal.
  process.stderr.write(`meteorctl: ${scrubSecrets(message, secretValues(process.env))}\n`);
  process.exit(1);
});
