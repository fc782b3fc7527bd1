/**
 * One iteration of one stage of the campaign (DESIGN §1): distill, assess, contrast, evaluate or any
 * other registered stage (stages/registry.ts).
 *
 * The stage's questions (train, or eval for the evaluation) are cut into batches by position;
 * a sliding window of the stage's batch activity runs them — every record upserted by its
 * business key. Pause drains the running batches — they start no new call, the calls in flight
 * finish and are logged — and they run again, skipping what is done, on resume. A batch that
 * halts (budget reached, an endpoint down past `outage.pauseAfter`) pauses the stage with its
 * reason and runs again on resume; an outage is probed on a durable timer, and the stage
 * resumes itself once the endpoint answers. A training
 * stage ends by exporting its dataset, the evaluation by summarising its judgments. Long stages
 * continue-as-new with their cursor.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  isCancellation,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BOOKKEEPING_RETRY, REMOTE_RETRY } from './retry';
import { pauseSignal, resumeSignal, stageProgressSignal, stageStatusQuery } from './messages';
import type {
  BatchHalt,
  BatchInput,
  BatchResult,
  StageInput,
  StageProgress,
  StageResult,
  TrainingStage,
} from './types';

const batchActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  // Batch activities heartbeat every few seconds; a dead worker is noticed within this.
  heartbeatTimeout: '20s',
  retry: REMOTE_RETRY,
});
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  retry: BOOKKEEPING_RETRY,
});
/** Polls after a cancel: best effort, so a provider that stopped answering does not hold the cancel. */
const settlingActivities = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '20s',
  retry: { ...REMOTE_RETRY, maximumAttempts: 3 },
});

