/**
 * Request shaping (issue 14): an endpoint without shaping fields sends exactly what it sent before
 * (its logged calls keep their hashes); each field and each provider preset changes only what it
 * says; the spec fills a preset's base URL and names the field a missing one needs.
 */
import { describe, expect, it } from 'vitest';
import { PRESETS, PROVIDERS, shapeRequest, shapingOf } from '../../core/llm/request-shape';
import { EndpointSchema } from '../../core/spec';

const SCHEMA = { name: 'verdict', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } };
const messages = [
  { role: 'system' as const, content: 'You grade answers.' },
  { role: 'user' as const, content: 'Is 2 + 2 = 4?' },
];

function endpoint(fields: Record<string, unknown>) {
  return EndpointSchema.parse({ model: 'm', baseURL: 'http://localhost:8000/v1', ...fields });
}

function body(
  fields: Record<string, unknown>,
  req: { jsonSchema?: typeof SCHEMA; temperature?: number } = {},
) {
  const ep = endpoint(fields);
  return shapeRequest(
    {
      ...shapingOf(ep),
      maxTokens: ep.maxTokens,
      extraBody: ep.extraBody,
      reasoningEffort: ep.reasoningEffort,
    },
    { model: ep.model, messages, maxTokens: 64, ...req },
  );
}

describe('request shaping', () => {
  it('sends, with nothing stated, exactly the request of before: max_tokens, temperature 0, json_schema', () => {
    expect(JSON.parse(JSON.stringify(body({}, { jsonSchema: SCHEMA, temperature: 0 })))).toEqual({
      model: 'm',
      messages,
      temperature: 0,
      max_tokens: 64,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'verdict', schema: SCHEMA.schema, strict: true },
      },
    });
    // A free-text call takes the endpoint's temperature.
    expect(body({ temperature: 0.4 }).temperature).toBe(0.4);
  });

  it('omits temperature everywhere with temperature: omit, and sends max_completion_tokens when asked', () => {
    const b = body({ temperature: 'omit', tokenLimitField: 'max_completion_tokens' }, { temperature: 0 });
    expect(b.temperature).toBeUndefined();
    expect(b.max_tokens).toBeUndefined();
    expect(b.max_completion_tokens).toBe(64);
  });

  it('asks for structured replies as json_object, guided_json or in the prompt only, the schema in the prompt', () => {
    const marker = `Reply with only a JSON object conforming to the JSON Schema "verdict":\n${JSON.stringify(SCHEMA.schema)}`;
    for (const mode of ['json_object', 'guided_json', 'none'] as const) {
      const b = body({ structuredOutput: mode }, { jsonSchema: SCHEMA });
      const last = b.messages[b.messages.length - 1];
      expect(last?.role).toBe('user');
      expect(last?.content).toBe(`Is 2 + 2 = 4?\n\n${marker}`);
      expect(b.messages[0]).toEqual(messages[0]);
      expect(b.response_format).toEqual(mode === 'json_object' ? { type: 'json_object' } : undefined);
      expect(b.guided_json).toEqual(mode === 'guided_json' ? SCHEMA.schema : undefined);
    }
    // A free-text call is left alone.
    expect(body({ structuredOutput: 'json_object' }).response_format).toBeUndefined();
  });

  it('adds extraBody and reasoning_effort to every request', () => {
    const b = body({ extraBody: { top_k: 1 }, reasoningEffort: 'low' });
    expect(b).toMatchObject({ top_k: 1, reasoning_effort: 'low' });
  });
});

describe('provider presets', () => {
  it('openai: its base URL, max_completion_tokens, and no temperature for reasoning models only', () => {
    const gpt4o = EndpointSchema.parse({ provider: 'openai', model: 'gpt-4o' });
    expect(gpt4o.baseURL).toBe('https://api.openai.com/v1');
    expect(shapingOf(gpt4o)).toEqual({
      tokenLimitField: 'max_completion_tokens',
      temperature: 0,
      structuredOutput: 'json_schema',
    });
    for (const model of ['o3-mini', 'o4-mini', 'gpt-5', 'gpt-5-mini']) {
      expect(shapingOf(EndpointSchema.parse({ provider: 'openai', model })).temperature).toBe('omit');
    }
    // What the spec states wins over the preset.
    const stated = EndpointSchema.parse({
      provider: 'openai',
      model: 'gpt-5',
      temperature: 1,
      tokenLimitField: 'max_tokens',
    });
    expect(shapingOf(stated)).toMatchObject({ temperature: 1, tokenLimitField: 'max_tokens' });
  });

  it('fills each preset base URL; azure-openai and no preset need one, and the spec says so', () => {
    for (const provider of PROVIDERS) {
      const preset = PRESETS[provider];
      if (preset.baseURL === null) continue;
      expect(EndpointSchema.parse({ provider, model: 'm' }).baseURL).toBe(preset.baseURL);
    }
    const azure = EndpointSchema.safeParse({ provider: 'azure-openai', model: 'gpt-4o' });
    expect(azure.success).toBe(false);
    expect(azure.error?.issues[0]?.path).toEqual(['baseURL']);
    expect(azure.error?.issues[0]?.message).toContain('https://RESOURCE.openai.azure.com/openai/v1');
    const none = EndpointSchema.safeParse({ model: 'm' });
    expect(none.error?.issues[0]?.path).toEqual(['baseURL']);
    expect(EndpointSchema.safeParse({ provider: 'bedrock', model: 'm' }).error?.issues[0]?.path).toEqual([
      'provider',
    ]);
  });
});
