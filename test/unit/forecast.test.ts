import { describe, expect, it } from 'vitest';
import { callIdsOf, forecastFrom, type StageSample } from '../../core/forecast';

const q = (calls: number, costUsd: number) => ({
  calls,
  inputTokens: calls * 100,
  outputTokens: calls * 50,
  costUsd,
});

function stage(over: Partial<StageSample> = {}): StageSample {
  const perQuestion = [q(2, 0.01), q(4, 0.02), q(2, 0.01), q(4, 0.02)];
  return {
    stage: 'assess',
    sampleQuestions: 4,
    fullQuestions: 40,
    total: { calls: 12, inputTokens: 1200, outputTokens: 600, costUsd: 0.06 },
    perQuestion,
    roles: [{ role: 'weak', calls: 12, meanLatencyMs: 500, concurrency: 2, requestsPerMinute: null }],
    ...over,
  };
}

describe('forecastFrom', () => {
  it('scales the sample to all questions, with the per-question spread as its range', () => {
    const f = forecastFrom([stage()], { sample: { train: 4, eval: 0 }, of: { train: 40, eval: 0 } });
    const [s] = f.stages;
    expect(s).toMatchObject({ questions: 40, calls: 120, inputTokens: 12_000, outputTokens: 6000 });
    expect(s?.costUsd).toBeCloseTo(0.6);
    // Per-question calls are 2 or 4 (mean 3): the range lies within 2/3 and 4/3 of the total.
    expect(s?.callsRange.lo).toBeGreaterThanOrEqual(80);
    expect(s?.callsRange.lo).toBeLessThan(120);
    expect(s?.callsRange.hi).toBeGreaterThan(120);
    expect(s?.callsRange.hi).toBeLessThanOrEqual(160);
    expect(f.total.costUsd).toBeCloseTo(0.6);
  });

  it('has no spread when every question costs the same', () => {
    const f = forecastFrom([stage({ perQuestion: [q(2, 0.01), q(2, 0.01)] })], {
      sample: { train: 4, eval: 0 },
      of: { train: 40, eval: 0 },
    });
    expect(f.stages[0]?.callsRange).toEqual({ lo: 120, hi: 120 });
  });

  it('times an endpoint by its concurrency, or by its rate limit when that is slower', () => {
    const byConcurrency = forecastFrom([stage()], {
      sample: { train: 4, eval: 0 },
      of: { train: 40, eval: 0 },
    });
    // 120 calls of 0.5 s, two at a time.
    expect(byConcurrency.stages[0]?.wallSeconds).toBeCloseTo(30);
    const limited = forecastFrom(
      [
        stage({
          roles: [{ role: 'strong', calls: 12, meanLatencyMs: 500, concurrency: 2, requestsPerMinute: 60 }],
        }),
      ],
      { sample: { train: 4, eval: 0 }, of: { train: 40, eval: 0 } },
    );
    // 120 calls at 60 a minute.
    expect(limited.stages[0]?.wallSeconds).toBeCloseTo(120);
  });

  it('times an endpoint in batch mode by its rounds of batches, not by its calls', () => {
    const batched = forecastFrom(
      [
        stage({
          roles: [
            { role: 'weak', calls: 6, meanLatencyMs: 500, concurrency: 2, requestsPerMinute: null },
            // Each call's latency is its batch's turnaround: 20 min.
            {
              role: 'strong',
              calls: 6,
              meanLatencyMs: 1_200_000,
              concurrency: 2,
              requestsPerMinute: null,
              batchRounds: 2,
            },
          ],
        }),
      ],
      { sample: { train: 4, eval: 0 }, of: { train: 40, eval: 0 } },
    );
    // Two rounds of 20 min, whatever the number of questions, after and between the weak calls' 15 s.
    expect(batched.stages[0]?.wallSeconds).toBeCloseTo(2415);
  });
});

describe('callIdsOf', () => {
  it('collects the call ids an audit line names, nested or listed', () => {
    const line = {
      questionId: 'q1',
      llmCallIds: { guideline: '11', answer: '12' },
      rounds: [{ llmCallIds: { answer: '13', verdict: null } }, { llmCallIds: ['14', '15'] }],
      rowScores: [{ callId: '16', score: 8 }],
      answer: 'not an id 17',
    };
    expect([...callIdsOf(line)].sort()).toEqual(['11', '12', '13', '14', '15', '16']);
  });
});
