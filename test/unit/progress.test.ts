/** `--wait` and `campaign status` say what is being retried and why a campaign is paused. */
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../cli/progress';
import type { CampaignStatusView } from '../../client/status';

const base: CampaignStatusView = {
  campaignId: 'k8s-ops-abc123',
  workflowId: 'campaign-k8s-ops-abc123',
  state: 'running',
  pauseRequested: false,
  pauseReason: null,
  stage: 'distill',
  iteration: 1,
  stages: [
    {
      stage: 'distill',
      iteration: 1,
      status: 'running',
      total: 48,
      done: 12,
      records: 12,
      costUsd: 0.01,
      failed: 0,
      retrying: null,
    },
  ],
  costUsd: 0.01,
  failedQuestions: 0,
  lineage: [],
  error: null,
  name: 'k8s-ops',
  domain: 'Kubernetes operations',
  createdAt: '2026-12-01T00:00:00.000Z',
  line: null,
  forecastOf: null,
  source: 'workflow',
  awaitingRegistration: null,
};

describe('renderStatus', () => {
  it('shows a stage being retried, with the attempt and the last error', () => {
    const stage = { ...base.stages[0]!, retrying: { attempt: 7, lastError: 'cannot reach strong endpoint' } };
    const text = renderStatus({ ...base, stages: [stage] }).join('\n');
    expect(text).toMatch(/distill #1 .*\n\s+retrying \(attempt 7\): cannot reach strong endpoint/);
  });

  it('says why a campaign is paused, and nothing when it runs', () => {
    expect(renderStatus(base).join('\n')).not.toMatch(/paused:/);
    const reason = 'budget reached: $0.0171 of $0.01; raise budget.maxCostUsd and resume';
    const text = renderStatus({ ...base, state: 'paused', pauseReason: reason }).join('\n');
    expect(text).toContain(`paused: ${reason}`);
  });
});
