/**
 * The texts the simulated models write. Everything is a pure function of its inputs (variants
 * are picked by hash), so the same request always gets the same reply.
 *
 * An answer is a plan: `base` text plus ordered `units` that make it more complete. Greedy
 * decoding writes the base; beam search and some samples add units, which is how "more
 * compute" yields a better answer in the simulation.
 */
import type { Skills } from './adapters';
import type { KnowledgeItem } from './knowledge';
import { ensurePeriod, hash32, keyTerms, normalize, pick, sentences } from './text';

export interface AnswerPlan {
  base: string;
  units: string[];
  /** Text that introduces the units (e.g. "More precisely:"); empty for none. */
  lead: string;
}

export function termsOf(question: string, max: number): string[] {
  const terms = keyTerms(question.replace(/^synthetic question \d+:\s*/i, ''), max);
  return terms.length > 0 ? terms : ['the setup'];
}

const at = (terms: readonly string[], i: number) => terms[i % terms.length] ?? 'the setup';

/** Weak-model guideline: 4–6 numbered steps built from the question's key terms only (never the answer). */
export function guideline(question: string, domain: string | undefined, variant: number): string {
  const t = termsOf(question, 6);
  const h = hash32('guideline', normalize(question));
  const where = domain ? ` in ${domain}` : '';
  const identify = pick(
    [
      `Identify exactly what is being asked about ${at(t, 0)} and ${at(t, 1)}, and restate the goal in one sentence before reasoning.`,
      `Start by identifying the goal: what should happen with ${at(t, 0)}, and what actually happens instead.`,
    ],
    variant,
  );
  const check = `Check the concepts involved (${t.slice(0, 3).join(', ')}): recall how each one works and which settings or defaults govern it${where}.`;
  const compare = `Compare the plausible explanations or options for ${at(t, 2)}; rule out the ones that do not fit the details given in the question.`;
  const verify = `Verify the chosen explanation against every detail of the question, especially anything about ${at(t, 3)}.`;
  const pitfalls = `Point out the common pitfalls, such as confusing ${at(t, 0)} with a related setting or changing several things at once, and how to avoid them.`;
  const conclude = pick(
    [
      'Conclude with a concrete, actionable answer, including a short command, configuration or example where it helps.',
      'End with the recommended fix first, then the reasoning that supports it, with an example where useful.',
    ],
    variant >>> 3,
  );
  const count = 4 + (h % 3);
  const steps =
    count === 4
      ? [identify, check, verify, conclude]
      : count === 5
        ? [identify, check, compare, verify, conclude]
        : [identify, check, compare, verify, pitfalls, conclude];
  return steps.map((s, i) => `${i + 1}. ${s}`).join('\n');
}

/** A plausible, deterministic expert paragraph for a question nobody gave the simulator an answer to. */
export function syntheticAnswer(question: string): string {
  const t = termsOf(question, 4);
  const h = hash32('synthetic', normalize(question));
  return [
    pick(
      [
        `The behaviour described comes down to how ${at(t, 0)} interacts with ${at(t, 1)}.`,
        `In short, ${at(t, 0)} is the deciding factor here, together with the way ${at(t, 1)} is configured.`,
        `The key point is that ${at(t, 1)} depends on ${at(t, 0)}, so the two have to be examined together.`,
      ],
      h,
    ),
    `First confirm the current state of ${at(t, 0)}, then check whether ${at(t, 1)} matches what ${at(t, 2)} expects; a mismatch there is the usual cause.`,
    `Fix it by changing the one setting that is actually wrong rather than several at once, and keep the change under version control so it can be reviewed and rolled back.`,
    `Finally, verify the result directly by inspecting ${at(t, 0)} again, and note any version-specific defaults for ${at(t, 3)} that could change this answer.`,
  ].join(' ');
}

/** Generic elaborations that make any answer more complete (verification, pitfalls, limits). */
export function elaborations(question: string): string[] {
  const t = termsOf(question, 4);
  return [
    `To confirm the fix, check ${at(t, 0)} again afterwards (for example by inspecting its current state or logs) rather than assuming the change took effect.`,
    `A common pitfall is changing ${at(t, 1)} together with other settings; change one thing at a time and re-check after each change.`,
    `If this does not match what you observe, compare your ${at(t, 2)} setup with the documented defaults for your version, since they have changed over time.`,
  ];
}

/** The units of `candidates` not already said in `text`. */
function missingFrom(text: string, candidates: readonly string[]): string[] {
  const have = normalize(text);
  return candidates.filter((c) => !have.includes(normalize(c)));
}

