/**
 * A METEOR campaign (DESIGN §1): the plan's stages in order — by default METEOR's distill →
 * assess × N → contrast × M → evaluate (stages/registry.ts). Each stage runs as a child workflow, ends in a fine-tune, and hands the new model version to the
 * next; the evaluation compares each stage's final model with the base model.
 *
 * Workflow id `campaign-<campaignId>`; signals `pause`/`resume`; query `status`.
 */
import {
  CancellationScope,
  condition,
  continueAsNew,
  ContinueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { fineTuneWorkflow } from './finetune';
import { pauseSignal, resumeSignal, stageProgressSignal, statusQuery } from './messages';
import { BOOKKEEPING_RETRY } from './retry';
import { MeteorCampaignId, MeteorStage, MeteorState } from './search-attributes';
import { stageWorkflow } from './stage';
import type {
  CampaignPlan,
  CampaignRunState,
  CampaignStatus,
  ModelRef,
  PreferenceLoss,
  StageName,
  StagePlan,
  StageProgress,
  StageResult,
  TrainingStage,
} from './types';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: BOOKKEEPING_RETRY,
});

/** One step of the campaign: an iteration of a stage. */
interface Step {
  plan: StagePlan;
  iteration: number;
}

export interface CampaignInput {
  campaignId: string;
  /** Continue-as-new threshold for this workflow and its stage workflows (tests set it low). */
  maxHistoryEvents?: number;
  /** Carried across continue-as-new. */
  resume?: { status: CampaignStatus; nextStep: number; paused: boolean; plan: CampaignPlan };
}

const DEFAULT_MAX_HISTORY_EVENTS = 8_000;

export function campaignWorkflowId(campaignId: string): string {
  return `campaign-${campaignId}`;
}

/**
 * A plan as workers before the stage registry recorded it: the four stages by name, and the
 * contrast stage's loss beside them. A campaign started then replays and goes on with it.
 */
interface LegacyPlan {
  stages: Record<
    'distill' | 'assess' | 'contrast' | 'evaluate',
    Omit<StagePlan, 'stage' | 'questions' | 'fineTune'>
  >;
  preferenceLoss: PreferenceLoss;
}

function stagePlans(plan: CampaignPlan | LegacyPlan): StagePlan[] {
  if (Array.isArray(plan.stages)) return plan.stages;
  const legacy = plan as LegacyPlan;
  return (['distill', 'assess', 'contrast', 'evaluate'] as const).map((stage) => ({
    ...legacy.stages[stage],
    stage,
    questions: stage === 'evaluate' ? 'eval' : 'train',
    fineTune:
      stage === 'evaluate'
        ? null
        : stage === 'contrast'
          ? { kind: 'preference', loss: legacy.preferenceLoss }
          : { kind: 'sft', loss: null },
  }));
}

