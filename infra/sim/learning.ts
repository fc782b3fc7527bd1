/**
 * What a simulated fine-tune may learn from: the server grades each row its adapters were trained
 * on against what the simulation knows the answer to be (the knowledge base, else the same
 * synthetic answer its strong model gives), with the simulator's own critic. A right answer is
 * good to learn, a wrong one (e.g. another question's answer) is not; a preference pair is good
 * when its chosen answer covers the reference better than its rejected one, bad when worse.
 */
import type { Grader } from './adapters';
import { questionOfPrompt } from './adapters';
import { coverageJudgment, verdict } from './grading';
import type { KnowledgeBase } from './knowledge';
import { syntheticAnswer } from './writing';

export function graderFor(kb: KnowledgeBase): Grader {
  return (row) => {
    const question = questionOfPrompt(row.question);
    const reference = (kb.find(question) ?? kb.find(row.question))?.reference ?? syntheticAnswer(question);
    if (row.kind === 'sft' || row.rejected === undefined)
      return verdict(reference, row.answer).correct ? 'good' : 'bad';
    const { winner } = coverageJudgment(question, reference, row.answer, row.rejected);
    return winner === 'A' ? 'good' : winner === 'B' ? 'bad' : 'neutral';
  };
}
