/** What every stage's prompts share: how a question is shown, and the role the model is trained for. */

export interface QuestionText {
  title?: string | null;
  question: string;
}

/** The question as the model sees it: title (when given) then body. */
export function renderQuestion(q: QuestionText): string {
  return q.title ? `${q.title}\n\n${q.question}` : q.question;
}

/** The system message of every training example and every answer the evaluation asks for. */
export function sftSystemPrompt(domain: string): string {
  return `You are an expert in ${domain}. Answer precisely and accurately.`;
}
