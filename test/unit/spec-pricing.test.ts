/**
 * `models.<role>.pricing` (issue 12): cached-input and batch prices are optional, so specs written
 * before them parse — by the zod schema and by the JSON Schema editors read — to the same prices
 * as before; a bad price is refused with the field it is in.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { pricesFor } from '../../core/llm/pricing';
import { CampaignSpecSchema, PricingSchema } from '../../core/spec';

const ROOT = path.resolve(__dirname, '..', '..');

interface JsonSchemaNode {
  type?: string;
  required?: string[];
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: boolean;
  minimum?: number;
  default?: unknown;
  description?: string;
}
const jsonSchema = JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'campaign.schema.json'), 'utf8')) as {
  properties: { models: { properties: Record<string, { properties: { pricing: JsonSchemaNode } }> } };
};

const base = {
  name: 'x',
  domain: 'Kubernetes operations',
  questions: { train: 't.jsonl' },
  models: {
    weak: { baseURL: 'http://localhost:8000/v1', model: 'w' },
    strong: {
      baseURL: 'https://api.openai.com/v1',
      model: 'gpt-4o',
      pricing: { inputPerMTok: 2.5, outputPerMTok: 10 },
    },
  },
  fineTune: { type: 'local', command: 'infra/trainer/run' },
  stages: { evaluate: { enabled: false } },
};

const withStrongPricing = (pricing: unknown) => ({
  ...base,
  models: { ...base.models, strong: { ...base.models.strong, pricing } },
});

function issues(spec: unknown): Array<[string, string]> {
  const r = CampaignSpecSchema.safeParse(spec);
  expect(r.success).toBe(false);
  return (r.error?.issues ?? []).map((i) => [i.path.join('.'), i.message]);
}

describe('pricing in the spec', () => {
  it('takes specs written before cached and batch prices, to the same prices as before', () => {
    const parsed = CampaignSpecSchema.parse(base);
    // Nothing derived is stored: the spec reads back as written.
    expect(parsed.models.strong.pricing).toEqual({ inputPerMTok: 2.5, outputPerMTok: 10 });
    expect(parsed.models.weak.pricing).toEqual({ inputPerMTok: 0, outputPerMTok: 0 });
    expect(pricesFor(parsed.models.strong.pricing, 'online')).toEqual({
      inputPerMTok: 2.5,
      cachedInputPerMTok: 2.5,
      outputPerMTok: 10,
    });
    expect(pricesFor(parsed.models.strong.pricing, 'batch')).toEqual({
      inputPerMTok: 1.25,
      cachedInputPerMTok: 1.25,
      outputPerMTok: 5,
    });

    // The examples and the v0.1.0 spec stored in the upgrade fixture parse as they are.
    for (const file of ['examples/kubernetes-ops/campaign.yaml', 'examples/ab-testing/campaign.yaml']) {
      const spec = parse(readFileSync(path.join(ROOT, file), 'utf8')) as unknown;
      expect(CampaignSpecSchema.safeParse(spec).success, file).toBe(true);
    }
    const v010 = JSON.parse(
      readFileSync(path.join(ROOT, 'test', 'fixtures', 'v0.1.0-db', 'campaign-spec.json'), 'utf8'),
    ) as { models: Record<string, { pricing: unknown }> };
    expect(CampaignSpecSchema.safeParse(v010).success).toBe(true);
    const again = CampaignSpecSchema.parse(v010);
    for (const role of ['weak', 'strong', 'judge'] as const) {
      expect(again.models[role]?.pricing).toEqual(v010.models[role]?.pricing);
    }
  });

  it('takes cached and batch prices', () => {
    const good = [
      withStrongPricing({ inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 1.25 }),
      withStrongPricing({
        inputPerMTok: 2.5,
        outputPerMTok: 10,
        batch: { inputPerMTok: 1.25, outputPerMTok: 5 },
      }),
      withStrongPricing({
        inputPerMTok: 3,
        outputPerMTok: 15,
        cachedInputPerMTok: 0.3,
        batch: { inputPerMTok: 1.5, outputPerMTok: 7.5, cachedInputPerMTok: 0.15 },
      }),
    ];
    for (const spec of good) expect(CampaignSpecSchema.safeParse(spec).success).toBe(true);
    const parsed = CampaignSpecSchema.parse(good[2]);
    expect(pricesFor(parsed.models.strong.pricing, 'batch')).toEqual({
      inputPerMTok: 1.5,
      cachedInputPerMTok: 0.15,
      outputPerMTok: 7.5,
    });
  });

  it("in the JSON Schema editors read: the new prices optional, each role's pricing as zod generates it", () => {
    const generated = JSON.parse(
      JSON.stringify(z.toJSONSchema(PricingSchema, { io: 'input', unrepresentable: 'any' })),
    ) as JsonSchemaNode;
    const { $schema: _, ...node } = generated as JsonSchemaNode & { $schema?: string };
    for (const role of ['weak', 'strong', 'judge', 'discriminator']) {
      const pricing = jsonSchema.properties.models.properties[role]?.properties.pricing;
      expect(pricing, role).toEqual(node);
      // An old spec's pricing needs no more than it did, and may still leave pricing out.
      expect(pricing?.required).toEqual(['inputPerMTok', 'outputPerMTok']);
      expect(pricing?.default).toEqual({ inputPerMTok: 0, outputPerMTok: 0 });
      expect(pricing?.additionalProperties).toBe(false);
      expect(pricing?.properties?.['cachedInputPerMTok']).toMatchObject({ type: 'number', minimum: 0 });
      const batch = pricing?.properties?.['batch'];
      expect(batch?.required).toEqual(['inputPerMTok', 'outputPerMTok']);
      expect(batch?.description).toContain('half of every online price');
    }
  });

  it('refuses a bad price, naming its field', () => {
    expect(
      issues(withStrongPricing({ inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: -1 })),
    ).toEqual([['models.strong.pricing.cachedInputPerMTok', 'Too small: expected number to be >=0']]);
    expect(
      issues(withStrongPricing({ inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 'cheap' })),
    ).toEqual([
      ['models.strong.pricing.cachedInputPerMTok', 'Invalid input: expected number, received string'],
    ]);
    expect(
      issues(withStrongPricing({ inputPerMTok: 2.5, outputPerMTok: 10, cachedInputPerMTok: 5 })),
    ).toEqual([
      [
        'models.strong.pricing.cachedInputPerMTok',
        "must not exceed inputPerMTok (2.5): it is the price of prompt tokens read from the provider's cache",
      ],
    ]);
    expect(
      issues(
        withStrongPricing({
          inputPerMTok: 2.5,
          outputPerMTok: 10,
          batch: { inputPerMTok: 1, outputPerMTok: -5 },
        }),
      ),
    ).toEqual([['models.strong.pricing.batch.outputPerMTok', 'Too small: expected number to be >=0']]);
    expect(
      issues(
        withStrongPricing({
          inputPerMTok: 2.5,
          outputPerMTok: 10,
          batch: { inputPerMTok: 1, outputPerMTok: 5, cachedInputPerMTok: 2 },
        }),
      ),
    ).toEqual([
      [
        'models.strong.pricing.batch.cachedInputPerMTok',
        "must not exceed inputPerMTok (1): it is the price of prompt tokens read from the provider's cache",
      ],
    ]);
    expect(
      issues(
        withStrongPricing({
          inputPerMTok: 2.5,
          outputPerMTok: 10,
          batch: { inputPerMTok: 1, outputPerMTok: 5, discount: 0.5 },
        }),
      ),
    ).toEqual([['models.strong.pricing.batch', 'Unrecognized key: "discount"']]);
    expect(issues(withStrongPricing({ inputPerMTok: 2.5, outputPerMTok: 10, mode: 'batch' }))).toEqual([
      ['models.strong.pricing', 'Unrecognized key: "mode"'],
    ]);
  });
});
