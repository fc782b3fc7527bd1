/**
 * `meteorctl line …`: evolution lines — a campaign run again on a Temporal Schedule
 * (`line-<name>`), each iteration promoted over the champion only past the judge's gate.
 * Registered from cli/main.ts; errors reach main's handler (stderr, non-zero exit).
 */
import { Command } from 'commander';
import os from 'node:os';
import { buildLineReport, renderLineReportText } from '../client/line-report';
import { renderLineReportHtml } from '../client/line-report-html';
import {
  createLine,
  deleteLine,
  lineStatus,
  listLines,
  pauseLine,
  promoteLine,
  rollbackLine,
  triggerLine,
  unpauseLine,
  type LineStatus,
} from '../client/lines';
import { writeToPathOrUri } from '../core/artifacts';
import { loadLineSpecFile } from '../core/line-spec-file';
import { printJson, withClients } from './common';

function renderLine(s: LineStatus): string[] {
  const champion = s.champion
    ? `${s.champion.servedModel} (${s.champion.label} of ${s.champion.campaignId})`
    : 'none yet (the base model)';
  const lines = [
    `line ${s.name}  ${s.state}  schedule ${s.scheduleId}`,
    `  campaign:  ${s.campaignFile}`,
    `  champion:  ${champion}`,
    `  next run:  ${s.nextRunAt ?? '-'}${s.note ? `  (${s.note})` : ''}`,
    `  iterations: ${s.iterations.length === 0 ? 'none yet' : ''}`,
  ];
  for (const it of s.iterations) {
    const promoted = it.promoted === null ? '' : it.promoted ? '  promoted' : '  not promoted';
    lines.push(
      `    #${it.iteration}  ${(it.campaignId ?? '-').padEnd(28)} ${it.state.padEnd(9)}${promoted}` +
        `${it.reason ? `  (${it.reason})` : ''}`,
    );
  }
  return lines;
}

