/**
 * One chat request → its n reply texts: picks the behaviour from the task and the model, and the
 * per-choice style from the decoding (greedy, sampling, beam search).
 */
import type { AnswerPlan } from './writing';
import type { Json, Resolver } from './structured';
import type { KnowledgeBase, KnowledgeItem } from './knowledge';
import type { SimModel } from './models';
import type { TaskInput } from './tasks';
import {
  biasedJudgment,
  coverageJudgment,
  judge,
  judgeResolver,
  judgmentJson,
  verdict,
  verdictResolver,
} from './grading';
import { factsResolver, fillSchema } from './structured';
import { hash32, keyTerms, normalize, pick, recall, sentences } from './text';
import {
  CLOSINGS,
  generalizedPlan,
  guideline,
  guidelineCheck,
  learnedPlan,
  render,
  revise,
  strongPlan,
  syntheticAnswer,
  termsOf,
  weakPlan,
} from './writing';

export interface Decoding {
  temperature: number;
  seed: number;
  n: number;
  beam: boolean;
}

interface ChoiceStyle {
  level: number;
  variant: number;
  closing?: string;
}

/** How many units the best beam adds over greedy: enough to be clearly more complete. */
const BEST_BEAM_LEVEL = 2;

function styles(question: string, d: Decoding): ChoiceStyle[] {
  const q = normalize(question);
  const variant = hash32('variant', q);
  return Array.from({ length: d.n }, (_, i): ChoiceStyle => {
    if (d.beam) {
      // Beams best first: the top beam is the most complete; the rest differ in their endings.
      if (i === 0) return { level: BEST_BEAM_LEVEL, variant };
      return { level: i < 3 ? 1 : 0, variant, closing: pick(CLOSINGS, i - 1) };
    }
    if (d.temperature > 0) {
      const h = hash32('sample', d.seed, i, q);
      const style: ChoiceStyle = { level: h % 4 === 3 ? 1 : 0, variant: h >>> 2 };
      if (h % 3 !== 0) style.closing = pick(CLOSINGS, h >>> 7);
      return style;
    }
    return { level: 0, variant };
  });
}

function answerPlan(
  model: SimModel,
  task: TaskInput,
  known: KnowledgeItem | undefined,
  variant: number,
): AnswerPlan {
  const q = task.question;
  if (model.kind === 'strong' || model.kind === 'judge') return strongPlan(q, known);
  const adapter = model.adapter;
  // An adapter whose data taught nothing right (e.g. shuffled answers) is the base model still.
  if (!adapter || adapter.learnedNothing) return weakPlan(q, known?.reference, variant);
  const learned = adapter.index.find(q) ?? adapter.index.find(task.text);
  if (learned) return learnedPlan(q, learned.answer);
  const near = adapter.index.nearest(q);
  const nearest = near ? { answer: near.value.answer, score: near.score } : undefined;
  return generalizedPlan(q, known?.reference, adapter.skills, nearest, variant);
}

/** Shares of self-revisions that complete the answer, and that second-guess it, by critique skill. */
const SELF_FIX = { base: 0.15, perCritique: 0.35 };
const SELF_BREAK = { base: 0.2 };

/**
 * A model asked to check its own answer, told only that it *might* be wrong (SCoRe's probe). Like
 * the base models SCoRe measured, it mostly stands by its answer, sometimes adds what it held back,
 * and sometimes talks itself out of a right answer; a fine-tune's critique skill makes it fix more
 * and break less. Decided per model and question, so greedy revisions are reproducible.
 */
function selfRevised(
  model: SimModel,
  task: TaskInput,
  known: KnowledgeItem | undefined,
  style: ChoiceStyle,
): string {
  const previous = task.previousAnswer ?? '';
  const critique = model.adapter?.skills.critique ?? 0;
  const draw = hash32('self-revision', model.id, normalize(task.question)) / 2 ** 32;
  const fix = SELF_FIX.base + SELF_FIX.perCritique * critique;
  if (draw < fix) {
    const fuller = render(answerPlan(model, task, known, style.variant), style.level + 2);
    return `On review, the solution above leaves out steps. Corrected solution: ${fuller}`;
  }
  if (draw < fix + SELF_BREAK.base * (1 - critique)) {
    const first = sentences(previous)[0] ?? previous;
    return `On review, I am not confident in most of the solution above, so I keep only what I am sure of: ${first}`;
  }
  // Stands by it: the solution rewritten as it was.
  return previous;
}

