/**
 * The spec's `stages` come from the stage registry: every registered stage has its options with
 * defaults, in the registry's order, and cross-field rules name the field to fix.
 */
import { describe, expect, it } from 'vitest';
import { CampaignSpecSchema } from '../../core/spec';
import { stageNames, trainingStageNames } from '../../stages/registry';

const base = {
  name: 'x',
  domain: 'Kubernetes operations',
  questions: { train: 't.jsonl' },
  models: {
    weak: { baseURL: 'http://localhost:8000/v1', model: 'w' },
    strong: { baseURL: 'http://localhost:8000/v1', model: 's' },
  },
  fineTune: { type: 'local', command: 'infra/trainer/run' },
  stages: { evaluate: { enabled: false } },
};

describe('stages in the spec', () => {
  it('has every registered stage, METEOR first and the opt-in ones off by default', () => {
    const spec = CampaignSpecSchema.parse(base);
    expect(Object.keys(spec.stages)).toEqual(stageNames());
    expect(stageNames()).toEqual(['evolve', 'distill', 'assess', 'contrast', 'mcts', 'evaluate']);
    expect(trainingStageNames()).toEqual(['distill', 'assess', 'contrast', 'mcts']);
    const enabled = Object.entries(spec.stages).flatMap(([name, s]) => (s.enabled ? [name] : []));
    expect(enabled).toEqual(['distill', 'assess', 'contrast']);
  });

  it('refuses a row filter scored by a judge the spec does not name, for any training stage', () => {
    for (const name of trainingStageNames()) {
      const r = CampaignSpecSchema.safeParse({
        ...base,
        stages: { evaluate: { enabled: false }, [name]: { enabled: true, filter: { minScore: 7 } } },
      });
      expect(r.success, name).toBe(false);
      expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual([`stages.${name}.filter.by`]);
    }
    const self = CampaignSpecSchema.safeParse({
      ...base,
      stages: { evaluate: { enabled: false }, distill: { filter: { by: 'self', minScore: 7 } } },
    });
    expect(self.success).toBe(true);
  });

  it('names an unknown stage as an unknown key of stages', () => {
    const r = CampaignSpecSchema.safeParse({ ...base, stages: { evaluate: { enabled: false }, distil: {} } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.code])).toEqual([['stages', 'unrecognized_keys']]);
  });
});
