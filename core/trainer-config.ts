/**
 * Trainer configurations written next to each fine-tune's dataset: `trl.yaml`, which
 * `infra/trainer/run` reads (and `trl sft|dpo|kto --config trl.yaml` accepts as written), and
 * `llamafactory.yaml` for `llamafactory-cli train` (REFERENCE.md §3, §8).
 *
 * Both files hold dataclass fields only: TRL's parser turns an unknown key into a command-line flag
 * and stops, LLaMA-Factory's HfArgumentParser refuses it. The command to run goes into a YAML
 * comment at the top.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { PreferenceLoss } from '../workflows/types';
import type { TrainerSpec } from './finetune-spec';

export interface TrainerConfigInput {
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
  /** Weights to start from: a Hugging Face id or a folder — never a served model or adapter name. */
  baseWeights: string;
  /** Dataset files by format, as the job sees them. */
  datasets: { openai: string; trl: string; llamafactory: string };
  /**
   * Where this process writes dataset_info.json: the dataset folder as the worker sees it, when
   * the job sees it elsewhere (a shared mount). Default: the folder of `datasets.llamafactory`.
   */
  datasetInfoDir?: string;
  /** Where the trainer leaves the adapter (or checkpoint), as the job sees it. */
  outputDir: string;
  trainer: TrainerSpec;
}

/**
 * The TRL trainer (and CLI command) of a fine-tune. `cpo` and `orpo` live in `trl.experimental`
 * and have no CLI command in TRL 1.16: only `infra/trainer/run` runs them.
 */
export type TrlCommand = 'sft' | 'dpo' | 'kto' | 'cpo' | 'orpo';

/** Commands the `trl` CLI has (the others run through infra/trainer/run only). */
export const TRL_CLI_COMMANDS: readonly TrlCommand[] = ['sft', 'dpo', 'kto'];

/**
 * Preference loss → TRL trainer and `loss_type`.
 * - SimPO is CPO with `loss_type: simpo` and `cpo_alpha: 0` (reference-free, length-normalised, with
 *   a target margin); DPO's `sigmoid_norm` keeps the reference model, so it is not SimPO.
 * - margin-ranking (METEOR's official code) has no TRL loss of its own: DPO `hinge`, a margin
 *   ranking loss max(0, 1 - β·Δ) on DPO's implicit reward, is the closest one the CLI runs.
 */
const TRL_LOSS: Record<PreferenceLoss, { command: TrlCommand; lossType?: string }> = {
  dpo: { command: 'dpo', lossType: 'sigmoid' },
  simpo: { command: 'cpo', lossType: 'simpo' },
  orpo: { command: 'orpo' },
  kto: { command: 'kto', lossType: 'kto' },
  'margin-ranking': { command: 'dpo', lossType: 'hinge' },
};

export function trlCommand(kind: 'sft' | 'preference', loss: PreferenceLoss | null): TrlCommand {
  if (kind === 'sft') return 'sft';
  return TRL_LOSS[loss ?? 'dpo'].command;
}

/**
 * LLaMA-Factory 0.9.5 `pref_loss` (stage dpo). Its `kto` stage needs an unpaired dataset with a
 * `kto_tag` column; the exported file is pairwise, so KTO runs as the paired `kto_pair` loss.
 */
const LLAMAFACTORY_LOSS: Record<PreferenceLoss, string> = {
  dpo: 'sigmoid',
  simpo: 'simpo',
  orpo: 'orpo',
  kto: 'kto_pair',
  'margin-ranking': 'hinge',
};

