/**
 * Structured replies: the simulated models answer `response_format: json_schema` requests with
 * JSON that follows the schema they were sent, filling each property from what the task
 * decided (looked up by property path), so a prompt author can reshape a schema without
 * changing the simulator. Supports the JSON-schema subset OpenAI strict mode allows.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type Schema = Record<string, unknown>;

/** Value for the property at `path` (property names from the root; its schema given), or undefined for a default. */
export type Resolver = (path: readonly string[], schema: Schema | undefined) => Json | undefined;

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function typesOf(s: Schema): string[] {
  const t = s['type'];
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  if (isSchema(s['properties'])) return ['object'];
  if (Array.isArray(s['enum'])) return ['enum'];
  return [];
}

export const squash = (v: string) => v.toLowerCase().replace(/[^a-z0-9]/g, '');

function fromEnum(options: readonly unknown[], value: Json | undefined): Json {
  const first = options[0];
  const fallback: Json =
    typeof first === 'string' || typeof first === 'number' || typeof first === 'boolean' ? first : null;
  if (value === undefined) return fallback;
  if (options.includes(value)) return value;
  if (typeof value !== 'string') return fallback;
  // "A" fits "answer_a", "tie" fits "Tie", "1" fits "answer_1".
  const v = squash(value);
  for (const o of options) if (typeof o === 'string' && squash(o) === v) return o;
  for (const o of options) if (typeof o === 'string' && v.length <= 3 && squash(o).endsWith(v)) return o;
  return fallback;
}

function num(s: Schema, value: Json | undefined, integer: boolean): number {
  const min = typeof s['minimum'] === 'number' ? s['minimum'] : undefined;
  const max = typeof s['maximum'] === 'number' ? s['maximum'] : undefined;
  let n =
    typeof value === 'number'
      ? value
      : typeof value === 'boolean'
        ? Number(value)
        : min !== undefined && max !== undefined
          ? (min + max) / 2
          : (min ?? 0);
  if (min !== undefined) n = Math.max(min, n);
  if (max !== undefined) n = Math.min(max, n);
  return integer ? Math.round(n) : n;
}

function navigate(value: Json, keys: readonly string[]): Json | undefined {
  let cur: Json | undefined = value;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

export function fillSchema(schema: unknown, resolve: Resolver, path: readonly string[] = []): Json {
  if (!isSchema(schema)) return resolve(path, undefined) ?? null;
  const alternatives = schema['anyOf'] ?? schema['oneOf'];
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    const value = resolve(path, schema);
    const nullable = alternatives.some((a) => isSchema(a) && a['type'] === 'null');
    if (value === null && nullable) return null;
    const chosen = alternatives.find((a) => isSchema(a) && a['type'] !== 'null') ?? alternatives[0];
    return fillSchema(chosen, resolve, path);
  }
  const value = resolve(path, schema);
  if (Array.isArray(schema['enum'])) return fromEnum(schema['enum'], value);
  const types = typesOf(schema);
  if (value === null && types.includes('null')) return null;
  const type = types.find((t) => t !== 'null') ?? (value === undefined ? 'null' : typeof value);
  switch (type) {
    case 'object': {
      const props = schema['properties'];
      if (!isSchema(props)) return isSchema(value) ? value : {};
      const out: { [key: string]: Json } = {};
      for (const [key, sub] of Object.entries(props)) out[key] = fillSchema(sub, resolve, [...path, key]);
      return out;
    }
    case 'array': {
      if (!Array.isArray(value)) return [];
      // Items come from the resolved array itself; deeper properties are read inside each item.
      return value.map((item, i) =>
        fillSchema(schema['items'], (p, s) => navigate(item, p.slice(path.length + 1)) ?? resolve(p, s), [
          ...path,
          String(i),
        ]),
      );
    }
    case 'string':
      return typeof value === 'string'
        ? value
        : value === undefined || value === null
          ? ''
          : JSON.stringify(value);
    case 'number':
      return num(schema, value, false);
    case 'integer':
      return num(schema, value, true);
    case 'boolean':
      return typeof value === 'boolean' ? value : false;
    case 'null':
      return null;
    default:
      return value ?? null;
  }
}

/** Resolver from a flat map of facts keyed by squashed property name (the last path element). */
export function factsResolver(facts: Readonly<Record<string, Json>>): Resolver {
  return (path) => {
    const last = path[path.length - 1];
    if (last === undefined) return undefined;
    const key = squash(last);
    return key in facts ? facts[key] : undefined;
  };
}
