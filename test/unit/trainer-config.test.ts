import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TrainerSchema } from '../../core/finetune-spec';
import {
  llamaFactoryTemplate,
  trainerConfigs,
  trlCommand,
  writeTrainerConfigs,
  type TrainerConfigInput,
  type TrlCommand,
} from '../../core/trainer-config';
import type { PreferenceLoss } from '../../workflows/types';

/**
 * Dataclass fields checked to exist in TRL 1.16 (ModelConfig, DatasetMixtureConfig and the
 * trainer's config class, as `trl <command>` parses them); the CLI stops on any other key.
 */
const TRL_MODEL_CONFIG = [
  'model_name_or_path',
  'dtype',
  'use_peft',
  'lora_r',
  'lora_alpha',
  'lora_dropout',
  'lora_target_modules',
];
const TRL_DATASETS = ['datasets'];
/** transformers TrainingArguments fields, present in SFTConfig, DPOConfig, KTOConfig, CPOConfig and ORPOConfig. */
const TRAINING_ARGUMENTS = [
  'output_dir',
  'learning_rate',
  'num_train_epochs',
  'per_device_train_batch_size',
  'gradient_accumulation_steps',
  'max_steps',
  'bf16',
  'fp16',
  'use_cpu',
  'logging_steps',
  'report_to',
  'save_strategy',
];
const TRL_TRAINER_FIELDS: Record<TrlCommand, string[]> = {
  sft: ['max_length'],
  dpo: ['max_length', 'beta', 'loss_type'],
  kto: ['max_length', 'beta', 'loss_type'],
  cpo: ['max_length', 'beta', 'loss_type', 'cpo_alpha', 'simpo_gamma'],
  orpo: ['max_length', 'beta'],
};

/** LLaMA-Factory 0.9.5 hparams fields (model_args, data_args, finetuning_args) + Seq2SeqTrainingArguments. */
const LLAMAFACTORY_FIELDS = [
  'model_name_or_path',
  'stage',
  'finetuning_type',
  'lora_rank',
  'lora_alpha',
  'lora_dropout',
  'lora_target',
  'pref_beta',
  'pref_loss',
  'dataset',
  'dataset_dir',
  'template',
  'cutoff_len',
  'do_train',
  ...TRAINING_ARGUMENTS,
];
/** Its Literal types: stage and pref_loss. */
const LLAMAFACTORY_STAGES = ['pt', 'sft', 'rm', 'ppo', 'dpo', 'kto'];
const LLAMAFACTORY_PREF_LOSSES = ['sigmoid', 'hinge', 'ipo', 'kto_pair', 'orpo', 'simpo'];
/** DPOConfig loss_type values in TRL 1.16 (the others: KTO `kto`, CPO `simpo`). */
const DPO_LOSS_TYPES = ['sigmoid', 'hinge', 'ipo', 'robust', 'apo_zero', 'sigmoid_norm'];

const LOSSES: PreferenceLoss[] = ['dpo', 'simpo', 'orpo', 'kto', 'margin-ranking'];

function input(overrides: Partial<TrainerConfigInput> = {}): TrainerConfigInput {
  return {
    kind: 'preference',
    loss: 'dpo',
    baseWeights: 'meta-llama/Llama-3.1-8B-Instruct',
    datasets: {
      openai: '/jobs/j1/dataset/train.openai.jsonl',
      trl: '/jobs/j1/dataset/train.trl.jsonl',
      llamafactory: '/jobs/j1/dataset/train.llamafactory.jsonl',
    },
    outputDir: '/jobs/j1/output',
    trainer: TrainerSchema.parse(undefined),
    ...overrides,
  };
}

