/** A spec whose evaluation could only compare a model with itself is refused at launch. */
import { describe, expect, it } from 'vitest';
import { CampaignSpecSchema } from '../../core/spec';

const base = {
  name: 'x',
  domain: 'Kubernetes operations',
  questions: { train: 't.jsonl', eval: 'e.jsonl' },
  models: {
    weak: { baseURL: 'http://localhost:8000/v1', model: 'w' },
    strong: { baseURL: 'http://localhost:8000/v1', model: 's' },
    judge: { baseURL: 'http://localhost:8000/v1', model: 'j' },
  },
  fineTune: { type: 'local', command: 'infra/trainer/run' },
};

describe('deploy: none with the evaluation on', () => {
  it('is refused, naming deploy.type and what to do', () => {
    const r = CampaignSpecSchema.safeParse({ ...base, deploy: { type: 'none' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      [
        'deploy.type',
        "'none' serves every model version under models.weak.model, so the evaluation would compare M0 with itself: use vllm-lora, or 'manual' (register each version's served name with `meteorctl model register`), or set stages.evaluate.enabled: false",
      ],
    ]);
  });

  it('is fine without the evaluation, and vllm-lora and manual are fine with it', () => {
    expect(
      CampaignSpecSchema.safeParse({
        ...base,
        deploy: { type: 'none' },
        stages: { evaluate: { enabled: false } },
      }).success,
    ).toBe(true);
    expect(CampaignSpecSchema.safeParse({ ...base, deploy: { type: 'vllm-lora' } }).success).toBe(true);
    expect(CampaignSpecSchema.safeParse({ ...base, deploy: { type: 'manual' } }).success).toBe(true);
  });
});
