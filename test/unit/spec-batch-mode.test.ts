/**
 * `models.<role>.mode` and `batch` (issue 12): online unless stated, with the batch options'
 * defaults; batch mode only where answers may wait (strong, judge), refused with the field
 * elsewhere; out-of-range options named.
 */
import { describe, expect, it } from 'vitest';
import { CampaignSpecSchema } from '../../core/spec';

const endpoint = (extra: Record<string, unknown> = {}) => ({
  baseURL: 'http://localhost:8000/v1',
  model: 'm',
  ...extra,
});

function spec(models: Record<string, unknown>) {
  return {
    name: 'x',
    domain: 'Kubernetes operations',
    questions: { train: 't.jsonl' },
    models: { weak: endpoint(), strong: endpoint(), ...models },
    fineTune: { type: 'local', command: 'infra/trainer/run' },
    stages: { evaluate: { enabled: false } },
  };
}

function issues(input: unknown): Array<{ path: string; message: string }> {
  const r = CampaignSpecSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('batch mode in the spec', () => {
  it('is online by default, with the batch options at their defaults', () => {
    const parsed = CampaignSpecSchema.parse(spec({}));
    expect(parsed.models.strong.mode).toBe('online');
    expect(parsed.models.strong.batch).toEqual({
      pollInterval: '1m',
      maxRequests: 50_000,
      onFailure: 'online',
      maxAttempts: 2,
    });
  });

  it('takes mode: batch for the strong model and the judge, with partial batch options', () => {
    const parsed = CampaignSpecSchema.parse(
      spec({
        strong: endpoint({ mode: 'batch', batch: { onFailure: 'batch' } }),
        judge: endpoint({ mode: 'batch' }),
      }),
    );
    expect(parsed.models.strong).toMatchObject({
      mode: 'batch',
      batch: { onFailure: 'batch', maxAttempts: 2 },
    });
    expect(parsed.models.judge?.mode).toBe('batch');
  });

  it('refuses batch mode for the weak model and the discriminator, naming the field', () => {
    expect(issues(spec({ weak: endpoint({ mode: 'batch' }) }))).toEqual([
      expect.objectContaining({ path: 'models.weak.mode', message: expect.stringContaining('use online') }),
    ]);
    expect(issues(spec({ discriminator: endpoint({ mode: 'batch' }) })).map((i) => i.path)).toEqual([
      'models.discriminator.mode',
    ]);
  });

  it('names a batch option out of range', () => {
    expect(issues(spec({ strong: endpoint({ batch: { maxRequests: 60_000 } }) })).map((i) => i.path)).toEqual(
      ['models.strong.batch.maxRequests'],
    );
    expect(
      issues(spec({ strong: endpoint({ batch: { pollInterval: 'soon' } }) })).map((i) => i.path),
    ).toEqual(['models.strong.batch.pollInterval']);
    expect(issues(spec({ strong: endpoint({ mode: 'offline' }) })).map((i) => i.path)).toEqual([
      'models.strong.mode',
    ]);
  });
});
