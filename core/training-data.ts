/**
 * A training stage's dataset, as lines of a trainer's format: SFT rows or preference pairs, as the
 * stage's definition says (e.g. SFT for distill and assess, pairs for contrast). The export activity and `meteorctl dataset export` both read
 * through here, so the file a fine-tune got and the file a user exports are the same.
 */
import { getCampaign } from './campaigns';
import type { Db } from './db/connection';
import { replayPicks, type ReplayPick } from './replay';
import { PREFERENCE_FORMATS, preferenceLine, SFT_FORMATS, sftLine } from './dataset-formats';
import type { CampaignSpec } from './spec';
import { rowScores } from './records/row-scores';
import type { RowFilterSpec } from '../stages/options';
import type { BaseStageOptions } from '../stages/stage';
import { stageDefinition, type TrainingStage } from '../stages/registry';

export const TRAINING_FORMATS = SFT_FORMATS;
export type TrainingFormat = (typeof SFT_FORMATS)[number];

// Both kinds name their formats alike; keep it so, since the CLI offers one list.
const _sameFormats: readonly TrainingFormat[] = PREFERENCE_FORMATS;
void _sameFormats;

export function datasetKind(stage: TrainingStage): 'sft' | 'preference' {
  const { dataset } = stageDefinition(stage);
  if (!dataset) throw new Error(`stage ${stage} trains nothing`);
  return dataset.kind;
}

/**
 * The dataset's lines: its own rows, then (in an evolution line with replay) the rows replayed
 * from earlier iterations (core/replay.ts); `onReplay` hears which those were.
 */
export async function* trainingLines(
  db: Db,
  spec: CampaignSpec,
  campaignId: string,
  stage: TrainingStage,
  iteration: number,
  format: TrainingFormat,
  onReplay?: (picks: ReplayPick[]) => void,
): AsyncGenerator<Record<string, unknown>> {
  let own = 0;
  for await (const line of ownLines(db, spec, campaignId, stage, iteration, format)) {
    own++;
    yield line;
  }
  const picks = await replayPicks(db, campaignId, stage, iteration, own);
  onReplay?.(picks);
  // Stream each source dataset once, keeping the picked rows.
  const bySource = new Map<string, Set<number>>();
  for (const p of picks) {
    const key = `${p.sourceCampaignId}\u0000${p.sourceIteration}`;
    let rows = bySource.get(key);
    if (!rows) bySource.set(key, (rows = new Set()));
    rows.add(p.row);
  }
  for (const [key, rows] of bySource) {
    const [sourceCampaignId, sourceIteration] = key.split('\u0000') as [string, string];
    const source = await getCampaign(db, sourceCampaignId);
    let row = 0;
    for await (const line of ownLines(
      db,
      source.spec,
      sourceCampaignId,
      stage,
      Number(sourceIteration),
      format,
    )) {
      if (rows.has(row++)) yield line;
    }
  }
}

async function* ownLines(
  db: Db,
  spec: CampaignSpec,
  campaignId: string,
  stage: TrainingStage,
  iteration: number,
  format: TrainingFormat,
): AsyncGenerator<Record<string, unknown>> {
  const { dataset } = stageDefinition(stage);
  if (!dataset) return;
  const options: BaseStageOptions = spec.stages[stage];
  const input = { db, campaignId, domain: spec.domain, iteration, options: spec.stages[stage] };
  const passes = await rowFilterOf(db, campaignId, stage, iteration, options.filter);
  if (dataset.kind === 'sft') {
    for await (const ex of dataset.examples(input)) if (passes(ex)) yield sftLine(format, ex);
  } else {
    for await (const ex of dataset.examples(input)) if (passes(ex)) yield preferenceLine(format, ex);
  }
}

/**
 * Whether each example, in the order the stage yields them, passes the row filter: scored at
 * least `minScore`. Without a filter every row passes; with one, a row never scored does not.
 */
async function rowFilterOf(
  db: Db,
  campaignId: string,
  stage: TrainingStage,
  iteration: number,
  filter: RowFilterSpec | undefined,
): Promise<(ex: { questionId: string }) => boolean> {
  if (!filter) return () => true;
  const scores = await rowScores(db, campaignId, stage, iteration);
  const rows = new Map<string, number>();
  return ({ questionId }) => {
    const row = rows.get(questionId) ?? 0;
    rows.set(questionId, row + 1);
    const score = scores.get(questionId)?.get(row);
    return score !== undefined && score !== null && score >= filter.minScore;
  };
}