const OPENERS = [
  (t: string[]) => `In general, problems like this with ${at(t, 0)} usually come down to configuration.`,
  (t: string[]) => `This is a common issue with ${at(t, 0)} and ${at(t, 1)}.`,
  (t: string[]) => `There can be several reasons for this, most of them related to ${at(t, 0)}.`,
  (t: string[]) => `It depends on your setup, but ${at(t, 0)} is usually where to look first.`,
];

const ADVICE = [
  (t: string[]) =>
    `Check the logs and the documentation for ${at(t, 0)}, make sure ${at(t, 1)} is configured correctly, and try again.`,
  (t: string[]) =>
    `I would review the configuration of ${at(t, 1)}, look for error messages, and search for similar reports.`,
  (t: string[]) =>
    `Try restarting the affected component after double-checking ${at(t, 0)}; that often resolves it.`,
];

/** The first part of a sentence, trailing off: partly right, never the whole point. */
function blurred(sentence: string): string {
  const w = sentence.replace(/[.!?]$/, '').split(/\s+/);
  let keep = Math.max(3, Math.ceil(w.length * 0.45));
  // Do not trail off on "the", "when", "a"...: end on a word that carries meaning.
  while (
    keep > 2 &&
    /^(the|a|an|and|or|of|to|in|on|at|by|for|with|when|if|is|are|it|that|which)$/i.test(w[keep - 1] ?? '')
  )
    keep--;
  return w
    .slice(0, keep)
    .join(' ')
    .replace(/[,;:]$/, '');
}

/** Share of questions whose first point the base model knows whole (a familiar topic), not half. */
const FAMILIAR_SHARE = 0.3;

/** Base weak model: generic, shallow, partly correct. `known` is what the simulation knows the real answer to be. */
export function weakPlan(question: string, known: string | undefined, variant: number): AnswerPlan {
  const t = termsOf(question, 3);
  const first = known ? sentences(known)[0] : undefined;
  const parts = [pick(OPENERS, variant)(t)];
  // Some topics the base model knows better than others: a fine-tune's gain varies by question.
  const familiar = hash32('familiar', normalize(question)) / 2 ** 32 < FAMILIAR_SHARE;
  if (first) {
    const point = familiar ? first.replace(/[.!?]$/, '') : blurred(first);
    parts.push(`I think it is related to this: ${point}, but the details depend on your environment.`);
  }
  parts.push(pick(ADVICE, variant >>> 4)(t));
  const base = parts.join(' ');
  const knownUnits = known
    ? missingFrom(base, sentences(known).slice(0, 3)).slice(0, 2)
    : sentences(syntheticAnswer(question)).slice(1, 3);
  return { base, units: [...knownUnits, ...elaborations(question).slice(0, 1)], lead: 'More precisely:' };
}

/** A fine-tuned adapter on a question it was trained on: the learned answer, elaborations as extra units. */
export function learnedPlan(question: string, answer: string): AnswerPlan {
  return { base: answer, units: missingFrom(answer, elaborations(question)), lead: '' };
}

/**
 * The share of unseen questions an adapter mistakes for a learned case: MISTAKEN_MIN even with
 * every skill (some questions just look like another), up to MISTAKEN_MIN + MISTAKEN_SPAN with none.
 */
const MISTAKEN_MIN = 0.1;
const MISTAKEN_SPAN = 0.25;
/** Topic overlap (Jaccard) above which an adapter recalls a learned case as related. */
const RELATED_MIN = 0.15;
/** Topic overlap from which a question can be mistaken for a learned case (below: nothing alike). */
const MISTAKABLE_MIN = 0.05;

/** The learned case nearest to a question: its answer and topic overlap (Jaccard, 0..1). */
export interface NearestCase {
  answer: string;
  score: number;
}

/**
 * A fine-tuned adapter on a question it was not trained on: never the whole answer, and the
 * better the more skilled the adapter (see adapters.ts, skillsOf):
 * - knowledge: how many of the answer's points it states outright (at least the first, where the
 *   base model half-states it), then the next one half-known and hedged;
 * - critique: whether it leaves out what it cannot back up (that hedge, the recalled nearest
 *   learned case — a digression here — and generic advice);
 * - preference: whether it drops the filler opener and the generic advice.
 * Wrong transfer: on some questions (fewer with every skill) it takes the question for
 * the nearest case it learned (when they have topic words in common) and answers that one,
 * half-stating this one's first point only: then it is no better than the base model.
 * Each choice compares a skill with a per-question draw that is the same for every adapter, so
 * on each question a more skilled descendant does at least as well as its ancestor.
 */
