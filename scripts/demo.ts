/**
 * `npm run demo`: the local stack, the model simulator and a worker, then the example campaign
 * with a progress bar per stage, then a summary of where every datum can be audited.
 * Every model in this demo is SIMULATED; nothing it prints is a result about METEOR.
 */
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, DEFAULT_STATE_DIR } from '../client/connect';
import { readStackFile } from '../infra/stack/local-stack';
import { DEFAULT_TASK_QUEUE } from '../workers/defaults';
import { launchCampaign } from '../client/launch';
import { buildReport, renderReportText } from '../client/report';
import { renderReportHtml } from '../client/report-html';
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

    // The report: every stage's records, datasets, tokens and cost, the lineage, and the evaluation.
    const report = await buildReport(clients.db, campaignId);
    const htmlFile = path.join(process.env.METEOR_HOME ?? DEFAULT_STATE_DIR, 'reports', `${campaignId}.html`);
    await mkdir(path.dirname(htmlFile), { recursive: true });
    await writeFile(htmlFile, await renderReportHtml(report));
    say();
    say(`── report (simulated models) ─ campaign ${campaignId}: ${final.state}`);
    say(renderReportText(report));
    say(`HTML report:  ${htmlFile}  (open it in a browser)`);
    say();
    say(
      `Temporal UI:  ${stack.uiUrl ?? '-'}/namespaces/${stack.namespace}/workflows/${workflowId}  (while \`npx meteorctl dev\` runs)`,
    );
    say(
      `Audit:        npx meteorctl audit export ${campaignId} --stage distill|assess|contrast|evaluate -o audit.jsonl`,
    );
    say(
      `Datasets:     npx meteorctl dataset export ${campaignId} --stage contrast --iteration 1 --format trl -o pairs.jsonl`,
    );
    say(`Report:       npx meteorctl campaign report ${campaignId} [--json] [--html report.html]`);
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
