/**
 * Row types of the database, as kysely sees them. The schema itself lives in migrations/;
 * keep the two in step.
 */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { BillingMode } from '../llm/pricing';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** bigint columns arrive from pg as strings; we pass numbers in and read strings out. */
type BigId = ColumnType<string, number | string, number | string>;
type Json<T> = ColumnType<T, string, string>;
/** A column the database fills in when the insert leaves it out. */
type Defaulted<T> = ColumnType<T, T | undefined, T>;

export type CampaignState = 'created' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

export interface CampaignsTable {
  id: string;
  name: string;
  domain: string;
  spec: Json<unknown>;
  spec_file: string | null;
  spec_dir: string;
  workflow_id: string;
  task_queue: string;
  state: ColumnType<CampaignState, CampaignState | undefined, CampaignState>;
  error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  line_name: string | null;
  line_iteration: number | null;
  /** Budgets raised by `campaign resume --max-cost-usd`, over the spec's. */
  budget_override: ColumnType<BudgetOverride | null, string | null | undefined, string | null>;
  /** Why the campaign paused itself (an endpoint outage, the budget), or null. */
  pause_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Set on a forecast run (`campaign plan`, migration 018): what it samples; null on a real campaign. */
  forecast: ColumnType<ForecastMarker | null, string | null | undefined, string | null>;
}

/** `campaigns.forecast`: the full question counts a forecast's sample stands for, and its spec's hash. */
export interface ForecastMarker {
  of: { train: number; eval: number };
  specHash: string;
  /** Whether its stages fine-tune as the campaign would (on the sample), or use the base model throughout. */
  train: boolean;
}

/** `campaigns.budget_override`: USD limits that replace `budget.maxCostUsd` and `stages.S.maxCostUsd`. */
export interface BudgetOverride {
  maxCostUsd?: number;
  stages?: Partial<Record<string, number>>;
}

export interface QuestionsTable {
  campaign_id: string;
  id: string;
  split: 'train' | 'eval';
  ordinal: number;
  title: string | null;
  question: string;
  reference: string | null;
  content_hash: string;
  /** 'evolved': written by the strong model in the evolve stage (migration 014), from `evolved_from`. */
  origin: Defaulted<QuestionOrigin>;
  evolved_from: ColumnType<string | null, string | null | undefined, string | null>;
}

export type QuestionOrigin = 'given' | 'evolved';

/** The evolve stage's record (migration 014): what became of one seed's rewrite. */
export interface EvolvedQuestionsTable {
  campaign_id: string;
  iteration: number;
  seed_id: string;
  method: string;
  outcome: 'kept' | 'rejected' | 'unparseable';
  reason: 'near-duplicate' | 'near-held-out' | null;
  question_id: string | null;
  title: string | null;
  question: string | null;
  closest_id: string | null;
  similarity: number | null;
  call_id: BigId;
  created_at: Timestamp;
}

export interface ModelVersionsTable {
  campaign_id: string;
  label: string;
  parent_label: string | null;
  served_model: string;
  stage: string | null;
  iteration: number | null;
  dataset_id: BigId | null;
  finetune_job_id: BigId | null;
  checkpoint_uri: string | null;
  deployed_at: Timestamp | null;
  created_at: Timestamp;
  origin_campaign_id: string | null;
  origin_label: string | null;
}

export interface StageRunsTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  model_in: string;
  model_out: string | null;
  total: number;
  metrics: ColumnType<Record<string, unknown>, string | undefined, string>;
  started_at: Timestamp;
  finished_at: Timestamp | null;
  /** Set while a pause drains the run's batches (migration 020); null otherwise. */
  drain_requested_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface LlmCallsTable {
  id: Generated<string>;
  campaign_id: string;
  stage: string;
  iteration: number;
  request_hash: string;
  role: string;
  base_url: string;
  model: string;
  purpose: string;
  prompt_version: string;
  request: Json<unknown>;
  response: Json<unknown> | null;
  /** duplicate: a paid answer to a request another attempt had logged ok first (migration 009). */
  status: 'ok' | 'error' | 'duplicate';
  error: string | null;
  http_status: number | null;
  prompt_tokens: Defaulted<number>;
  completion_tokens: Defaulted<number>;
  latency_ms: number;
  cost_usd: Defaulted<number>;
  /** Prompt tokens the provider reported as read from its cache; null when it reported none (migration 017). */
  cached_tokens: number | null;
  /** Online or a provider's Batch API: the prices `cost_usd` was billed at (migration 017). */
  billing_mode: Defaulted<BillingMode>;
  created_at: Timestamp;
}