/** LLaMA-Factory chat templates by model family, most specific first (its data/template.py names). */
const TEMPLATES: readonly (readonly [RegExp, string])[] = [
  [/llama-?4/i, 'llama4'],
  [/llama-?3/i, 'llama3'],
  [/llama-?2/i, 'llama2'],
  [/qwen-?3/i, 'qwen3'],
  [/qwen/i, 'qwen'],
  [/mi[sx]tral/i, 'mistral'],
  [/gemma-?3/i, 'gemma3'],
  [/gemma-?2/i, 'gemma2'],
  [/gemma/i, 'gemma'],
  [/phi-?4/i, 'phi4'],
  [/phi/i, 'phi'],
  [/deepseek-?(v3|r1)/i, 'deepseek3'],
  [/deepseek/i, 'deepseek'],
  [/(^|[/_-])yi([_-]|$)/i, 'yi'],
  [/glm-?4/i, 'glm4'],
];

/** LLaMA-Factory template for weights, from the last path segment (the repo or folder name). */
export function llamaFactoryTemplate(baseWeights: string): string {
  const name = baseWeights.replace(/\/+$/, '').split('/').pop() ?? baseWeights;
  for (const [pattern, template] of TEMPLATES) {
    if (pattern.test(name)) return template;
  }
  return 'default';
}

function precision(trainer: TrainerSpec): { bf16: boolean; fp16: boolean } {
  return { bf16: trainer.precision === 'bf16', fp16: trainer.precision === 'fp16' };
}

/** Hugging Face TrainingArguments fields shared by both trainers. */
function trainingArguments(input: TrainerConfigInput): Record<string, unknown> {
  const t = input.trainer;
  return {
    output_dir: input.outputDir,
    learning_rate: t.learningRate,
    num_train_epochs: t.epochs,
    per_device_train_batch_size: t.batchSize,
    gradient_accumulation_steps: t.gradientAccumulation,
    ...(t.maxSteps !== undefined ? { max_steps: t.maxSteps } : {}),
    ...precision(t),
    ...(t.cpu ? { use_cpu: true } : {}),
    // One metrics line per optimiser step (the trainer's METEOR_METRICS lines come from these logs).
    logging_steps: 1,
    report_to: 'none',
    // The trainer does not resume, and output/ must hold the adapter alone (vLLM loads it as is).
    save_strategy: 'no',
  };
}

export function trlConfig(input: TrainerConfigInput): Record<string, unknown> {
  const t = input.trainer;
  const preference = input.kind === 'preference';
  const loss = input.loss ?? 'dpo';
  const command = trlCommand(input.kind, input.loss);
  const lossType = preference ? TRL_LOSS[loss].lossType : undefined;
  return {
    // ModelConfig
    model_name_or_path: input.baseWeights,
    // bf16 weights for bf16 training; fp16 trains with fp32 master weights (AMP), like fp32.
    dtype: t.precision === 'bf16' ? 'bfloat16' : 'float32',
    use_peft: t.lora.enabled,
    ...(t.lora.enabled
      ? {
          lora_r: t.lora.r,
          lora_alpha: t.lora.alpha,
          lora_dropout: t.lora.dropout,
          lora_target_modules: t.lora.targetModules,
        }
      : {}),
    // DatasetMixtureConfig
    datasets: [{ path: 'json', data_files: input.datasets.trl }],
    // SFTConfig / DPOConfig / KTOConfig / CPOConfig / ORPOConfig
    ...trainingArguments(input),
    ...(t.maxLength !== undefined ? { max_length: t.maxLength } : {}),
    ...(preference ? { beta: t.beta } : {}),
    ...(lossType !== undefined ? { loss_type: lossType } : {}),
    // SimPO: CPO without its behaviour-cloning term (TRL's CPOConfig docs).
    ...(command === 'cpo' ? { cpo_alpha: 0 } : {}),
  };
}