function answerText(
  model: SimModel,
  task: TaskInput,
  known: KnowledgeItem | undefined,
  style: ChoiceStyle,
): string {
  if (task.selfRevision) return selfRevised(model, task, known, style);
  const text = render(answerPlan(model, task, known, style.variant), style.level);
  // The strong model varies only in completeness; chatty closings are the smaller models' habit.
  const chatty = model.kind === 'weak' || model.kind === 'adapter';
  const withClosing = style.closing && chatty ? `${text} ${style.closing}` : text;
  if (task.feedback) return revise(task.previousAnswer ?? withClosing, task.feedback);
  return withClosing;
}

/**
 * A tree search's next step by this model: the first sentence of its own answer that the steps so
 * far and the proposals already rejected do not have — so what it proposes is what it knows.
 */
function nextStep(
  model: SimModel,
  task: TaskInput,
  known: KnowledgeItem | undefined,
  style: ChoiceStyle,
): string {
  const taken = new Set([...(task.steps ?? []), ...(task.earlierSteps ?? [])].map(normalize));
  const own = sentences(render(answerPlan(model, task, known, style.variant), BEST_BEAM_LEVEL));
  return own.find((s) => !taken.has(normalize(s))) ?? 'Together, the steps above answer the question.';
}

/** Shares of evolved questions that barely change the seed (the novelty check must drop them). */
const EVOLVE_NEAR_COPY = 0.2;

/**
 * A question rewritten by the strong model (task evolution): the seed with a constraint, a cause,
 * a concrete setting or more steps added, or a new question on the seed's terms — and, for a
 * share of seeds, the seed nearly as it was, as real models sometimes return.
 */
function evolvedQuestion(task: TaskInput, seed: number, choice: number): { title: string; question: string } {
  const q = task.question;
  const t = termsOf(q, 4);
  const h = hash32('evolve', seed, choice, normalize(q));
  if (h / 2 ** 32 < EVOLVE_NEAR_COPY) return { title: '', question: `${q} Please explain.` };
  const title = `${t[0] ?? 'The setup'}: a harder case`;
  switch (task.evolveMethod) {
    case 'add-constraints':
      return {
        title,
        question: `${q} The fix must not restart any running workload and must keep ${t[1] ?? 'the service'} available throughout.`,
      };
    case 'deepen':
      return {
        title,
        question: `${q} Why does this happen at the level of ${t[1] ?? 'the system'}, and what else does that cause break?`,
      };
    case 'concretize':
      return {
        title,
        question: `${q} Assume three replicas behind one Service in a production namespace, with ${t[2] ?? 'quotas'} enforced.`,
      };
    case 'more-reasoning':
      return {
        title,
        question: `${q} Walk through how to confirm the cause, then the fix, then how to verify it worked for ${t[1] ?? 'the workload'}.`,
      };
    default:
      return {
        title: `${t[1] ?? 'Another topic'} under load`,
        question: `How should ${t[1] ?? 'the component'} be tuned when ${t[0] ?? 'the setup'} grows tenfold, and what signals show it is time to act?`,
      };
  }
}

/**
 * An rStar action by this model: steps are the sentences of its own answer, a final answer the
 * key terms of what it would answer in full — samples that word their answer differently name
 * other terms, so self-consistency and the discriminator have something to count.
 */
function rstarReply(
  model: SimModel,
  task: TaskInput,
  known: KnowledgeItem | undefined,
  style: ChoiceStyle,
): string {
  const steps = task.steps ?? [];
  const own = render(answerPlan(model, task, known, style.variant), BEST_BEAM_LEVEL);
  const answer = `The answer is: ${keyTerms(own, 3).join(', ')}`;
  const covered = (more: string) => verdict(referenceFor(task, known), [...steps, more].join(' ')).correct;
  switch (task.action) {
    case 'A5':
      return `Conditions: ${termsOf(task.question, 4).join('; ')}`;
    case 'A2': {
      const taken = new Set(steps.map(normalize));
      const rest = sentences(own).filter((s) => !taken.has(normalize(s)));
      return `${rest.join(' ')}\n${answer}`;
    }
    case 'A3': {
      const sub = nextStep(model, task, known, style);
      const text = `Sub-question: What does ${termsOf(sub, 2).join(' and ')} change here?\nSub-answer: ${sub}`;
      return covered(sub) ? `${text}\n${answer}` : text;
    }
    case 'A4':
      return `Sub-answer: ${nextStep(model, { ...task, steps: steps.slice(0, -1) }, known, style)}`;
    default: {
      const step = nextStep(model, task, known, style);
      return covered(step) ? `Next step: ${step}\n${answer}` : `Next step: ${step}`;
    }
  }
}