export function generalizedPlan(
  question: string,
  known: string | undefined,
  skills: Skills,
  nearest: NearestCase | undefined,
  variant: number,
): AnswerPlan {
  const q = normalize(question);
  const nearestPoint = nearest && nearest.score >= MISTAKABLE_MIN ? sentences(nearest.answer)[0] : undefined;
  const related = nearest && nearest.score >= RELATED_MIN ? nearestPoint : undefined;
  const draw = (aspect: string) => hash32('generalize', aspect, q) / 2 ** 32;
  const t = termsOf(question, 3);
  const knownSentences = known ? sentences(known) : sentences(syntheticAnswer(question));
  const n = knownSentences.length;
  const mistaken =
    nearestPoint !== undefined &&
    draw('mistaken') <
      MISTAKEN_MIN + MISTAKEN_SPAN * (1 - skills.knowledge) * (1 - skills.critique) * (1 - skills.preference);
  // knowledge × n points on average (the draw rounds it per question), at least one, never all.
  const stated = mistaken
    ? 0
    : Math.max(1, Math.min(n - 1, Math.floor(skills.knowledge * n + draw('stated'))));
  const parts: string[] = [];
  if (draw('opener') >= skills.preference) parts.push(pick(OPENERS, variant)(t));
  if (mistaken && nearestPoint)
    parts.push(`This is the same problem as one I know well: ${ensurePeriod(nearestPoint)}`);
  parts.push(...knownSentences.slice(0, stated));
  const next = knownSentences[stated];
  if (next && (mistaken || draw('hedge') >= skills.critique))
    parts.push(`Possibly also relevant, though I am not sure: ${blurred(next)}...`);
  if (related && !mistaken && draw('related') >= skills.critique)
    parts.push(`A related case: ${ensurePeriod(related)}`);
  if (draw('advice') >= Math.max(skills.critique, skills.preference))
    parts.push(pick(ADVICE, variant >>> 4)(t));
  const base = parts.join(' ');
  return {
    base,
    units: [...missingFrom(base, knownSentences.slice(0, stated + 2)), ...elaborations(question).slice(0, 1)],
    lead: 'More precisely:',
  };
}

/** The strong model: the known reference (or a synthetic expert paragraph), elaborations as units. */
export function strongPlan(question: string, known: KnowledgeItem | undefined): AnswerPlan {
  const answer = known ? known.reference : syntheticAnswer(question);
  return { base: answer, units: missingFrom(answer, elaborations(question)), lead: '' };
}

export function render(plan: AnswerPlan, level: number): string {
  const units = plan.units.slice(0, Math.max(0, level));
  if (units.length === 0) return plan.base;
  return `${plan.base}\n\n${plan.lead ? `${plan.lead} ` : ''}${units.join(' ')}`;
}

/** Closing remarks that distinguish lower-ranked beams and samples from each other. */
export const CLOSINGS = [
  'Hope this helps.',
  'Details may vary between versions.',
  'Let me know if the problem persists.',
  'This should cover the typical case.',
  'Test the change in a non-production environment first.',
  'The official documentation has more background on this.',
  'Other causes are possible, but this is the most common one.',
  'That is the usual approach.',
  'Keep an eye on it after the change.',
  'This answer assumes a default installation.',
  'Your exact setup may need small adjustments.',
];

/** Re-answer after critique: the previous answer plus what the feedback says is missing. */
export function revise(previous: string, feedback: string): string {
  const marker = /should also (?:say|mention|explain)[^:]*:\s*/i.exec(feedback);
  const hints = marker ? feedback.slice(marker.index + marker[0].length) : feedback;
  // Keep the substance; drop verdict phrases and short instructions ("Answer again.").
  const keep = sentences(hints).filter(
    (s) => !/^(the|your|this) answer\b|^(incorrect|correct|wrong)\b/i.test(s) && s.split(/\s+/).length >= 4,
  );
  const add = missingFrom(previous, keep.length > 0 ? keep : [hints]);
  if (add.length === 0) return previous;
  return `${previous}\n\nRevised after the feedback: ${add.join(' ')}`;
}

/** Guideline correction for the share of questions where the strong model disagrees with the guideline. */
export function guidelineCheck(question: string): { correct: boolean; correction: string | null } {
  const h = hash32('guideline-check', normalize(question));
  if (h % 5 !== 0) return { correct: true, correction: null };
  const t = termsOf(question, 3);
  const step = 2 + ((h >>> 8) % 2);
  return {
    correct: false,
    correction: `Step ${step} is misleading: it treats ${at(t, 0)} as settled without checking it. ${at(t, 0)} has to be verified first, because ${at(t, 1)} depends on it; the answer below does that.`,
  };
}