describe('trl.yaml', () => {
  const cases: [string, TrainerConfigInput][] = [
    ['sft', input({ kind: 'sft', loss: null })],
    ...LOSSES.map((loss): [string, TrainerConfigInput] => [loss, input({ loss })]),
    [
      'everything set',
      input({
        trainer: TrainerSchema.parse({ maxSteps: 3, maxLength: 512, cpu: true, precision: 'fp16' }),
      }),
    ],
    ['full fine-tune', input({ trainer: TrainerSchema.parse({ lora: { enabled: false } }) })],
  ];

  it.each(cases)('%s: holds only fields of the dataclasses its trainer parses', (_name, cfg) => {
    const command = trlCommand(cfg.kind, cfg.loss);
    const allowed = new Set([
      ...TRL_MODEL_CONFIG,
      ...TRL_DATASETS,
      ...TRAINING_ARGUMENTS,
      ...TRL_TRAINER_FIELDS[command],
    ]);
    const { trl } = trainerConfigs(cfg);
    expect(Object.keys(trl).filter((key) => !allowed.has(key))).toEqual([]);
    expect(trl).not.toHaveProperty('command');
    expect(trl).not.toHaveProperty('note');
  });

  it('starts from the base weights and reads the TRL-format dataset', () => {
    const { trl } = trainerConfigs(input({ baseWeights: '/models/Qwen2.5-7B' }));
    expect(trl.model_name_or_path).toBe('/models/Qwen2.5-7B');
    expect(trl.datasets).toEqual([{ path: 'json', data_files: '/jobs/j1/dataset/train.trl.jsonl' }]);
    expect(trl.output_dir).toBe('/jobs/j1/output');
  });

  it('maps each loss to a TRL trainer and loss_type', () => {
    expect(trlCommand('sft', null)).toBe('sft');
    const mapped = Object.fromEntries(
      LOSSES.map((loss) => {
        const { trl } = trainerConfigs(input({ loss }));
        return [loss, [trlCommand('preference', loss), trl.loss_type, trl.cpo_alpha]];
      }),
    );
    expect(mapped).toEqual({
      dpo: ['dpo', 'sigmoid', undefined],
      simpo: ['cpo', 'simpo', 0],
      orpo: ['orpo', undefined, undefined],
      kto: ['kto', 'kto', undefined],
      'margin-ranking': ['dpo', 'hinge', undefined],
    });
    for (const loss of ['dpo', 'margin-ranking'] as const) {
      expect(DPO_LOSS_TYPES).toContain(trainerConfigs(input({ loss })).trl.loss_type);
    }
  });

  it('carries LoRA, precision, CPU and step limits; full fine-tuning turns PEFT off', () => {
    const trainer = TrainerSchema.parse({
      lora: { r: 8, alpha: 16, dropout: 0.1, targetModules: ['q_proj', 'v_proj'] },
      precision: 'fp32',
      cpu: true,
      maxSteps: 2,
      beta: 0.3,
    });
    const { trl } = trainerConfigs(input({ trainer }));
    expect(trl).toMatchObject({
      use_peft: true,
      lora_r: 8,
      lora_alpha: 16,
      lora_dropout: 0.1,
      lora_target_modules: ['q_proj', 'v_proj'],
      bf16: false,
      fp16: false,
      dtype: 'float32',
      use_cpu: true,
      max_steps: 2,
      beta: 0.3,
    });
    const full = trainerConfigs(input({ trainer: TrainerSchema.parse({ lora: { enabled: false } }) })).trl;
    expect(full.use_peft).toBe(false);
    expect(full).not.toHaveProperty('lora_r');
    expect(full).toMatchObject({ bf16: true, dtype: 'bfloat16' });
    expect(full).not.toHaveProperty('use_cpu');
  });
});