/** A chunk of an endpoint's batch-mode calls, sent as one provider batch (migration 019). */
export interface LlmBatchesTable {
  id: Generated<string>;
  campaign_id: string;
  stage: string;
  iteration: number;
  /** The stage's round of batches: each waits for the previous one's answers. */
  cycle: number;
  role: string;
  chunk: number;
  /** The value of the provider batch's `meteor_batch` metadata, what it is looked up by. */
  meta_key: string;
  provider_batch_id: string | null;
  input_file_id: string | null;
  /** 'claimed' until created at the provider, then the provider's status as last seen. */
  status: Defaulted<string>;
  requests: Defaulted<number>;
  answered: Defaulted<number>;
  errored: Defaulted<number>;
  created_at: Timestamp;
  finished_at: Timestamp | null;
}

export type BatchRequestStatus = 'pending' | 'submitted' | 'answered' | 'online';

/** A call of a batch-mode endpoint waiting for, or answered by, a provider batch (migration 019). */
export interface LlmBatchRequestsTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  request_hash: string;
  role: string;
  base_url: string;
  model: string;
  purpose: string;
  prompt_version: string;
  body: Json<unknown>;
  status: Defaulted<BatchRequestStatus>;
  batch_id: string | null;
  attempts: Defaulted<number>;
  last_error: string | null;
  created_at: Timestamp;
}

export interface DistillRecordsTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  model_in: string;
  guideline: string;
  answer: string;
  guideline_corrected: boolean;
  correction: string | null;
  guideline_call_id: BigId;
  answer_call_id: BigId;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DatasetsTable {
  id: Generated<string>;
  campaign_id: string;
  stage: string;
  iteration: number;
  kind: 'sft' | 'preference';
  format: string;
  uri: string;
  sha256: string;
  rows: number;
  bytes: BigId;
  created_at: Timestamp;
}

export type FineTuneStatus = 'pending' | 'submitted' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface FineTuneJobsTable {
  id: Generated<string>;
  campaign_id: string;
  stage: string;
  iteration: number;
  idempotency_key: string;
  backend: string;
  external_id: string | null;
  status: FineTuneStatus;
  base_model: string;
  dataset_id: BigId;
  output_dir: string;
  checkpoint_uri: string | null;
  error: string | null;
  submitted_at: Timestamp | null;
  finished_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  job_dir: string | null;
  job_dir_remote: string | null;
  queue: string | null;
  name: string | null;
  parent_label: string | null;
  parent_served: string | null;
  parent_checkpoint: string | null;
  claim_token: string | null;
  claim_attempt: number | null;
  claimed_at: Timestamp | null;
  cancel_requested: Defaulted<boolean>;
  submitted: string | null;
  detail: string | null;
  exit_code: number | null;
  started_at: Timestamp | null;
  final_loss: number | null;
}

export interface LinesTable {
  name: string;
  spec: Json<unknown>;
  spec_file: string;
  spec_dir: string;
  schedule_id: string;
  task_queue: string;
  created_at: Timestamp;
  deleted_at: Timestamp | null;
}

export interface LineHeldoutTable {
  line: string;
  ordinal: number;
  id: string;
  title: string | null;
  question: string;
  reference: string | null;
  content_hash: string;
}

export type LineIterationState = 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';

export interface LineIterationsTable {
  line: string;
  iteration: number;
  workflow_id: string;
  campaign_id: string | null;
  state: LineIterationState;
  questions_added: Defaulted<number>;
  questions_replayed: Defaulted<number>;
  promoted: boolean | null;
  reason: string | null;
  gate: Json<unknown> | null;
  started_at: Timestamp;
  finished_at: Timestamp | null;
}

export interface LineChampionsTable {
  id: Generated<string>;
  line: string;
  campaign_id: string;
  label: string;
  served_model: string;
  checkpoint_uri: string | null;
  kind: 'gate' | 'promote' | 'rollback';
  actor: string;
  why: string | null;
  at: Timestamp;
}

export interface DatasetReplayTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  source_campaign_id: string;
  source_iteration: number;
  source_row: number;
}

