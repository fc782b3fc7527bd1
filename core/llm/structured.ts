/**
 * Structured replies (JSON-schema responses): parse them with zod — never a substring test —
 * and ask again, with a salt so the call log keeps each ask, when a reply does not parse.
 */
import type { z } from 'zod';
import type { ChatRequest, ChatResult, Endpoint, LlmCallScope, LlmGateway } from './gateway';

export function parseJsonReply<T>(text: string, schema: z.ZodType<T>): T | null {
  try {
    // Some servers wrap JSON in a fenced block even when asked for a schema.
    const unfenced = text.replace(/^\s*```(?:json)?\s*|\s*```\s*$/g, '');
    const parsed = schema.safeParse(JSON.parse(unfenced));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export interface StructuredReply<T> {
  /** The parsed reply, or null when no ask parsed. */
  value: T | null;
  /** The last call made (the one that parsed, or the last unparseable one). */
  call: ChatResult;
  attempts: number;
}

export async function askStructured<T>(
  llm: LlmGateway,
  scope: LlmCallScope,
  ep: Endpoint,
  req: ChatRequest & { jsonSchema: NonNullable<ChatRequest['jsonSchema']> },
  schema: z.ZodType<T>,
  maxAttempts: number,
): Promise<StructuredReply<T>> {
  let call: ChatResult | null = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    call = await llm.chat(scope, ep, {
      ...req,
      salt: attempt === 1 ? req.salt : `${req.salt ?? ''}reask-${attempt - 1}`,
    });
    const value = parseJsonReply(call.content, schema);
    if (value !== null) return { value, call, attempts: attempt };
  }
  return { value: null, call: call as ChatResult, attempts: maxAttempts };
}