export function lineCommand(): Command {
  const line = new Command('line').description(
    'Evolution lines: a campaign on a schedule, each iteration judged against the champion',
  );

  line
    .command('create')
    .description('Validate a line spec and its campaign, check its endpoints, and create its schedule')
    .requiredOption('-f, --file <line.yaml>', 'line spec (YAML)')
    .option('--no-preflight', "skip the campaign's API key, endpoint and backend checks")
    .option('--json', 'print {"name", "scheduleId"} as JSON')
    .action(async (opts: { file: string; preflight: boolean; json?: boolean }) => {
      const loaded = await loadLineSpecFile(opts.file);
      await withClients(async (clients) => {
        const created = await createLine(clients, loaded, { preflight: opts.preflight });
        if (opts.json) printJson(created);
        else process.stderr.write(`created line ${created.name} (schedule ${created.scheduleId})\n`);
      });
    });

  line
    .command('list')
    .description('List lines with their state, champion and iterations')
    .option('--json', 'print a JSON array of status objects')
    .action(async (opts: { json?: boolean }) => {
      await withClients(async (clients) => {
        const all = await listLines(clients);
        if (opts.json) return printJson(all);
        if (all.length === 0) process.stdout.write('no lines\n');
        for (const s of all) {
          process.stdout.write(
            `${s.name.padEnd(40)} ${s.state.padEnd(8)} ${String(s.iterations.length).padStart(3)} iteration(s)  ` +
              `champion ${s.champion?.servedModel ?? '-'}\n`,
          );
        }
      });
    });

  line
    .command('status <name>')
    .description("Show the line's state, schedule, champion and iterations")
    .option('--json', 'print one JSON object')
    .action(async (name: string, opts: { json?: boolean }) => {
      await withClients(async (clients) => {
        const s = await lineStatus(clients, name);
        if (opts.json) printJson(s);
        else process.stdout.write(`${renderLine(s).join('\n')}\n`);
      });
    });

  line
    .command('pause <name>')
    .description('Pause the schedule: no new iterations start')
    .option('--running', 'also pause the running iteration (at its next safe point)')
    .action(async (name: string, opts: { running?: boolean }) => {
      await withClients(async (clients) => {
        const r = await pauseLine(clients, name, { running: opts.running ?? false });
        process.stderr.write(
          `line ${name} paused${r.campaignId ? `; pause sent to its running campaign ${r.campaignId}` : ''}\n`,
        );
      });
    });

  line
    .command('unpause <name>')
    .description('Unpause the schedule and resume a paused running iteration')
    .action(async (name: string) => {
      await withClients(async (clients) => {
        const r = await unpauseLine(clients, name);
        process.stderr.write(
          `line ${name} unpaused${r.campaignId ? `; resume sent to its running campaign ${r.campaignId}` : ''}\n`,
        );
      });
    });

  line
    .command('trigger <name>')
    .description("Start an iteration now (the line's overlap policy still applies)")
    .action(async (name: string) => {
      await withClients(async (clients) => {
        await triggerLine(clients, name);
        process.stderr.write(`line ${name} triggered\n`);
      });
    });

  line
    .command('delete <name>')
    .description('Delete the schedule; the iterations, campaigns and models are kept')
    .action(async (name: string) => {
      await withClients(async (clients) => {
        const r = await deleteLine(clients, name);
        process.stderr.write(
          r.alreadyDeleted ? `line ${name} was already deleted\n` : `line ${name} deleted\n`,
        );
      });
    });

  line
    .command('report <name>')
    .description(
      'Per iteration: questions added and replayed, cost, the judged result against the champion with ' +
        'its CI, promoted or not; and the champion history',
    )
    .option('--json', 'print the report as one JSON document')
    .option(
      '--html <file>',
      'also write it as one self-contained HTML file (charts inline); a path, or s3://bucket/key',
    )
    .action(async (name: string, opts: { json?: boolean; html?: string }) => {
      await withClients(async (clients) => {
        const report = await buildLineReport(clients, name);
        if (opts.html) {
          const where = await writeToPathOrUri(opts.html, await renderLineReportHtml(report), process.env);
          process.stderr.write(`HTML report written to ${where}\n`);
        }
        if (opts.json) printJson(report);
        else process.stdout.write(renderLineReportText(report));
      });
    });

  const who = () => process.env.USER ?? os.userInfo().username;
  line
    .command('promote <name>')
    .description("Make a campaign's model the line's champion by hand (recorded with who and why)")
    .requiredOption('--campaign <id>', 'the campaign (an iteration of this line) whose model to promote')
    .option('--label <label>', "the model's label (default: the campaign's final model)")
    .option('--why <text>', 'the reason, kept in the champion history')
    .option('--by <name>', 'who (default: $USER)')
    .action(async (name: string, opts: { campaign: string; label?: string; why?: string; by?: string }) => {
      await withClients(async (clients) => {
        const c = await promoteLine(clients, name, {
          campaignId: opts.campaign,
          label: opts.label ?? null,
          actor: opts.by ?? who(),
          why: opts.why ?? null,
        });
        process.stderr.write(
          `line ${name}: champion is now ${c.label} of ${c.campaignId} (${c.servedModel})\n`,
        );
      });
    });

  line
    .command('rollback <name>')
    .description('Make the previous champion the champion again (recorded with who and why)')
    .option('--why <text>', 'the reason, kept in the champion history')
    .option('--by <name>', 'who (default: $USER)')
    .action(async (name: string, opts: { why?: string; by?: string }) => {
      await withClients(async (clients) => {
        const c = await rollbackLine(clients, name, { actor: opts.by ?? who(), why: opts.why ?? null });
        process.stderr.write(
          `line ${name}: champion is back to ${c.label} of ${c.campaignId} (${c.servedModel})\n`,
        );
      });
    });

  return line;
}
