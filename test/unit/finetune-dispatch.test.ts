/** Pure parts of fine-tune dispatch: job names, adapter path mapping, metrics lines, queues, spec checks. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jobName } from '../../activities/finetune/backend';
import { parseMetricsLine } from '../../activities/finetune/metrics';
import { servedQueues } from '../../cli/worker';
import { mapAdapterPath } from '../../core/llm/adapters';
import { CampaignSpecSchema } from '../../core/spec';

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

describe('jobName', () => {
  it('is a stable RFC 1123 label of at most 63 characters, distinct for distinct keys', () => {
    const keys = [
      'k8s-ops-1a2b3c:distill:1',
      'k8s-ops-1a2b3c:assess:12',
      `${'a-very-long-campaign-name-that-goes-on-and-on'}-abcdef:contrast:3`,
      `${'a-very-long-campaign-name-that-goes-on-and-on'}-abcdef:contrast:4`,
    ];
    const names = keys.map((k) => jobName(k, hash));
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(new Set(names).size).toBe(keys.length);
    expect(jobName(keys[0] as string, hash)).toBe('meteor-k8s-ops-1a2b3c-distill-1');
    expect(names.map((_, i) => jobName(keys[i] as string, hash))).toEqual(names);
  });
});

describe('mapAdapterPath', () => {
  const map = [
    { from: '/scratch/meteor', to: '/mnt/models/meteor' },
    { from: '/data', to: '/vol/data/' },
  ];
  it('replaces the first matching prefix, on path boundaries only', () => {
    expect(mapAdapterPath(map, '/scratch/meteor/c1/finetune/distill-1/output')).toBe(
      '/mnt/models/meteor/c1/finetune/distill-1/output',
    );
    expect(mapAdapterPath(map, '/data/x')).toBe('/vol/data/x');
    expect(mapAdapterPath(map, '/scratch/meteorite/x')).toBe('/scratch/meteorite/x');
    expect(mapAdapterPath([], '/a/b')).toBe('/a/b');
  });
});

describe('parseMetricsLine', () => {
  it('reads the trainer’s METEOR_METRICS lines, anywhere in a log line, and nothing else', () => {
    expect(parseMetricsLine('METEOR_METRICS {"step":2,"loss":1.5,"learning_rate":3e-5,"epoch":0.5}')).toEqual(
      {
        step: 2,
        loss: 1.5,
        learning_rate: 3e-5,
        epoch: 0.5,
      },
    );
    expect(parseMetricsLine('[rank0] METEOR_METRICS {"final":true,"train_loss":0.7}')).toEqual({
      final: true,
      train_loss: 0.7,
    });
    expect(parseMetricsLine('{"loss": 1}')).toBeNull();
    expect(parseMetricsLine('METEOR_METRICS not json')).toBeNull();
    expect(parseMetricsLine('METEOR_METRICS [1,2]')).toBeNull();
  });
});

describe('servedQueues', () => {
  it('serves the campaign queue and the default fine-tune queue unless told otherwise', () => {
    expect(servedQueues('meteor', undefined)).toEqual({
      taskQueue: 'meteor',
      fineTuneQueues: ['meteor-gpu'],
    });
    expect(servedQueues('meteor', 'meteor-gpu')).toEqual({ taskQueue: null, fineTuneQueues: ['meteor-gpu'] });
    expect(servedQueues('meteor', 'meteor')).toEqual({ taskQueue: 'meteor', fineTuneQueues: [] });
    expect(servedQueues('meteor', 'meteor, a100 ,h100,a100')).toEqual({
      taskQueue: 'meteor',
      fineTuneQueues: ['a100', 'h100'],
    });
    expect(() => servedQueues('meteor', ' , ')).toThrow(/--queues/);
  });
});

describe('fine-tune spec', () => {
  const base = {
    name: 'x',
    domain: 'Kubernetes operations',
    questions: { train: 't.jsonl' },
    models: {
      weak: { baseURL: 'http://localhost:8000/v1', model: 'w', weights: 'meta-llama/Llama-3.1-8B-Instruct' },
      strong: { baseURL: 'http://localhost:8000/v1', model: 's' },
    },
    stages: { evaluate: { enabled: false } },
  };
  const issues = (fineTune: unknown) => {
    const r = CampaignSpecSchema.safeParse({ ...base, fineTune });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('takes a Slurm and a Kubernetes backend with their defaults', () => {
    const slurm = CampaignSpecSchema.parse({
      ...base,
      fineTune: { type: 'slurm', command: '/opt/meteor/infra/trainer/run', sharedDir: '/shared/meteor' },
    });
    expect(slurm.fineTune).toMatchObject({
      transport: 'cli',
      queue: 'meteor-gpu',
      gpusPerNode: 1,
      timeLimit: '24:00:00',
    });
    expect(slurm.models.weak.weights).toBe('meta-llama/Llama-3.1-8B-Instruct');
    const k8s = CampaignSpecSchema.parse({
      ...base,
      fineTune: {
        type: 'kubernetes',
        namespace: 'ml',
        image: 'ghcr.io/acme/trainer:1',
        command: ['/opt/meteor/infra/trainer/run'],
        sharedDir: '/shared/meteor',
      },
    });
    expect(k8s.fineTune).toMatchObject({ backoffLimit: 0, resources: { gpus: 1 } });
  });

  it('names the field of a bad backend setting', () => {
    expect(issues({ type: 'slurm', command: 'x', sharedDir: 'relative/dir' })).toEqual([
      'fineTune.sharedDir: an absolute path such as /shared/meteor',
    ]);
    expect(issues({ type: 'slurm', command: 'x', sharedDir: '/s', transport: 'rest' })).toEqual([
      'fineTune.rest: required when transport is rest',
    ]);
    expect(issues({ type: 'slurm', command: 'x', sharedDir: '/s', timeLimit: 'four hours' })).toEqual([
      'fineTune.timeLimit: a Slurm time such as 04:00:00 or 2-00:00:00',
    ]);
    expect(
      issues({ type: 'kubernetes', namespace: 'ML_Team', image: 'i', command: ['c'], sharedDir: '/s' }),
    ).toEqual(['fineTune.namespace: a Kubernetes namespace name']);
    expect(issues({ type: 'slurm', command: 'x', sharedDir: '/s', partiton: 'gpu' })[0]).toMatch(/partiton/);
  });
});
