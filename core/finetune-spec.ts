/**
 * The `fineTune` section of the campaign spec: where training jobs run (a process on a worker's
 * host, Slurm, Kubernetes) and how the trainer is configured. Part of the campaign spec
 * (core/spec.ts); the JSON Schema for editors is generated from here too.
 */
import { z } from 'zod';
import { httpUrl } from './http-url';
import { DURATION_PATTERN } from './duration';
import { isSecretName, looksLikeSecret } from './secrets';

const positiveInt = z.number().int().positive();
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "500ms", "30s", "5m", "2h" or "1d"');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as HF_TOKEN');
const absolutePath = z.string().regex(/^\//, 'an absolute path such as /shared/meteor');

/** Trainer hyper-parameters, written into trl.yaml and llamafactory.yaml for every fine-tune. */
export const TrainerSchema = z
  .strictObject({
    lora: z
      .strictObject({
        enabled: z.boolean().default(true).describe('LoRA adapters (default); false = full fine-tuning'),
        r: positiveInt.max(1024).default(16).describe('LoRA rank'),
        alpha: positiveInt.max(4096).default(32).describe('LoRA alpha'),
        dropout: z.number().min(0).max(1).default(0.05),
        targetModules: z
          .union([z.literal('all-linear'), z.array(z.string().min(1)).min(1)])
          .default('all-linear')
          .describe('Modules LoRA adapts: "all-linear" or names such as [q_proj, v_proj]'),
      })
      .default({ enabled: true, r: 16, alpha: 32, dropout: 0.05, targetModules: 'all-linear' }),
    learningRate: z.number().positive().max(1).default(3e-5),
    epochs: z.number().positive().max(100).default(3),
    batchSize: positiveInt.max(1024).default(4).describe('Per-device train batch size'),
    gradientAccumulation: positiveInt.max(1024).default(8),
    maxSteps: positiveInt.optional().describe('Stop after this many optimiser steps (overrides epochs)'),
    maxLength: positiveInt.optional().describe('Truncate training sequences to this many tokens'),
    beta: z
      .number()
      .positive()
      .max(100)
      .default(0.1)
      .describe('Preference losses: beta (DPO, IPO, SimPO, KTO)'),
    precision: z
      .enum(['bf16', 'fp16', 'fp32'])
      .default('bf16')
      .describe('Training precision (fp32 for CPU runs)'),
    cpu: z.boolean().default(false).describe('Train on the CPU (smoke tests)'),
    template: z
      .string()
      .min(1)
      .optional()
      .describe(
        "LLaMA-Factory chat template; default from the weights' model family (llama3, qwen, mistral, gemma, …)",
      ),
  })
  .default({
    lora: { enabled: true, r: 16, alpha: 32, dropout: 0.05, targetModules: 'all-linear' },
    learningRate: 3e-5,
    epochs: 3,
    batchSize: 4,
    gradientAccumulation: 8,
    beta: 0.1,
    precision: 'bf16',
    cpu: false,
  })
  .describe('Trainer hyper-parameters (written into trl.yaml and llamafactory.yaml)');
export type TrainerSpec = z.infer<typeof TrainerSchema>;

/**
 * `env` values are stored with the spec (Postgres, every workflow history) and written into job
 * manifests: a secret there is a leak, so one that looks like a secret (by its shape, or by a name
 * such as HF_TOKEN) is refused with the way to pass it instead.
 */
const trainerEnv = z.record(envName, z.string()).superRefine((env, ctx) => {
  for (const [name, value] of Object.entries(env)) {
    if (value === '' || !(isSecretName(name) || looksLikeSecret(value))) continue;
    ctx.addIssue({
      code: 'custom',
      path: [name],
      message:
        `looks like a secret; env values are stored with the campaign, so set ${name} in the ` +
        `worker's environment and list it in passEnv instead`,
    });
  }
});

/** Fields every backend has. */
const common = {
  env: trainerEnv
    .default({})
    .describe('Extra environment for the trainer (not secrets: name those in passEnv)'),
  passEnv: z
    .array(envName)
    .default([])
    .describe("Environment variables passed through from the worker's environment (values never stored)"),
  queue: z
    .string()
    .min(1)
    .default('meteor-gpu')
    .describe('Task queue of the fine-tune activities (`meteorctl worker --queues`)'),
  trainer: TrainerSchema,
};

const LocalBackendSchema = z
  .strictObject({
    type: z.literal('local'),
    command: z
      .string()
      .min(1)
      .describe(
        'Shell command that trains, e.g. infra/trainer/run. It gets the METEOR_* environment ' +
          '(METEOR_TRAINER_CONFIG_DIR, METEOR_DATASET_PATH, METEOR_OUTPUT_DIR, METEOR_BASE_WEIGHTS, ' +
          'METEOR_PARENT_ADAPTER, …) and must leave the adapter (or checkpoint) in METEOR_OUTPUT_DIR',
      ),
    cwd: z.string().optional().describe('Working directory of the command, relative to the spec file'),
    ...common,
    pollInterval: duration.default('2s').describe('How often the workflow checks the job'),
    timeout: duration.default('24h').describe('Give up (and cancel the job) after this long'),
  })
  .describe("Run a command on a worker's host, detached, once per (campaign, stage, iteration)");

const sharedStorage = {
  sharedDir: absolutePath.describe(
    'A folder this worker and the cluster both mount: datasets are copied here before submit and ' +
      'adapters are written here (the checkpoint URI in the lineage)',
  ),
  jobSharedDir: absolutePath
    .optional()
    .describe('The same folder as the jobs see it, when mounted elsewhere there (default: sharedDir)'),
};

export const SLURM_REST_VERSIONS = [
  'v0.0.38',
  'v0.0.39',
  'v0.0.40',
  'v0.0.41',
  'v0.0.42',
  'v0.0.43',
  'v0.0.44',
] as const;

const SlurmBackendSchema = z
  .strictObject({
    type: z.literal('slurm'),
    transport: z
      .enum(['cli', 'rest'])
      .default('cli')
      .describe('cli: sbatch/squeue/sacct/scancel (locally, or over ssh); rest: slurmrestd'),
    command: z
      .string()
      .min(1)
      .describe('What the job runs on the compute node, e.g. /opt/meteor/infra/trainer/run'),
    ...sharedStorage,
    partition: z.string().min(1).optional(),
    account: z.string().min(1).optional(),
    qos: z.string().min(1).optional(),
    nodes: positiveInt.max(1024).default(1),
    gpusPerNode: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(1)
      .describe('GPUs per node (--gres=gpu:N); 0 for none'),
    cpusPerTask: positiveInt.max(1024).optional(),
    memory: z
      .string()
      .regex(/^\d+[KMGT]?$/, 'a Slurm memory size such as 64G')
      .optional()
      .describe('Memory per node, e.g. 64G'),
    timeLimit: z
      .string()
      .regex(/^(\d+-)?\d+(:\d{2}){0,2}$/, 'a Slurm time such as 04:00:00 or 2-00:00:00')
      .default('24:00:00')
      .describe('Wall-clock limit of the job (--time)'),
    sbatchArgs: z
      .array(z.string().min(1))
      .default([])
      .describe('Extra #SBATCH lines, e.g. ["--constraint=a100", "--exclusive"]'),
    setup: z
      .array(z.string())
      .default([])
      .describe('Shell lines run before the command: `module load cuda/12.4`, `source venv/bin/activate`, …'),
    container: z
      .string()
      .min(1)
      .optional()
      .describe('Run the command in this container image (srun --container-image, pyxis)'),
    ssh: z
      .strictObject({
        host: z.string().min(1).describe('user@login-node, or a Host from ~/.ssh/config'),
        options: z.array(z.string()).default([]).describe('Extra ssh options, e.g. ["-p", "2222"]'),
      })
      .optional()
      .describe('cli transport: run the Slurm commands on this host over ssh'),
    rest: z
      .strictObject({
        url: httpUrl('http://slurm-head:6820', 'tokenEnv').describe(
          'slurmrestd, e.g. http://slurm-head:6820',
        ),
        apiVersion: z.enum(SLURM_REST_VERSIONS).default('v0.0.38'),
        userName: z.string().min(1).describe('X-SLURM-USER-NAME'),
        tokenEnv: envName
          .default('SLURM_JWT')
          .describe('Environment variable holding the JWT (never the token)'),
        tokenCommand: z
          .string()
          .min(1)
          .optional()
          .describe('Command printing a fresh JWT when it expires, e.g. `scontrol token lifespan=3600`'),
      })
      .optional()
      .describe('rest transport: slurmrestd'),
    ...common,
    pollInterval: duration.default('30s').describe('How often the workflow checks the job'),
    timeout: duration.default('7d').describe('Give up (and cancel the job) after this long'),
  })
  .superRefine((s, ctx) => {
    if (s.transport === 'rest' && !s.rest) {
      ctx.addIssue({ code: 'custom', path: ['rest'], message: 'required when transport is rest' });
    }
  })
  .describe('Submit each fine-tune as a Slurm batch job');

const KubernetesBackendSchema = z
  .strictObject({
    type: z.literal('kubernetes'),
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a Kubernetes namespace name'),
    image: z
      .string()
      .min(1)
      .describe('Container image with the trainer, e.g. ghcr.io/acme/meteor-trainer:1.2'),
    command: z
      .array(z.string().min(1))
      .min(1)
      .describe('The container command, e.g. ["/opt/meteor/infra/trainer/run"]'),
    ...sharedStorage,
    resources: z
      .strictObject({
        gpus: z.number().int().min(0).max(64).default(1).describe('nvidia.com/gpu limit'),
        cpu: z.string().optional().describe('CPU request and limit, e.g. "8"'),
        memory: z.string().optional().describe('Memory request and limit, e.g. 64Gi'),
        extra: z.record(z.string(), z.string()).default({}).describe('Other limits, e.g. {"rdma/ib": "1"}'),
      })
      .default({ gpus: 1, extra: {} }),
    nodeSelector: z.record(z.string(), z.string()).default({}),
    tolerations: z
      .array(
        z.strictObject({
          key: z.string().optional(),
          operator: z.enum(['Exists', 'Equal']).optional(),
          value: z.string().optional(),
          effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
        }),
      )
      .default([]),
    serviceAccount: z.string().min(1).optional(),
    volumes: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a volume name'),
          claimName: z.string().min(1).describe('PersistentVolumeClaim'),
          mountPath: absolutePath,
          readOnly: z.boolean().default(false),
        }),
      )
      .default([])
      .describe('PVCs mounted into the job; one of them holds jobSharedDir'),
    secretEnv: z
      .array(
        z.strictObject({
          name: envName.describe('Environment variable in the container'),
          secret: z.string().min(1).describe('Secret name'),
          key: z.string().min(1).describe('Key in the secret'),
        }),
      )
      .default([])
      .describe('Environment from Secrets, by reference (values never pass through meteor)'),
    kubeconfig: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Path of a kubeconfig (relative to the spec file); omit to use the in-cluster service account',
      ),
    context: z.string().min(1).optional().describe('kubeconfig context (default: its current context)'),
    backoffLimit: z.number().int().min(0).max(100).default(0).describe('Pod retries before the Job fails'),
    activeDeadlineSeconds: positiveInt.optional().describe('Kubernetes stops the Job after this long'),
    ttlSecondsAfterFinished: positiveInt.optional(),
    ...common,
    pollInterval: duration.default('30s').describe('How often the workflow checks the job'),
    timeout: duration.default('7d').describe('Give up (and cancel the job) after this long'),
  })
  .describe('Run each fine-tune as a batch/v1 Job');

export const FineTuneSchema = z.discriminatedUnion('type', [
  LocalBackendSchema,
  SlurmBackendSchema,
  KubernetesBackendSchema,
]);
export type FineTuneSpec = z.infer<typeof FineTuneSchema>;
export type LocalFineTuneSpec = Extract<FineTuneSpec, { type: 'local' }>;
export type SlurmFineTuneSpec = Extract<FineTuneSpec, { type: 'slurm' }>;
export type KubernetesFineTuneSpec = Extract<FineTuneSpec, { type: 'kubernetes' }>;