describe('llamafactory.yaml', () => {
  const cases: ['sft' | 'preference', PreferenceLoss | null][] = [
    ['sft', null],
    ...LOSSES.map((loss): ['preference', PreferenceLoss] => ['preference', loss]),
  ];
  it.each(cases)(
    '%s %s: holds only LLaMA-Factory 0.9.5 fields, with valid stage and pref_loss',
    (kind, loss) => {
      const { llamafactory } = trainerConfigs(
        input({ kind, loss, trainer: TrainerSchema.parse({ maxSteps: 5, maxLength: 256, cpu: true }) }),
      );
      expect(Object.keys(llamafactory).filter((key) => !LLAMAFACTORY_FIELDS.includes(key))).toEqual([]);
      expect(LLAMAFACTORY_STAGES).toContain(llamafactory.stage);
      if (kind === 'preference') expect(LLAMAFACTORY_PREF_LOSSES).toContain(llamafactory.pref_loss);
    },
  );

  it('maps losses to pref_loss and LoRA to its keys', () => {
    const pref = (loss: PreferenceLoss): unknown => trainerConfigs(input({ loss })).llamafactory.pref_loss;
    expect(LOSSES.map(pref)).toEqual(['sigmoid', 'simpo', 'orpo', 'kto_pair', 'hinge']);
    const { llamafactory } = trainerConfigs(input());
    expect(llamafactory).toMatchObject({
      model_name_or_path: 'meta-llama/Llama-3.1-8B-Instruct',
      stage: 'dpo',
      finetuning_type: 'lora',
      lora_rank: 16,
      lora_alpha: 32,
      lora_target: 'all',
      pref_beta: 0.1,
      template: 'llama3',
    });
    const listed = trainerConfigs(
      input({ trainer: TrainerSchema.parse({ lora: { targetModules: ['q_proj', 'v_proj'] } }) }),
    ).llamafactory;
    expect(listed.lora_target).toBe('q_proj,v_proj');
    const full = trainerConfigs(
      input({ trainer: TrainerSchema.parse({ lora: { enabled: false } }) }),
    ).llamafactory;
    expect(full.finetuning_type).toBe('full');
    expect(full).not.toHaveProperty('lora_rank');
  });

  it('picks the chat template from the model family, unless the spec names one', () => {
    const families: Record<string, string> = {
      'meta-llama/Meta-Llama-3-8B-Instruct': 'llama3',
      'meta-llama/Llama-3.2-1B': 'llama3',
      '/models/llama3-8b': 'llama3',
      'meta-llama/Llama-2-7b-chat-hf': 'llama2',
      'Qwen/Qwen2.5-7B-Instruct': 'qwen',
      'Qwen/Qwen3-8B': 'qwen3',
      'mistralai/Mistral-7B-Instruct-v0.3': 'mistral',
      'mistralai/Mixtral-8x7B-Instruct-v0.1': 'mistral',
      'google/gemma-7b-it': 'gemma',
      'google/gemma-2-9b-it': 'gemma2',
      'google/gemma-3-4b-it': 'gemma3',
      'microsoft/Phi-3-mini-4k-instruct': 'phi',
      'microsoft/phi-4': 'phi4',
      'deepseek-ai/deepseek-llm-7b-chat': 'deepseek',
      'deepseek-ai/DeepSeek-V3': 'deepseek3',
      '01-ai/Yi-1.5-9B-Chat': 'yi',
      '/tmp/tiny-model': 'default',
      'EleutherAI/pythia-160m': 'default',
    };
    for (const [weights, template] of Object.entries(families)) {
      expect([weights, llamaFactoryTemplate(weights)]).toEqual([weights, template]);
    }
    const named = trainerConfigs(
      input({ trainer: TrainerSchema.parse({ template: 'chatml' }) }),
    ).llamafactory;
    expect(named.template).toBe('chatml');
  });
});

describe('writeTrainerConfigs', () => {
  it('writes trl.yaml with the command in a comment, llamafactory.yaml and dataset_info.json', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meteor-trainer-config-'));
    try {
      const cfg = input({
        loss: 'simpo',
        datasets: {
          openai: path.join(dir, 'dataset/a.jsonl'),
          trl: path.join(dir, 'dataset/t.jsonl'),
          llamafactory: path.join(dir, 'dataset/l.jsonl'),
        },
      });
      await writeTrainerConfigs(path.join(dir, 'config'), cfg);
      const trlText = await readFile(path.join(dir, 'config/trl.yaml'), 'utf8');
      expect(trlText.split('\n')[1]).toMatch(/^# Run: infra\/trainer\/run .*CPOTrainer/);
      // PyYAML (YAML 1.1) reads a bare `no` as false: save_strategy must stay a string.
      expect(trlText).toContain('save_strategy: "no"');
      expect(parse(trlText)).toEqual(trainerConfigs(cfg).trl);
      const dpo = input({ loss: 'dpo', datasets: cfg.datasets });
      await writeTrainerConfigs(path.join(dir, 'config'), dpo);
      expect(await readFile(path.join(dir, 'config/trl.yaml'), 'utf8')).toMatch(
        /^# Run: trl dpo --config trl\.yaml/m,
      );
      const lf = parse(await readFile(path.join(dir, 'config/llamafactory.yaml'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(lf.dataset_dir).toBe(path.join(dir, 'dataset'));
      const info = JSON.parse(await readFile(path.join(dir, 'dataset/dataset_info.json'), 'utf8')) as {
        meteor: { file_name: string; ranking?: boolean };
      };
      expect(info.meteor).toMatchObject({ file_name: 'l.jsonl', ranking: true });
      // Paths as a job sees them on a shared mount; dataset_info.json goes where this worker sees it.
      await writeTrainerConfigs(path.join(dir, 'config2'), {
        ...input({ kind: 'sft', loss: null }),
        datasetInfoDir: path.join(dir, 'worker-dataset'),
      });
      const sftInfo = JSON.parse(
        await readFile(path.join(dir, 'worker-dataset/dataset_info.json'), 'utf8'),
      ) as {
        meteor: { file_name: string; ranking?: boolean };
      };
      expect(sftInfo.meteor.file_name).toBe('train.llamafactory.jsonl');
      expect(sftInfo.meteor.ranking).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