/** The steps a plan runs, in order. */
export function campaignSteps(plan: CampaignPlan): Step[] {
  return stagePlans(plan).flatMap((p) =>
    p.enabled ? Array.from({ length: p.iterations }, (_, i) => ({ plan: p, iteration: i + 1 })) : [],
  );
}

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignStatus> {
  const { campaignId } = input;
  const status: CampaignStatus = input.resume?.status ?? {
    campaignId,
    workflowId: workflowInfo().workflowId,
    state: 'running',
    pauseRequested: false,
    pauseReason: null,
    stage: null,
    iteration: null,
    stages: [],
    costUsd: 0,
    failedQuestions: 0,
    lineage: [],
    error: null,
  };
  let paused = input.resume?.paused ?? false;
  let activeChild: ChildWorkflowHandle<typeof stageWorkflow> | null = null;

  const setState = async (state: CampaignRunState) => {
    status.state = state;
    upsertSearchAttributes([{ key: MeteorState, value: state }]);
    await acts.setCampaignState({ campaignId, state });
  };
  const refreshCost = () => {
    status.costUsd = status.stages.reduce((sum, s) => sum + s.costUsd, 0);
    status.failedQuestions = status.stages.reduce((sum, s) => sum + (s.failed ?? 0), 0);
  };

  setHandler(statusQuery, () => status);
  /**
   * Forwards a pause or resume to the running stage. The stage may have closed a moment ago (its
   * result not yet seen here): that is harmless — the campaign holds or goes on at its next step.
   */
  const forward = async (signal: typeof pauseSignal | typeof resumeSignal) => {
    const child = activeChild;
    if (!child) return;
    try {
      await child.signal(signal);
    } catch (err) {
      if (isCancellation(err)) throw err;
    }
  };
  setHandler(pauseSignal, async () => {
    paused = true;
    status.pauseRequested = true;
    await forward(pauseSignal);
  });
  setHandler(resumeSignal, async () => {
    paused = false;
    status.pauseRequested = false;
    await forward(resumeSignal);
  });
  setHandler(stageProgressSignal, (p) => {
    const entry = status.stages.find((s) => s.stage === p.stage && s.iteration === p.iteration);
    if (!entry) return;
    Object.assign(entry, p);
    // The stage pauses only once its in-flight batches have drained: only then say `paused`. It
    // also pauses itself, with a reason (budget reached, an endpoint down).
    if (p.status === 'paused' && (paused || p.pauseReason)) {
      status.state = 'paused';
      status.pauseReason = p.pauseReason ?? 'paused by user';
    } else if (p.status === 'running' && status.state === 'paused') {
      status.state = 'running';
      status.pauseReason = null;
    }
    refreshCost();
  });

  /** The safe point between steps: hold here while paused, for as long as it takes. */
  const holdWhilePaused = async () => {
    if (!paused) return;
    status.pauseReason = 'paused by user';
    await setState('paused');
    await condition(() => !paused);
    status.pauseReason = null;
    await setState('running');
  };

  try {
    const plan = input.resume?.plan ?? (await acts.loadCampaignPlan({ campaignId }));
    if (!input.resume) {
      upsertSearchAttributes([{ key: MeteorCampaignId, value: campaignId }]);
      await setState('running');
      status.lineage.push(await acts.registerBaseModel({ campaignId }));
    }
    const steps = campaignSteps(plan);
    const base = status.lineage[0] as ModelRef;
    const maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
    /** The last model each training stage made: what the evaluation compares with the base. */
    const finalOf = (stage: StageName) => [...status.lineage].reverse().find((m) => m.stage === stage);

    for (let i = input.resume?.nextStep ?? 0; i < steps.length; i++) {
      const { plan: stagePlan, iteration } = steps[i] as Step;
      const { stage } = stagePlan;
      const current = status.lineage[status.lineage.length - 1] as ModelRef;
      // The evaluation (a stage on the held-out questions) compares the base with each training
      // stage's final model; every other stage works with the current model.
      const evaluates = stagePlan.questions === 'eval';
      // The plan counted the questions before any stage ran, and a stage may add some (task
      // evolution adds training questions): each step counts its own. Patched, so runs started
      // before replay as they ran.
      const total = patched('count-questions-per-step')
        ? await acts.countStageQuestions({ campaignId, stage })
        : evaluates
          ? plan.evalTotal
          : plan.trainTotal;
      status.stage = stage;
      status.iteration = iteration;
      upsertSearchAttributes([{ key: MeteorStage, value: `${stage}-${iteration}` }]);
      const entry: StageProgress = {
        stage,
        iteration,
        status: 'pending',
        total,
        done: 0,
        records: 0,
        costUsd: 0,
        failed: 0,
        retrying: null,
      };
      status.stages.push(entry);
      await holdWhilePaused();
      entry.status = 'running';

      const { fineTune } = stagePlan;
      const candidates = evaluates
        ? stagePlans(plan).flatMap((s) => (s.fineTune ? (finalOf(s.stage) ?? []) : []))
        : undefined;
      const child = await startChild(stageWorkflow, {
        workflowId: `${status.workflowId}-${stage}-${iteration}`,
        args: [
          {
            campaignId,
            stage,
            iteration,
            modelIn: evaluates ? base : current,
            candidates,
            exportsDataset: fineTune !== null,
            batchSize: stagePlan.batchSize,
            parallelBatches: stagePlan.parallelBatches,
            maxHistoryEvents: input.maxHistoryEvents,
          },
        ],
      });
      activeChild = child;
      // A pause that arrived while the child was starting is forwarded now.
      if (paused) await forward(pauseSignal);
      const result: StageResult = await child.result();
      activeChild = null;
      Object.assign(entry, {
        done: entry.total,
        records: result.records,
        costUsd: result.costUsd,
        failed: result.failed,
      });
      refreshCost();

      // A training stage that produced no example (e.g. assess solved nothing) keeps the current model.
      if (fineTune && result.dataset && result.dataset.rows > 0) {
        entry.status = 'fine-tuning';
        await holdWhilePaused();
        const next = await startChild(fineTuneWorkflow, {
          workflowId: `${status.workflowId}-finetune-${stage}-${iteration}`,
          args: [
            {
              campaignId,
              // A stage with a fine-tune is a training stage.
              stage: stage as TrainingStage,
              iteration,
              dataset: result.dataset,
              parent: current,
              label: `M${status.lineage.length}`,
              kind: fineTune.kind,
              loss: fineTune.loss,
              queue: plan.fineTune.queue,
              pollIntervalMs: plan.fineTune.pollIntervalMs,
              timeoutMs: plan.fineTune.timeoutMs,
            },
          ],
        });
        status.lineage.push(await next.result());
      }
      entry.status = 'completed';

      if (
        i + 1 < steps.length &&
        (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents)
      ) {
        await continueAsNew<typeof campaignWorkflow>({
          ...input,
          resume: { status, nextStep: i + 1, paused, plan },
        });
      }
    }

    status.stage = null;
    status.iteration = null;
    await setState('completed');
    return status;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const cancelled = isCancellation(err);
    status.error = cancelled ? 'cancelled by user' : errorText(err);
    await CancellationScope.nonCancellable(async () => {
      status.state = cancelled ? 'cancelled' : 'failed';
      const entry = status.stages[status.stages.length - 1];
      if (entry && entry.status !== 'completed') entry.status = status.state;
      upsertSearchAttributes([{ key: MeteorState, value: status.state }]);
      await acts.setCampaignState({ campaignId, state: status.state, error: status.error });
    });
    throw err;
  }
}

/** The innermost cause: a child's activity failure is wrapped twice over. */
export function errorText(err: unknown): string {
  let e: unknown = err;
  let text = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && e.cause) {
    e = e.cause;
    if (e instanceof Error && e.message) text = e.message;
  }
  return text;
}
