/** Drawing campaign progress on the terminal: a bar per stage, redrawn in place on a TTY. */
import type { CampaignStatusView } from '../client/status';

const WIDTH = 30;

export function bar(done: number, total: number): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(frac * WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
}

export function renderStatus(s: CampaignStatusView): string[] {
  const lines = [
    `campaign ${s.campaignId}  ${s.state}${s.pauseRequested && s.state === 'running' ? ' (pausing: finishing batches in flight)' : ''}  cost ~$${s.costUsd.toFixed(4)}`,
  ];
  if (s.forecastOf) {
    lines.push(
      `  forecast run: a sample standing for ${s.forecastOf.train} + ${s.forecastOf.eval} questions`,
    );
  }
  for (const st of s.stages) {
    lines.push(
      `  ${`${st.stage} #${st.iteration}`.padEnd(12)} ${bar(st.done, st.total)} ${String(st.done).padStart(5)}/${st.total}  ${st.status}`,
    );
    if (st.retrying) lines.push(`    retrying (attempt ${st.retrying.attempt}): ${st.retrying.lastError}`);
    const pb = st.providerBatches;
    if (pb) {
      lines.push(
        `    waiting for provider batches (round ${pb.round + 1}): ${pb.inProgress} of ${pb.batches} in progress, ` +
          `${pb.answered}/${pb.requests} requests answered${pb.ids.length > 0 ? ` — ${pb.ids.join(', ')}` : ''}`,
      );
    }
  }
  if (s.state === 'paused' && s.pauseReason) lines.push(`  paused: ${s.pauseReason}`);
  if (s.lineage.length > 0)
    lines.push(`  lineage: ${s.lineage.map((m) => `${m.label}(${m.servedModel})`).join(' → ')}`);
  if (s.awaitingRegistration) {
    const a = s.awaitingRegistration;
    lines.push(
      `  waiting for ${a.label}'s served name: serve ${a.checkpointUri}, then ` +
        `meteorctl model register ${s.campaignId} ${a.label} --served-model NAME`,
    );
  }
  if (s.error) lines.push(`  error: ${s.error}`);
  return lines;
}

export class ProgressView {
  private drawn = 0;
  private last = '';
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(s: CampaignStatusView): void {
    const lines = renderStatus(s);
    const text = lines.join('\n');
    if (text === this.last) return;
    this.last = text;
    if (this.out.isTTY) {
      if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
      this.out.write(`${text}\n`);
      this.drawn = lines.length;
    } else {
      this.out.write(`${text}\n`);
    }
  }
}