export function llamaFactoryConfig(input: TrainerConfigInput): Record<string, unknown> {
  const t = input.trainer;
  const preference = input.kind === 'preference';
  const loss = input.loss ?? 'dpo';
  return {
    model_name_or_path: input.baseWeights,
    stage: preference ? 'dpo' : 'sft',
    do_train: true,
    finetuning_type: t.lora.enabled ? 'lora' : 'full',
    ...(t.lora.enabled
      ? {
          lora_rank: t.lora.r,
          lora_alpha: t.lora.alpha,
          lora_dropout: t.lora.dropout,
          lora_target: t.lora.targetModules === 'all-linear' ? 'all' : t.lora.targetModules.join(','),
        }
      : {}),
    dataset: 'meteor',
    dataset_dir: path.dirname(input.datasets.llamafactory),
    template: t.template ?? llamaFactoryTemplate(input.baseWeights),
    ...(t.maxLength !== undefined ? { cutoff_len: t.maxLength } : {}),
    ...trainingArguments(input),
    ...(preference ? { pref_beta: t.beta, pref_loss: LLAMAFACTORY_LOSS[loss] } : {}),
  };
}

export function trainerConfigs(input: TrainerConfigInput): {
  trl: Record<string, unknown>;
  llamafactory: Record<string, unknown>;
} {
  return { trl: trlConfig(input), llamafactory: llamaFactoryConfig(input) };
}

function trlHeader(input: TrainerConfigInput): string {
  const command = trlCommand(input.kind, input.loss);
  const lines = [
    `# METEOR trainer config (${input.kind}${input.kind === 'preference' ? `, ${input.loss ?? 'dpo'}` : ''}).`,
  ];
  if (TRL_CLI_COMMANDS.includes(command)) {
    lines.push(
      `# Run: trl ${command} --config trl.yaml   (or infra/trainer/run with the METEOR_* environment)`,
    );
  } else {
    lines.push(
      `# Run: infra/trainer/run with the METEOR_* environment (trl.experimental ${command.toUpperCase()}Trainer;`,
      `# TRL has no \`trl ${command}\` command). The fields are ${command.toUpperCase()}Config's.`,
    );
  }
  if (input.kind === 'preference' && input.loss === 'margin-ranking') {
    lines.push("# margin-ranking: TRL's DPO hinge loss, the closest to METEOR's margin ranking.");
  }
  return `${lines.join('\n')}\n`;
}

function llamaFactoryHeader(input: TrainerConfigInput): string {
  const lines = ['# Run: llamafactory-cli train llamafactory.yaml   (LLaMA-Factory 0.9.5)'];
  if (input.kind === 'preference' && input.loss === 'kto') {
    lines.push('# KTO runs as the paired kto_pair loss: the exported dataset holds pairs, not kto_tag rows.');
  }
  return `${lines.join('\n')}\n`;
}

/** Both trainers read YAML with PyYAML (YAML 1.1), where a bare `no` is false: quote such strings. */
const YAML_OPTIONS = { version: '1.1' } as const;

/**
 * Writes trl.yaml and llamafactory.yaml into `dir`, and the dataset_info.json LLaMA-Factory reads
 * into the dataset folder (`datasetInfoDir`); returns `dir`.
 */
export async function writeTrainerConfigs(dir: string, input: TrainerConfigInput): Promise<string> {
  await mkdir(dir, { recursive: true });
  const { trl, llamafactory } = trainerConfigs(input);
  await writeFile(path.join(dir, 'trl.yaml'), trlHeader(input) + stringify(trl, YAML_OPTIONS));
  await writeFile(
    path.join(dir, 'llamafactory.yaml'),
    llamaFactoryHeader(input) + stringify(llamafactory, YAML_OPTIONS),
  );
  const infoDir = input.datasetInfoDir ?? path.dirname(input.datasets.llamafactory);
  await mkdir(infoDir, { recursive: true });
  await writeFile(
    path.join(infoDir, 'dataset_info.json'),
    `${JSON.stringify(llamaFactoryDatasetInfo(input), null, 2)}\n`,
  );
  return dir;
}

/** LLaMA-Factory's dataset registry entry for the exported alpaca-format file (core/dataset-formats.ts). */
export function llamaFactoryDatasetInfo(input: TrainerConfigInput): Record<string, unknown> {
  const preference = input.kind === 'preference';
  return {
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
}
