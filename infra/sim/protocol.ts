/**
 * Request bodies the simulator accepts, validated with zod. Unknown fields are ignored, as an
 * OpenAI-compatible server does; wrong types are a 400.
 */
import { z } from 'zod';

const ContentPart = z.object({ type: z.string(), text: z.string().optional() });

export const ChatMessageBody = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
});

const JsonSchemaFormat = z.object({
  type: z.literal('json_schema'),
  json_schema: z.object({
    name: z.string().min(1),
    schema: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
    description: z.string().optional(),
  }),
});

export const ResponseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  JsonSchemaFormat,
]);

export const REASONING_EFFORTS = ['minimal', 'low', 'medium', 'high'] as const;

export const ChatCompletionBody = z.object({
  model: z.string().min(1),
  messages: z.array(ChatMessageBody).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.number().int().min(1).max(64).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  seed: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  response_format: ResponseFormat.nullish(),
  // OpenAI's reasoning models; taken by every simulated model (it changes nothing in the reply).
  reasoning_effort: z.enum(REASONING_EFFORTS).nullish(),
  // vLLM extras (REFERENCE.md §4)
  use_beam_search: z.boolean().nullish(),
  /** vLLM's guided decoding: the schema itself (an object, or its JSON text). */
  guided_json: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
  best_of: z.number().int().min(1).max(64).nullish(),
  length_penalty: z.number().nullish(),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBody>;
export type ChatMessageBody = z.infer<typeof ChatMessageBody>;

export const LoadLoraBody = z.object({
  lora_name: z.string().min(1),
  lora_path: z.string().min(1),
  load_inplace: z.boolean().optional(),
});

export const UnloadLoraBody = z.object({ lora_name: z.string().min(1) });

export const FaultKind = z.enum(['429', '500', 'timeout']);
export type FaultKind = z.infer<typeof FaultKind>;

export const FaultsBody = z.object({
  failRate: z.number().min(0).max(1).optional(),
  faultKinds: z.array(FaultKind).min(1).optional(),
  hangMs: z.number().int().min(0).optional(),
  latencyMs: z.number().min(0).optional(),
  /** Retry-After of injected 429s: seconds, or an HTTP date. */
  retryAfter: z.string().min(1).optional(),
  /** The next N chat requests get a fault, whatever failRate says. */
  failNext: z.number().int().min(0).optional(),
});

export const BehaviourBody = z.object({
  judgeBias: z.enum(['first', 'second']).nullable().optional(),
  malformedRate: z.record(z.string(), z.number().min(0).max(1)).optional(),
  rejectQuestions: z.array(z.string()).optional(),
});

/** POST /sim/quirks: one served model's quirks (quirks.ts), null to clear them. */
export const QuirksBody = z.object({
  model: z.string().min(1),
  quirks: z
    .object({
      refuseTemperature: z.boolean().optional(),
      requireMaxCompletionTokens: z.boolean().optional(),
      noJsonSchema: z.boolean().optional(),
      noGuidedJson: z.boolean().optional(),
      nulInReply: z.boolean().optional(),
      loneSurrogateInReply: z.boolean().optional(),
    })
    .strict()
    .nullable(),
});

/** Text of a message whose content may be a string or a list of text parts. */
export function messageText(m: ChatMessageBody): string {
  if (typeof m.content === 'string') return m.content;
  if (!m.content) return '';
  return m.content.map((p) => p.text ?? '').join('');
}