export interface FineTuneEventsTable {
  id: Generated<string>;
  job_id: BigId;
  at: Timestamp;
  kind: string;
  message: string;
}

export interface AssessRoundsTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  round: number;
  model_in: string;
  answer: string;
  verdict: 'correct' | 'incorrect' | 'unparseable';
  feedback: string | null;
  answer_call_id: BigId;
  verdict_call_id: BigId;
  verdict_attempts: Defaulted<number>;
  created_at: Timestamp;
}

export interface PreferencePairsTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  model_in: string;
  method: 'beam' | 'best-of-n' | 'rstar';
  chosen: string;
  rejected: string;
  similarity: number;
  kept: boolean;
  drop_reason: string | null;
  critique_agrees: boolean | null;
  greedy_call_id: BigId;
  high_call_id: BigId;
  critique_call_ids: ColumnType<string[], string | undefined, string>;
  /** rstar with a consistent pick: the chosen trajectory's node ids (migration 015). */
  chosen_path: ColumnType<number[] | null, string | null | undefined, string | null>;
  /** rstar with a consistent pick: the generator call that made each of those nodes. */
  chosen_call_ids: ColumnType<string[] | null, string | null | undefined, string | null>;
  created_at: Timestamp;
}

/** A candidate trajectory of an rstar decode and the discriminator's check of it (migration 015). */
export interface RStarCandidatesTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  node_id: number;
  answer: string;
  score: number;
  cut: number;
  steps: number;
  discriminator_answer: string | null;
  consistent: boolean;
  discriminator_call_id: BigId;
  created_at: Timestamp;
}

export interface EvalAnswersTable {
  campaign_id: string;
  model_label: string;
  question_id: string;
  served_model: string;
  answer: string;
  call_id: BigId;
  created_at: Timestamp;
}

export type AttemptVerdict = 'correct' | 'incorrect' | 'unparseable';

/** The evaluation's self-correction probe of one model on one held-out question (migration 011). */
/** A training example's score by the row filter (migration 016). */
export interface RowScoresTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  question_id: string;
  /** The example's place among its question's examples. */
  row: number;
  scorer: 'judge' | 'self';
  /** Null when the scorer's reply never parsed. */
  score: number | null;
  reason: string | null;
  call_id: BigId;
  created_at: Timestamp;
}

export interface SelfCorrectionsTable {
  campaign_id: string;
  model_label: string;
  question_id: string;
  served_model: string;
  /** The second attempt; the first is the model's `eval_answers` row. */
  revision: string;
  revision_call_id: BigId;
  verdict_t1: AttemptVerdict;
  feedback_t1: string | null;
  verdict_t1_call_id: BigId;
  verdict_t2: AttemptVerdict;
  feedback_t2: string | null;
  verdict_t2_call_id: BigId;
  created_at: Timestamp;
}

/** The last step of a search tree whose nodes are all in `search_nodes` (migration 012). */
export interface SearchTreesTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  question_id: string;
  step: number;
  updated_at: Timestamp;
}

/** One node of a search tree (core/search/tree.ts; migration 012). */
export interface SearchNodesTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  question_id: string;
  node_id: number;
  parent_id: number | null;
  depth: number;
  /** The node's own fields, less id, parentId and depth (their columns). */
  data: Json<Record<string, unknown>>;
  updated_at: Timestamp;
}

/** The outcome of one question's SRA-MCTS search in the `mcts` stage (migration 013). */
export interface MctsRecordsTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  model_in: string;
  /** The chosen path's steps, in order. */
  steps: Json<string[]>;
  answer: string;
  value: number;
  reached_gate: boolean;
  rounds: number;
  nodes: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** The LLM calls one round of an `mcts` search made (migration 013). */
export interface MctsRoundCallsTable {
  campaign_id: string;
  iteration: number;
  question_id: string;
  round: number;
  /** llm_calls ids, as strings. */
  call_ids: Json<string[]>;
  created_at: Timestamp;
}

export type JudgmentSide = 'model' | 'base' | 'tie';

export interface JudgmentsTable {
  campaign_id: string;
  model_label: string;
  question_id: string;
  position: 'model-first' | 'base-first';
  judge_model: string;
  prompt_version: string;
  raw_text: string;
  status: 'ok' | 'unparseable';
  verdicts: ColumnType<Record<string, JudgmentSide> | null, string | null, string | null>;
  scores: ColumnType<
    { model: Record<string, number>; base: Record<string, number> } | null,
    string | null,
    string | null
  >;
  call_id: BigId;
  attempts: Defaulted<number>;
  created_at: Timestamp;
}