function referenceFor(task: TaskInput, known: KnowledgeItem | undefined): string {
  return task.reference ?? known?.reference ?? syntheticAnswer(task.question);
}

function structured(task: TaskInput, fallback: Json, resolver: Resolver): string {
  const hasProperties = task.schema !== undefined && typeof task.schema['properties'] === 'object';
  return JSON.stringify(hasProperties ? fillSchema(task.schema, resolver) : fallback);
}

/** Simulated misbehaviour that changes what is generated (see behaviour.ts). */
export interface GenerateOptions {
  /** A position-biased judge: this side wins every pairwise_judgment. */
  judgeSide?: 'A' | 'B' | undefined;
}

export function generate(
  model: SimModel,
  task: TaskInput,
  kb: KnowledgeBase,
  d: Decoding,
  opts: GenerateOptions = {},
): string[] {
  const known = kb.find(task.question) ?? kb.find(task.text);
  return styles(task.question, d).map((style, i) => {
    switch (task.kind) {
      case 'guideline': {
        const text = guideline(task.question, task.domain, d.temperature > 0 ? style.variant : 0);
        return task.jsonObject ? JSON.stringify({ guideline: text }) : text;
      }
      case 'strong_answer': {
        const strong = model.kind === 'strong' || model.kind === 'judge';
        const check = strong ? guidelineCheck(task.question) : { correct: true, correction: null };
        const answer = answerText(model, task, known, style);
        const doc = { guidelineCorrect: check.correct, correction: check.correction, answer };
        return structured(
          task,
          doc,
          factsResolver({ guidelinecorrect: check.correct, correction: check.correction, answer }),
        );
      }
      case 'verdict': {
        const v = verdict(referenceFor(task, known), task.candidate ?? '');
        return structured(task, { correct: v.correct, feedback: v.feedback }, verdictResolver(v));
      }
      case 'judge': {
        // A model comparing its own answers (contrast stage) goes by coverage of the reference alone;
        // the evaluation's judge weighs five aspects with a judge's noise (grading.ts).
        const compare = task.schemaName === 'pairwise_self_critique' ? coverageJudgment : judge;
        const fair = compare(
          task.question,
          referenceFor(task, known),
          task.answerA ?? '',
          task.answerB ?? '',
        );
        const j = opts.judgeSide ? biasedJudgment(fair, opts.judgeSide) : fair;
        return structured(task, judgmentJson(j), judgeResolver(j));
      }
      case 'structured': {
        const answer = answerText(model, task, known, style);
        return structured(
          task,
          { answer },
          factsResolver({ answer, response: answer, content: answer, text: answer, output: answer }),
        );
      }
      case 'answer': {
        const answer = answerText(model, task, known, style);
        return task.jsonObject ? JSON.stringify({ answer }) : answer;
      }
      case 'step':
        return `Next step: ${nextStep(model, task, known, style)}`;
      case 'rstar':
        return rstarReply(model, task, known, style);
      case 'evolve': {
        const q = evolvedQuestion(task, d.seed, i);
        return structured(task, q, factsResolver({ title: q.title, question: q.question }));
      }
      case 'reflection': {
        // Solved once the steps would pass the critic; else the first point they still miss.
        const v = verdict(referenceFor(task, known), (task.steps ?? []).join(' '));
        const nextFocus = v.correct ? '' : (v.feedback.split('It should also say: ')[1] ?? v.feedback);
        return structured(
          task,
          { solved: v.correct, nextFocus },
          factsResolver({ solved: v.correct, nextfocus: nextFocus }),
        );
      }
      case 'row_score': {
        // The training-row filter: 1–10 by how much of what the answer needs the response covers.
        const coverage = recall(referenceFor(task, known), task.candidate ?? '');
        const score = 1 + Math.round(90 * coverage) / 10;
        const reason = `The response covers about ${Math.round(coverage * 100)}% of what the answer needs.`;
        return structured(task, { reason, score }, factsResolver({ reason, score }));
      }
      case 'step_score': {
        const coverage = recall(referenceFor(task, known), (task.steps ?? []).join(' '));
        const score = Math.round(100 * coverage) / 10;
        const reason = `The reasoning covers about ${Math.round(coverage * 100)}% of what the answer needs.`;
        return structured(task, { reason, score }, factsResolver({ reason, score }));
      }
    }
  });
}
