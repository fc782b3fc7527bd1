/**
 * The evolution line report: per iteration the questions added and replayed, cost, the judged
 * result against the champion with its CI, promoted or not; and the champion history.
 * Text and JSON here; HTML in line-report-html.ts.
 */

/** One gating dimension of an iteration's judged result against the champion. */
export interface LineGateDimension {
  dimension: string;
  wins: number;
  ties: number;
  losses: number;
  /** (wins + 0.5 ties) / n */
  tieAdjustedWinRate: number;
  /** 95% bootstrap CI of the tie-adjusted win rate; null when it could not be computed. */
  ci: { lo: number; hi: number } | null;
  /** Whether the CI's lower bound exceeded the line's threshold. */
  passed: boolean;
}

export interface LineIterationReport {
  iteration: number;
  campaignId: string | null;
  state: 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';
  startedAt: string;
  finishedAt: string | null;
  questionsAdded: number;
  questionsReplayed: number;
  costUsd: number;
  /** The champion it was judged against (null: the line's base model). */
  against: { campaignId: string | null; label: string; servedModel: string };
  /** The iteration's final model (null when it made none). */
  candidate: { label: string; servedModel: string } | null;
  gate: LineGateDimension[] | null;
  promoted: boolean | null;
  reason: string | null;
}

export interface LineChampionChange {
  at: string;
  campaignId: string;
  label: string;
  servedModel: string;
  /** gate: promoted by the judge; promote / rollback: by a person. */
  kind: 'gate' | 'promote' | 'rollback';
  actor: string;
  why: string | null;
}

export interface LineReport {
  generatedAt: string;
  simulated: boolean;
  simulationNotice: string | null;
  line: {
    name: string;
    state: 'active' | 'paused' | 'deleted';
    scheduleId: string;
    /** The schedule in words, e.g. "every 24h" or "cron 0 2 * * * (Europe/Berlin)". */
    schedule: string;
    promotion: { dimensions: string[]; threshold: number; minHeldOut: number };
    replayFraction: number;
    heldOut: number;
  };
  champion: { campaignId: string; label: string; servedModel: string } | null;
  championHistory: LineChampionChange[];
  iterations: LineIterationReport[];
}
