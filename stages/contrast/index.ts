/**
 * Stage 3, self-improvement (DESIGN §1): a high-compute decode (beam search or best-of-N) is
 * preferred over the greedy one; preference fine-tune on the kept pairs.
 */
import { defineStage, type StageRequest } from '../stage';
import { contrastActivities } from './batch';
import { ContrastStageSchema } from './options';
import { contrastAudit, contrastMetrics, contrastPreferenceExamples, contrastRecordCount } from './records';
import { PAIRWISE_SELF_CRITIQUE_SCHEMA, SELF_CRITIQUE_SCHEMA } from './prompts';

export const contrastStage = defineStage({
  name: 'contrast',
  questions: 'train',
  options: ContrastStageSchema,
  activities: contrastActivities,
  records: { count: contrastRecordCount, metrics: contrastMetrics, audit: contrastAudit },
  dataset: {
    kind: 'preference',
    examples: ({ db, campaignId, domain, iteration, questionIds }) =>
      contrastPreferenceExamples(db, campaignId, domain, iteration, questionIds),
    loss: (options) => options.loss,
  },
  requests: (options) => {
    const greedy = { role: 'weak' as const, purpose: 'greedy', temperature: 0, n: 1 };
    const pairwise = options.requireSelfCritique
      ? [
          {
            role: 'weak' as const,
            purpose: 'pairwise-self-critique',
            jsonSchema: PAIRWISE_SELF_CRITIQUE_SCHEMA,
            temperature: 0,
            option: 'requireSelfCritique',
          },
        ]
      : [];
    const byMethod: Record<typeof options.method, StageRequest[]> = {
      beam: [
        {
          role: 'weak',
          purpose: 'beam-search',
          n: options.beamWidth,
          temperature: 0,
          extraBody: { use_beam_search: true, length_penalty: options.lengthPenalty },
          option: 'method',
        },
      ],
      'best-of-n': [
        {
          role: 'weak',
          purpose: 'best-of-n',
          n: options.samples,
          temperature: options.sampleTemperature,
          option: 'samples',
        },
        { role: 'weak', purpose: 'self-critique', jsonSchema: SELF_CRITIQUE_SCHEMA, temperature: 0 },
      ],
      rstar: [
        {
          role: 'weak',
          purpose: 'rstar-A1',
          n: options.rstar.samples,
          temperature: options.rstar.temperature,
          option: 'rstar',
        },
        { role: 'discriminator', purpose: 'rstar-discriminate', temperature: 0 },
      ],
    };
    return [greedy, ...byMethod[options.method], ...pairwise];
  },
});