const DEFAULT_MAX_HISTORY_EVENTS = 8_000;
/** Batches report progress to the campaign at most this often (workflow time). */
const MIN_BATCH_REPORT_GAP_MS = 1_000;
/** How long a cancelled stage waits for the provider to finish cancelling its round (OpenAI: up to 10 min). */
const CANCELLED_ROUND_WAIT_MS = 15 * 60_000;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function stageWorkflow(input: StageInput): Promise<StageResult> {
  const { campaignId, stage, iteration, batchSize } = input;
  // Every registered stage's batch activity is named `<stage>Batch` (stages/registry.ts).
  const runBatch = (b: BatchInput): Promise<BatchResult> => batchActivities[`${stage}Batch`](b);
  if (input.retryFailed) {
    // `campaign retry-failed`: one batch of the failed questions; the stage run stays as it ended.
    const r = await runBatch({
      campaignId,
      iteration,
      modelIn: input.modelIn.servedModel,
      candidates: input.candidates?.map((m) => ({ label: m.label, servedModel: m.servedModel })),
      offset: 0,
      limit: 0,
      retryFailed: true,
      withTotals: true,
    });
    if (r.halted) throw ApplicationFailure.nonRetryable(r.halted.reason, 'Halted');
    return {
      records: r.stageTotals?.records ?? r.created,
      failed: r.failed,
      dataset: null,
      costUsd: r.stageTotals?.costUsd ?? 0,
    };
  }
  let userPaused = input.resume?.paused ?? false;
  /** Why batches halted (budget, outage): the stage holds until resumed or the probe succeeds. */
  let halt: BatchHalt | null = input.resume?.halt ?? null;
  const paused = () => userPaused || halt !== null;
  setHandler(pauseSignal, () => void (userPaused = true));
  // The user's resume also lifts a halt: the budget raised, or the endpoint known to be back.
  setHandler(resumeSignal, () => {
    userPaused = false;
    halt = null;
  });

  const total =
    input.resume?.total ??
    (await acts.startStageRun({ campaignId, stage, iteration, modelIn: input.modelIn.label })).total;
  const progress: StageProgress = {
    stage,
    iteration,
    status: 'running',
    total,
    done: input.resume?.done ?? 0,
    records: input.resume?.records ?? 0,
    costUsd: input.resume?.costUsd ?? 0,
    failed: input.resume?.failed ?? 0,
    retrying: null,
  };
  setHandler(stageStatusQuery, () => progress);
  // Known once the first batch reports it (the activities read the spec).
  let maxFailedFraction: number | null = input.resume?.maxFailedFraction ?? null;
  const tooManyFailed = () =>
    maxFailedFraction !== null && progress.failed > 0 && progress.failed > maxFailedFraction * total;
  const failTooMany = () => {
    const frac = maxFailedFraction ?? 0;
    return ApplicationFailure.nonRetryable(
      `${progress.failed} of ${total} questions failed (${pct(progress.failed / total)}), more than ` +
        `stages.${stage}.maxFailedFraction ${frac} (${pct(frac)}): see \`meteorctl audit export ` +
        `${campaignId} --stage ${stage}\` for their reasons, fix the cause and run ` +
        `\`meteorctl campaign retry-failed ${campaignId} --stage ${stage}\``,
      'TooManyFailedQuestions',
    );
  };

  const parent = workflowInfo().parent;
  const parentHandle = parent ? getExternalWorkflowHandle(parent.workflowId, parent.runId) : null;
  const batches = Math.ceil(total / batchSize);
  // Report about every 1% of batches, so the parent's history stays small on huge stages.
  const reportEvery = Math.max(1, Math.floor(batches / 100));
  let sinceReport = 0;
  // And at most one a second from batches (a signal and a workflow task of the parent each, which
  // was half of Temporal's CPU on fast stages); pauses, halts and the end report at once.
  const throttleReports = patched('batch-progress-at-most-every-second');
  let lastReportAt = -Infinity;
  const reportDue = () => !throttleReports || Date.now() - lastReportAt >= MIN_BATCH_REPORT_GAP_MS;
  // One progress signal in flight at a time: signals sent in the same workflow task may reach
  // the parent in any order, and a stale `running` arriving after `paused` hid the pause.
  let reporting: Promise<void> = Promise.resolve();
  const report = () => {
    sinceReport = 0;
    lastReportAt = Date.now();
    if (!parentHandle) return;
    const snapshot = { ...progress };
    reporting = reporting
      .then(() => parentHandle.signal(stageProgressSignal, snapshot))
      .catch(() => undefined);
  };

  const maxEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const shouldRollOver = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents;

  // A pause drains the running batches instead of waiting for them to finish (activities/batch-drain.ts).
  const drainOnPause = patched('drain-batches-on-pause');
  /** The running batches were asked to drain (stage_runs.drain_requested_at is set). */
  let drainAsked = false;
  const drainBatches = async (drain: boolean) => {
    drainAsked = drain;
    await acts.drainStageBatches({ campaignId, stage, iteration, drain });
  };
  /** One wait for the user's pause at a time (a condition per loop turn would pile up). */
  let pauseSeen: Promise<void> | null = null;
  const whenUserPaused = () =>
    (pauseSeen ??= condition(() => userPaused).then(() => {
      pauseSeen = null;
    }));

  /** Holds while paused, probing an endpoint that is down; says why in progress and the campaign row. */
  const holdWhilePaused = async () => {
    const reason = halt?.reason ?? 'paused by user';
    progress.status = 'paused';
    progress.pauseReason = reason;
    report();
    await acts.recordPause({ campaignId, reason });
    // Probes at least a second apart, backing off to ten times `outage.probeEvery`.
    const every = Math.max(1_000, halt?.probe?.everyMs ?? 0);
    let delay = every;
    while (paused()) {
      const probe = userPaused ? null : (halt?.probe ?? null);
      if (!probe) {
        await condition(() => !paused());
        break;
      }
      if (await condition(() => !paused(), delay)) break;
      if (await acts.probeEndpoint({ campaignId, role: probe.role })) halt = null;
      delay = Math.min(delay * 2, every * 10);
    }
    // A resumed stage gets a whole `outage.pauseAfter` again: failures from before the pause
    // are no measure of an outage now.
    await acts.resetEndpointHealth({ campaignId, stage, iteration });
    await acts.recordPause({ campaignId, reason: null });
    progress.status = 'running';
    progress.pauseReason = null;
    report();
  };

  /** Batches with questions waiting for provider batches (endpoints in `mode: batch`). */
  const deferred = new Set<number>(input.resume?.deferred ?? []);
  /** The round of provider batches next submitted, or waited for. */
  let batchRound = input.resume?.batchRound ?? 0;
  /** A round submitted and not yet ended: cancelled with the stage. */
  let roundOpen = false;
  /**
   * Submits the round (again after a crash or continue-as-new: it is looked up, never made twice)
   * and polls it on durable timers until every batch of it has ended and its answers are logged.
   * False when the budget holds it back (the stage pauses first).
   */
  const awaitProviderBatches = async (): Promise<boolean> => {
    const key = { campaignId, stage, iteration, cycle: batchRound };
    let state = await batchActivities.submitProviderBatches(key);
    if (state.halted) {
      halt ??= state.halted;
      return false;
    }
    // Questions that wait while nothing was submitted would wait, and run again, forever.
    if (state.batches === 0) {
      throw ApplicationFailure.nonRetryable(
        `${deferred.size} batches of questions wait for provider batches, but no request waits to be sent`,
        'ProviderBatchesMissing',
      );
    }
    roundOpen = true;
    for (;;) {
      progress.providerBatches = {
        round: batchRound,
        batches: state.batches,
        inProgress: state.inProgress,
        requests: state.requests,
        answered: state.answered,
        ids: state.providerBatchIds,
      };
      report();
      if (state.inProgress === 0) break;
      // Hours of waiting cost a timer and a poll each interval; a long wait rolls the history over.
      if (shouldRollOver()) {
        await reporting;
        await continueAsNew<typeof stageWorkflow>({
          ...input,
          resume: {
            nextBatch: batches,
            done: progress.done,
            records: progress.records,
            costUsd: progress.costUsd,
            total,
            paused: userPaused,
            halt,
            again: [],
            failed: progress.failed,
            maxFailedFraction,
            deferred: [...deferred],
            batchRound,
          },
        });
      }
      await sleep(state.pollIntervalMs);
      state = await batchActivities.pollProviderBatches(key);
    }
    roundOpen = false;
    progress.providerBatches = null;
    return true;
  };

  /**
   * After the round is cancelled at the provider: what it answered before it stopped is paid for,
   * so it is logged (cost and audit) and the round's files — prompts and answers — are deleted
   * there, as for a round that completes. A provider may take minutes to finish cancelling; past
   * CANCELLED_ROUND_WAIT_MS, or when polling fails three times, the stage ends without it.
   */
  const settleCancelledRound = async (key: {
    campaignId: string;
    stage: string;
    iteration: number;
    cycle: number;
  }): Promise<void> => {
    const giveUpAt = Date.now() + CANCELLED_ROUND_WAIT_MS;
    for (;;) {
      const state = await settlingActivities.pollProviderBatches(key).catch(() => null);
      if (!state || state.inProgress === 0 || Date.now() >= giveUpAt) return;
      await sleep(state.pollIntervalMs);
    }
  };

  try {
    let next = input.resume?.nextBatch ?? 0;
    /** Batches that halted, to run again first once resumed. */
    const again: number[] = [...(input.resume?.again ?? [])];
    const running = new Map<number, Promise<void>>();
    const launch = (index: number) => {
      const offset = index * batchSize;
      const p = runBatch({
        campaignId,
        iteration,
        modelIn: input.modelIn.servedModel,
        candidates: input.candidates?.map((m) => ({ label: m.label, servedModel: m.servedModel })),
        offset,
        limit: Math.min(batchSize, total - offset),
        // Totals come with about every report, not every batch.
        withTotals: index % reportEvery === reportEvery - 1 || index === batches - 1,
      }).then((r: BatchResult) => {
        running.delete(index);
        progress.records += r.created;
        if (r.halted) {
          halt ??= r.halted;
          again.push(index);
          return;
        }
        if (r.drained) {
          again.push(index);
          return;
        }
        // Counted when it runs again with the answers, whole, like a halted batch.
        if (r.deferred) {
          deferred.add(index);
          return;
        }
        progress.done += r.processed;
        progress.failed += r.failed;
        maxFailedFraction = r.maxFailedFraction;
        if (r.stageTotals) {
          progress.records = Math.max(progress.records, r.stageTotals.records);
          progress.costUsd = Math.max(progress.costUsd, r.stageTotals.costUsd);
        }
        if (++sinceReport >= reportEvery && reportDue()) report();
      });
      running.set(index, p);
    };

    const waiting = () => again.length > 0 || next < batches;
    while (waiting() || running.size > 0 || deferred.size > 0) {
      if (paused() && running.size === 0) await holdWhilePaused();
      // Resumed, and every drained batch is back (a resume may come before they are): batches
      // may run again. Before anything else, a continue-as-new included.
      if (drainAsked && !userPaused && running.size === 0) await drainBatches(false);
      if (tooManyFailed() && running.size === 0) throw failTooMany();
      if (shouldRollOver() && running.size === 0 && waiting()) {
        await reporting;
        await continueAsNew<typeof stageWorkflow>({
          ...input,
          resume: {
            nextBatch: next,
            done: progress.done,
            records: progress.records,
            costUsd: progress.costUsd,
            total,
            paused: userPaused,
            halt,
            again,
            failed: progress.failed,
            maxFailedFraction,
            deferred: [...deferred],
            batchRound,
          },
        });
      }
      // Every batch has run as far as it can: send what waits as provider batches, then run the
      // batches again with the answers (their finished questions are skipped).
      if (!paused() && !waiting() && running.size === 0 && deferred.size > 0) {
        if (await awaitProviderBatches()) {
          again.push(...[...deferred].sort((a, b) => a - b));
          deferred.clear();
          batchRound++;
        }
        continue;
      }
      while (
        !paused() &&
        !drainAsked &&
        !tooManyFailed() &&
        !shouldRollOver() &&
        waiting() &&
        running.size < input.parallelBatches
      )
        launch(again.shift() ?? next++);
      if (running.size > 0 && drainOnPause && userPaused && !drainAsked) await drainBatches(true);
      // Asked again: the batches may all have ended while the drain was being asked for.
      if (running.size > 0) {
        // Woken by the user's pause too, to drain the batches then rather than when they end.
        const pauseWakes = drainOnPause && !userPaused ? [whenUserPaused()] : [];
        await Promise.race([...running.values(), ...pauseWakes]);
      }
    }

    if (tooManyFailed()) throw failTooMany();

    progress.status = 'exporting';
    report();
    // The evaluation's summary is recomputed from its judgment rows whenever it is read.
    // A stage that exports a dataset is a training stage.
    const dataset =
      (input.exportsDataset ?? stage !== 'evaluate')
        ? await acts.exportStageDataset({ campaignId, stage: stage as TrainingStage, iteration })
        : null;
    const summary = await acts.finishStageRun({ campaignId, stage, iteration, status: 'completed' });
    progress.status = 'completed';
    progress.records = summary.records;
    progress.costUsd = summary.costUsd;
    report();
    await reporting;
    return { records: summary.records, failed: progress.failed, dataset, costUsd: summary.costUsd };
  } catch (err) {
    // Leave an honest stage run behind; continue-as-new is not an ending.
    if (!(err instanceof ContinueAsNew)) {
      // Cancelled while the provider works on a round: stop paying for it.
      if (roundOpen && isCancellation(err)) {
        const key = { campaignId, stage, iteration, cycle: batchRound };
        const settle = patched('settle-cancelled-provider-batches');
        await CancellationScope.nonCancellable(async () => {
          await acts.cancelProviderBatches(key);
          if (settle) await settleCancelledRound(key);
        });
      }
      await CancellationScope.nonCancellable(() =>
        acts.finishStageRun({
          campaignId,
          stage,
          iteration,
          status: isCancellation(err) ? 'cancelled' : 'failed',
        }),
      );
    }
    throw err;
  }
}
