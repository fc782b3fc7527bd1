/**
 * What the call log keeps of a chat completion, however it arrived (online, in a provider batch,
 * or as the launch's canary): one reading of its choices, tokens and cached tokens.
 */
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { storableText } from '../db/storable-text';

/**
 * The prompt tokens a provider reports as read from its cache (OpenAI's
 * `usage.prompt_tokens_details.cached_tokens`), or null when it reports none. Anything but a count
 * within the prompt is left out rather than stored: a paid answer's log must never fail on it.
 */
export function cachedTokensOf(usage: ChatCompletion['usage']): number | null {
  const cached = usage?.prompt_tokens_details?.cached_tokens;
  if (typeof cached !== 'number' || !Number.isInteger(cached) || cached < 0) return null;
  return Math.min(cached, usage?.prompt_tokens ?? 0);
}

export interface LoggedCompletion {
  choices: string[];
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | null;
  /** The `llm_calls.response` object (before secrets are masked in its JSON). */
  response: {
    id: string;
    model: string;
    choices: string[];
    finishReasons: Array<ChatCompletion.Choice['finish_reason']>;
    usage: ChatCompletion['usage'] | null;
  };
}

/**
 * What the log, the caller and the records get of a completion; a U+0000 or a lone surrogate in
 * what the server sent is stored as U+FFFD (storable-text.ts), so an answer reused from the log is
 * the one first returned.
 */
export function loggedCompletion(completion: ChatCompletion): LoggedCompletion {
  const choices = completion.choices.map((c) => storableText(c.message?.content ?? ''));
  return {
    choices,
    promptTokens: completion.usage?.prompt_tokens ?? 0,
    completionTokens: completion.usage?.completion_tokens ?? 0,
    cachedTokens: cachedTokensOf(completion.usage),
    response: {
      id: storableText(completion.id ?? ''),
      model: storableText(completion.model ?? ''),
      choices,
      finishReasons: completion.choices.map((c) => c.finish_reason),
      usage: completion.usage ?? null,
    },
  };
}