/** A question a stage gave up on; resolved once `campaign retry-failed` made its record. */
export interface FailedQuestionsTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  question_id: string;
  reason: string;
  http_status: number | null;
  call_ids: ColumnType<string[], string | undefined, string>;
  attempts: Defaulted<number>;
  resolved_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** A request being sent by one attempt (migration 009); others wait for its answer. */
export interface LlmCallClaimsTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  request_hash: string;
  /** The attempt holding it (a random id per call). */
  owner: string;
  lease_until: Timestamp;
}

/** Per-endpoint rate state shared by every worker (migration 006). */
export interface EndpointLimitsTable {
  endpoint: string;
  request_budget: number | null;
  token_budget: number | null;
  refilled_at: Defaulted<Date>;
  blocked_until: Date | null;
}

/** One request in flight at an endpoint, held by a worker process until released or expired. */
export interface EndpointLeasesTable {
  id: Generated<string>;
  endpoint: string;
  holder: string;
  acquired_at: Defaulted<Date>;
  expires_at: ColumnType<Date, Date | string, Date | string>;
}

/** Per stage iteration and endpoint: failing since when, without a success in between. */
export interface EndpointHealthTable {
  campaign_id: string;
  stage: string;
  iteration: number;
  role: string;
  base_url: string;
  model: string;
  failing_since: Timestamp | null;
  attempts: Defaulted<number>;
  last_error: string | null;
  updated_at: Timestamp;
}

/** Sum of `llm_calls.cost_usd` per campaign and stage, kept by a trigger (migration 008). */
export interface CampaignSpendTable {
  campaign_id: string;
  stage: string;
  cost_usd: number;
}

export interface Database {
  campaigns: CampaignsTable;
  questions: QuestionsTable;
  evolved_questions: EvolvedQuestionsTable;
  model_versions: ModelVersionsTable;
  stage_runs: StageRunsTable;
  llm_calls: LlmCallsTable;
  llm_call_claims: LlmCallClaimsTable;
  llm_batches: LlmBatchesTable;
  llm_batch_requests: LlmBatchRequestsTable;
  distill_records: DistillRecordsTable;
  datasets: DatasetsTable;
  finetune_jobs: FineTuneJobsTable;
  finetune_events: FineTuneEventsTable;
  assess_rounds: AssessRoundsTable;
  preference_pairs: PreferencePairsTable;
  rstar_candidates: RStarCandidatesTable;
  eval_answers: EvalAnswersTable;
  judgments: JudgmentsTable;
  self_corrections: SelfCorrectionsTable;
  row_scores: RowScoresTable;
  search_trees: SearchTreesTable;
  search_nodes: SearchNodesTable;
  mcts_records: MctsRecordsTable;
  mcts_round_calls: MctsRoundCallsTable;
  lines: LinesTable;
  line_heldout: LineHeldoutTable;
  line_iterations: LineIterationsTable;
  line_champions: LineChampionsTable;
  dataset_replay: DatasetReplayTable;
  failed_questions: FailedQuestionsTable;
  endpoint_limits: EndpointLimitsTable;
  endpoint_leases: EndpointLeasesTable;
  endpoint_health: EndpointHealthTable;
  campaign_spend: CampaignSpendTable;
}

export type Campaign = Selectable<CampaignsTable>;
export type QuestionRow = Selectable<QuestionsTable>;
export type NewEvolvedQuestion = Insertable<EvolvedQuestionsTable>;
export type LlmCallRow = Selectable<LlmCallsTable>;
export type NewLlmCall = Insertable<LlmCallsTable>;
export type DistillRecord = Selectable<DistillRecordsTable>;
export type NewDistillRecord = Insertable<DistillRecordsTable>;
export type DatasetRow = Selectable<DatasetsTable>;
export type FineTuneJobRow = Selectable<FineTuneJobsTable>;
export type ModelVersionRow = Selectable<ModelVersionsTable>;
export type LineRow = Selectable<LinesTable>;
export type LineIterationRow = Selectable<LineIterationsTable>;
export type LineChampionRow = Selectable<LineChampionsTable>;
export type FailedQuestionRow = Selectable<FailedQuestionsTable>;
