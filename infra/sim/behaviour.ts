/**
 * Simulated model misbehaviour the platform must survive: a position-biased judge and malformed
 * structured replies. Seeded, like the fault injector: the same seed, request order and requests
 * give the same malformed replies. The choice mixes a per-server random draw with the request's
 * hash, so a re-ask of the very same request can succeed.
 */
import { Rng } from './faults';
import type { Json } from './structured';
import { hash32 } from './text';

/** 'first': the judge always prefers answer A; 'second': always answer B; null: unbiased. */
export type JudgeBias = 'first' | 'second' | null;

export interface BehaviourConfig {
  judgeBias: JudgeBias;
  /** Share (0..1) of replies to json_schema requests of that schema name that are malformed. */
  malformedRate: Partial<Record<string, number>>;
  /** Requests whose messages contain one of these are answered 400 `context_length_exceeded`. */
  rejectQuestions: string[];
}

export interface BehaviourUpdate {
  judgeBias?: JudgeBias | undefined;
  malformedRate?: Partial<Record<string, number>> | undefined;
  /** Replaces the list ([] turns rejection off). */
  rejectQuestions?: string[] | undefined;
}

const clamp01 = (x: number) => (Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0);

function cleanRates(rates: Partial<Record<string, number>>): Partial<Record<string, number>> {
  const out: Partial<Record<string, number>> = {};
  for (const [name, rate] of Object.entries(rates)) if (rate !== undefined) out[name] = clamp01(rate);
  return out;
}

export class Behaviour {
  private rng: Rng;
  /** Malformed replies so far, by schema name: even turns are broken JSON, odd ones miss fields. */
  private turns: Record<string, number> = {};
  config: BehaviourConfig;

  constructor(
    private readonly seed: number,
    init: BehaviourUpdate = {},
  ) {
    this.rng = new Rng(hash32('behaviour', seed));
    this.config = {
      judgeBias: init.judgeBias ?? null,
      malformedRate: cleanRates(init.malformedRate ?? {}),
      rejectQuestions: [...(init.rejectQuestions ?? [])],
    };
  }

  /** judgeBias: null clears it, undefined keeps it; malformedRate merges by schema name (0 turns one off). */
  update(u: BehaviourUpdate): void {
    this.config = {
      judgeBias: u.judgeBias === undefined ? this.config.judgeBias : u.judgeBias,
      malformedRate: { ...this.config.malformedRate, ...cleanRates(u.malformedRate ?? {}) },
      rejectQuestions: u.rejectQuestions === undefined ? this.config.rejectQuestions : [...u.rejectQuestions],
    };
  }

  /** The configured substring the prompt contains (the request is to be rejected), or undefined. */
  rejected(promptText: string): string | undefined {
    return this.config.rejectQuestions.find((s) => s.length > 0 && promptText.includes(s));
  }

  /** The side a biased judge prefers, or undefined. */
  judgeSide(): 'A' | 'B' | undefined {
    const b = this.config.judgeBias;
    return b === 'first' ? 'A' : b === 'second' ? 'B' : undefined;
  }

  /**
   * The malformed version of `content` (a reply to a json_schema request named `schemaName`),
   * or undefined when this reply stays well-formed. `requestKey` identifies the request.
   */
  malform(
    schemaName: string,
    content: string,
    requestKey: string,
    required: readonly string[] | undefined,
  ): string | undefined {
    const rate = this.config.malformedRate[schemaName] ?? 0;
    if (rate <= 0) return undefined;
    if (rate < 1) {
      const u = (this.rng.next() + hash32('malformed', this.seed, schemaName, requestKey) / 4294967296) % 1;
      if (u >= rate) return undefined;
    }
    const turn = this.turns[schemaName] ?? 0;
    this.turns[schemaName] = turn + 1;
    return turn % 2 === 0 ? brokenJson(content) : missingFields(content, required);
  }

  restart(): void {
    this.rng = new Rng(hash32('behaviour', this.seed));
    this.turns = {};
  }
}

/** Not JSON: cut mid-document, as a model that stopped early or rambled would. */
function brokenJson(content: string): string {
  const cut = content.slice(0, Math.max(1, Math.floor(content.length / 2)));
  return cut.startsWith('{') || cut.startsWith('[') ? cut : `{${cut}`;
}

/** Valid JSON without its required fields (the schema's `required`, else every top-level key but one). */
function missingFields(content: string, required: readonly string[] | undefined): string {
  let doc: Json;
  try {
    doc = JSON.parse(content) as Json;
  } catch {
    return brokenJson(content);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return '{}';
  const keys = Object.keys(doc);
  const drop = new Set(
    required && required.length > 0 ? required : keys.slice(0, Math.max(1, keys.length - 1)),
  );
  const out: { [key: string]: Json } = {};
  for (const k of keys) {
    const v = doc[k];
    if (!drop.has(k) && v !== undefined) out[k] = v;
  }
  return JSON.stringify(out);
}
