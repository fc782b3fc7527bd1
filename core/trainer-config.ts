/**
 * Trainer configurations written next to each fine-tune's dataset, so the `local` command (or a
 * person) can run `trl sft|dpo --config trl.yaml` or `llamafactory-cli train llamafactory.yaml`
 * as is. The preference loss chosen in the spec is carried into both (REFERENCE.md §3).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { PreferenceLoss } from '../workflows/types';

export interface TrainerConfigInput {
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
  baseModel: string;
  /** Dataset files by format (absolute paths). */
  datasets: { openai: string; trl: string; llamafactory: string };
  outputDir: string;
}

/** TRL: the CLI command and its `loss_type`. Margin ranking has no TRL loss; hinge is the closest. */
const TRL_LOSS: Record<PreferenceLoss, { command: 'dpo' | 'orpo' | 'kto'; lossType?: string }> = {
  dpo: { command: 'dpo', lossType: 'sigmoid' },
  simpo: { command: 'dpo', lossType: 'sigmoid_norm' },
  orpo: { command: 'orpo' },
  kto: { command: 'kto' },
  'margin-ranking': { command: 'dpo', lossType: 'hinge' },
};

const LLAMAFACTORY_LOSS: Record<PreferenceLoss, string> = {
  dpo: 'sigmoid',
  simpo: 'simpo',
  orpo: 'orpo',
  kto: 'kto_pair',
  'margin-ranking': 'hinge',
};

/** Hyper-parameters of the official METEOR code (full fine-tune, lr 3e-5, 3 epochs, batch 32). */
const COMMON = {
  learning_rate: 3e-5,
  num_train_epochs: 3,
  per_device_train_batch_size: 4,
  gradient_accumulation_steps: 8,
};

export function trainerConfigs(input: TrainerConfigInput): {
  trl: Record<string, unknown>;
  llamafactory: Record<string, unknown>;
} {
  const preference = input.kind === 'preference';
  const loss = input.loss ?? 'dpo';
  const trlLoss = TRL_LOSS[loss];
  const trl = {
    command: preference ? `trl ${trlLoss.command} --config trl.yaml` : 'trl sft --config trl.yaml',
    model_name_or_path: input.baseModel,
    datasets: [{ path: 'json', data_files: input.datasets.trl }],
    output_dir: path.join(input.outputDir, 'trl'),
    ...COMMON,
    ...(preference && trlLoss.lossType ? { loss_type: trlLoss.lossType } : {}),
    ...(loss === 'margin-ranking' && preference
      ? { note: "METEOR's reference-free margin ranking needs a custom trainer; hinge is TRL's closest loss" }
      : {}),
  };
  const llamafactory = {
    model_name_or_path: input.baseModel,
    stage: preference ? (loss === 'kto' ? 'kto' : 'dpo') : 'sft',
    do_train: true,
    finetuning_type: 'lora',
    dataset: 'meteor',
    dataset_dir: path.dirname(input.datasets.llamafactory),
    template: 'default',
    output_dir: path.join(input.outputDir, 'llamafactory'),
    ...COMMON,
    ...(preference ? { pref_loss: LLAMAFACTORY_LOSS[loss] } : {}),
  };
  return { trl, llamafactory };
}

/** Writes trl.yaml, llamafactory.yaml and the dataset_info.json LLaMA-Factory reads; returns the folder. */
export async function writeTrainerConfigs(dir: string, input: TrainerConfigInput): Promise<string> {
  await mkdir(dir, { recursive: true });
  const { trl, llamafactory } = trainerConfigs(input);
  await writeFile(path.join(dir, 'trl.yaml'), stringify(trl));
  await writeFile(path.join(dir, 'llamafactory.yaml'), stringify(llamafactory));
  const preference = input.kind === 'preference';
  const datasetInfo = {
    meteor: {
      file_name: path.basename(input.datasets.llamafactory),
      formatting: 'alpaca',
      ...(preference
        ? {
            ranking: true,
            columns: {
              prompt: 'instruction',
              query: 'input',
              chosen: 'chosen',
              rejected: 'rejected',
              system: 'system',
            },
          }
        : { columns: { prompt: 'instruction', query: 'input', response: 'output', system: 'system' } }),
    },
  };
  await writeFile(
    path.join(path.dirname(input.datasets.llamafactory), 'dataset_info.json'),
    `${JSON.stringify(datasetInfo, null, 2)}\n`,
  );
  return dir;
}
