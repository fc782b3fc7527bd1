/**
 * Real providers' quirks (issue 14), played by the simulator (a simulation: infra/sim/quirks.ts):
 * a strong model that, like OpenAI's reasoning models, refuses any temperature but the default and
 * refuses `max_tokens`, and, like some compatible servers, has no `json_schema`. The launch's canary
 * refuses the spec one parameter at a time, naming the role, the stage, the parameter, the
 * provider's message and the spec field that fixes it, creating nothing; with the fields set, the
 * shaped requests pass the canary and the campaign completes end to end, its strong calls as the
 * endpoint wants them (counted at the simulator).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, renderReportText } from '../../client/report';
import { renderReportHtml } from '../../client/report-html';
import { UserError } from '../../core/errors';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';

const QUESTIONS = 4;
let h: Harness;
let train: string;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 5 });
  train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(QUESTIONS));
  h.sim.setQuirks('sim-strong', {
    refuseTemperature: true,
    requireMaxCompletionTokens: true,
    noJsonSchema: true,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

async function campaignCount(): Promise<number> {
  const row = await h.clients.db
    .selectFrom('campaigns')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The launch's refusal, with the canary on; nothing may be created. */
async function refused(strong: Record<string, unknown>): Promise<string[]> {
  const spec = await writeSpec(h, {
    name: 'shaping',
    questions: { train },
    models: { strong: { maxTokens: 512, ...strong } },
    stages: { assess: { enabled: true } },
  });
  const before = await campaignCount();
  const err = await launch(h, spec, { canary: true }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect(await campaignCount()).toBe(before);
  return (err as UserError).problems;
}

describe('the canary at launch', () => {
  it('refuses a temperature the model does not take, naming role, stage, parameter, message and fix', async () => {
    const problems = await refused({});
    // distill's strong answer and assess's verdict: both greedy, both refused.
    expect(problems).toHaveLength(2);
    const distill = problems.find((p) => p.includes('stage distill'));
    expect(distill).toContain('models.strong: the request stage distill sends (strong-answer)');
    expect(distill).toContain('refused for temperature (400)');
    expect(distill).toContain("Unsupported value: 'temperature' does not support 0 with this model");
    expect(distill).toContain('set models.strong.temperature: omit');
    expect(problems.find((p) => p.includes('stage assess'))).toContain(
      '(verdict) was refused for temperature',
    );
  });

  it('then max_tokens, then json_schema, each with its own fix', async () => {
    const tokens = await refused({ temperature: 'omit' });
    expect(tokens[0]).toContain('refused for max_tokens (400)');
    expect(tokens[0]).toContain("Use 'max_completion_tokens' instead");
    expect(tokens[0]).toContain('set models.strong.tokenLimitField: max_completion_tokens');
    const schema = await refused({ temperature: 'omit', tokenLimitField: 'max_completion_tokens' });
    expect(schema[0]).toContain('refused for response_format (400)');
    expect(schema[0]).toContain('set models.strong.structuredOutput: json_object');
  });
});

describe('shaped requests', () => {
  it('pass the canary, and the campaign completes with every strong call shaped as the endpoint wants', async () => {
    const spec = await writeSpec(h, {
      name: 'shaped',
      questions: { train },
      models: {
        strong: {
          maxTokens: 512,
          temperature: 'omit',
          tokenLimitField: 'max_completion_tokens',
          structuredOutput: 'json_object',
        },
      },
      stages: { assess: { enabled: true } },
    });
    const served = h.sim.stats().served;
    const { campaignId, canary } = await launch(h, spec, { canary: true });
    // One request per kind: distill's strong answer and assess's verdict, and one to the weak model
    // (distill's guideline and assess's answer ask it the same way, so the same canary serves both).
    expect(canary?.requests).toBe(3);
    expect(h.sim.stats().served - served).toBe(3);
    process.stderr.write(`[canary] ${canary?.requests} requests in ${canary?.ms} ms\n`);
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');

    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['stage', 'role', 'status', 'request', 'cost_usd'])
      .where('campaign_id', '=', campaignId)
      .execute();
    // The canary's calls are the campaign's, logged as preflight.
    expect(calls.filter((c) => c.stage === 'preflight' && c.status === 'ok')).toHaveLength(3);
    // No call of the campaign was refused, and every strong request went out shaped.
    expect(calls.filter((c) => c.status === 'error')).toEqual([]);
    const strong = calls.filter((c) => c.role === 'strong');
    expect(strong.length).toBeGreaterThanOrEqual(2 * QUESTIONS + 2);
    for (const call of strong) {
      const body = call.request as Record<string, unknown>;
      expect(body).not.toHaveProperty('temperature');
      expect(body).not.toHaveProperty('max_tokens');
      // The canary asks for a few tokens only; the stages for maxTokens.
      expect(body['max_completion_tokens']).toBe(call.stage === 'preflight' ? 16 : 512);
      expect(body['response_format']).toEqual({ type: 'json_object' });
    }
    // At the simulator: the structured replies were asked as JSON mode, the schema in the prompt.
    const formats = new Set(
      h.sim
        .stats()
        .recent.filter((r) => r.model === 'sim-strong' && r.status === 200)
        .map((r) => r.responseFormat),
    );
    expect(formats).toEqual(new Set(['json_object:strong_answer', 'json_object:assessment_verdict']));
    // Records were made from those replies.
    const records = await h.clients.db
      .selectFrom('assess_rounds')
      .select('verdict')
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(records.length).toBeGreaterThanOrEqual(QUESTIONS);
    expect(records.every((r) => r.verdict !== 'unparseable')).toBe(true);
    // The report states how the greedy calls ran, in text and in HTML.
    const report = await buildReport(h.clients.db, campaignId);
    const text = renderReportText(report);
    expect(text).toContain('models.strong: no temperature was sent (temperature: omit)');
    expect(text).toContain('models.strong: structured replies asked as json_object');
    const html = await renderReportHtml(report);
    const shaping = /<ul class="method" id="request-shaping">(.*?)<\/ul>/s.exec(html)?.[1] ?? '';
    expect(shaping).toContain('models.strong: no temperature was sent (temperature: omit)');
    expect(shaping).toContain('models.strong: structured replies asked as json_object');
  });
});

describe('the canary and a stage option', () => {
  it("refuses beam search on a server without it, naming the contrast stage's method", async () => {
    const noBeam = await startHarness({ rejectBeamSearch: true, worker: false });
    try {
      const spec = await writeSpec(noBeam, {
        name: 'no-beam',
        questions: { train },
        stages: { contrast: { enabled: true, method: 'beam' } },
      });
      const err = await launch(noBeam, spec, { canary: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UserError);
      const [problem, ...more] = (err as UserError).problems;
      expect(more).toEqual([]);
      expect(problem).toContain('models.weak: the request stage contrast sends (beam-search) was refused');
      expect(problem).toContain('set stages.contrast.method: best-of-n');
    } finally {
      await noBeam.close();
    }
  });
});
