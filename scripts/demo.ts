/**
 * `npm run demo`: the local stack, the model simulator and a worker, then the example campaign
 * with a progress bar per stage, then a summary of where every datum can be audited.
 * Every model in this demo is SIMULATED; nothing it prints is a result about METEOR.
 */
import path from 'node:path';
import { sql } from 'kysely';
import { connect, DEFAULT_STATE_DIR } from '../client/connect';
import { readStackFile } from '../infra/stack/local-stack';
import { DEFAULT_TASK_QUEUE } from '../workers/worker';
import { launchCampaign } from '../client/launch';
import { waitForCampaign } from '../client/wait';
import { ProgressView } from '../cli/progress';
import { EXAMPLE_DIR, startDevEnvironment } from '../cli/dev';
import { loadSpecFile } from '../core/spec-file';
import { errorMessage } from '../core/errors';

const SPEC = path.join(EXAMPLE_DIR, 'campaign.yaml');

async function main(): Promise<number> {
  const started = Date.now();
  const say = (line = '') => process.stdout.write(`${line}\n`);
  say('meteor demo — the weak, strong and judge models are a SIMULATION (infra/sim), not real models.');
  say();
  // With `npx meteorctl dev` already running (stack, simulator and worker), run the demo on it.
  const running = await readStackFile(process.env.METEOR_HOME ?? DEFAULT_STATE_DIR);
  if (running) say(`  using the local stack already running (pid ${running.pid})`);
  const env = running
    ? null
    : await startDevEnvironment({ worker: true, sim: true, simPort: 8787, log: (l) => say(`  ${l}`) });
  const stack = env?.stack ?? running;
  if (!stack) throw new Error('no local stack');
  const clients = await connect({
    databaseUrl: stack.databaseUrl,
    temporalAddress: stack.temporalAddress,
    namespace: stack.namespace,
    taskQueue: env?.taskQueue ?? process.env.METEOR_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    uiUrl: stack.uiUrl,
  });
  try {
    const loaded = await loadSpecFile(SPEC);
    const { campaignId, workflowId } = await launchCampaign(clients, loaded);
    say();
    say(`launched campaign ${campaignId} from ${path.relative(process.cwd(), SPEC)}`);
    const view = new ProgressView(process.stdout);
    const final = await waitForCampaign(clients, campaignId, (s) => view.update(s), 500);
    const { db } = clients;

    const [records, calls, datasets, models, job] = await Promise.all([
      db
        .selectFrom('distill_records')
        .select([
          sql<number>`count(*)::int`.as('n'),
          sql<number>`count(*) filter (where guideline_corrected)::int`.as('corrected'),
        ])
        .where('campaign_id', '=', campaignId)
        .executeTakeFirstOrThrow(),
      db
        .selectFrom('llm_calls')
        .select([
          'role',
          'status',
          sql<number>`count(*)::int`.as('n'),
          sql<number>`sum(prompt_tokens + completion_tokens)::int`.as('tokens'),
          sql<number>`sum(cost_usd)::float8`.as('cost'),
        ])
        .where('campaign_id', '=', campaignId)
        .groupBy(['role', 'status'])
        .orderBy('role')
        .execute(),
      db.selectFrom('datasets').selectAll().where('campaign_id', '=', campaignId).orderBy('format').execute(),
      db
        .selectFrom('model_versions')
        .selectAll()
        .where('campaign_id', '=', campaignId)
        .orderBy('label')
        .execute(),
      db.selectFrom('finetune_jobs').selectAll().where('campaign_id', '=', campaignId).executeTakeFirst(),
    ]);

    say();
    say(`── summary (simulated models) ─ campaign ${campaignId}: ${final.state}`);
    say(
      `Stage 1 (distill): ${records.n} guideline-and-answer records, ${records.corrected} guidelines corrected by the strong model`,
    );
    for (const c of calls) {
      say(
        `  LLM calls ${c.role.padEnd(6)} ${c.status.padEnd(5)} ${String(c.n).padStart(4)}  tokens ${c.tokens ?? 0}  cost ~$${(c.cost ?? 0).toFixed(4)}`,
      );
    }
    say('Datasets:');
    for (const d of datasets)
      say(`  ${d.format.padEnd(12)} ${d.rows} rows  sha256 ${d.sha256.slice(0, 16)}…  ${d.uri}`);
    if (job)
      say(`Fine-tune: ${job.backend} job ${job.external_id} ${job.status} → ${job.checkpoint_uri ?? '-'}`);
    say(
      `Model lineage: ${models.map((m) => `${m.label} (${m.served_model}${m.parent_label ? `, from ${m.parent_label}` : ''})`).join(' → ')}`,
    );
    say();
    say(
      `Temporal UI:  ${stack.uiUrl ?? '-'}/namespaces/${stack.namespace}/workflows/${workflowId}  (while \`npx meteorctl dev\` runs)`,
    );
    say(`Audit:        npx meteorctl audit export ${campaignId} --stage distill -o audit.jsonl`);
    say(
      `Dataset:      npx meteorctl dataset export ${campaignId} --stage distill --format trl -o sft.trl.jsonl`,
    );
    say(`Status:       npx meteorctl campaign status ${campaignId} --json`);
    say(`Data is kept in .meteor/; \`npx meteorctl dev\` brings the stack back with this campaign.`);
    say(`Demo wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return final.state === 'completed' ? 0 : 1;
  } finally {
    await clients.close();
    await env?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
