import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { METEOR_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';

/**
 * Registers the campaign search attributes on a namespace when they are missing. Needed on real
 * clusters, and on a dev server whose SQLite file predates an attribute (start-dev's
 * `--search-attribute` only registers on a fresh database). Idempotent.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes, systemAttributes } = await connection.operatorService.listSearchAttributes({
    namespace,
  });
  const existing = { ...systemAttributes, ...customAttributes };
  const missing: Record<string, number> = {};
  const missingTypes: string[] = [];
  for (const key of METEOR_SEARCH_ATTRIBUTES) {
    const wanted = indexedValueType(key.type);
    const have = existing[key.name];
    if (have === undefined || have === null) {
      missing[key.name] = wanted;
      missingTypes.push(`--name ${key.name} --type ${CLI_TYPE_NAMES[key.type]}`);
    } else if (have !== wanted) {
      throw new Error(
        `Search attribute ${key.name} exists in namespace ${namespace} with another type (${have}); ` +
          `meteor needs ${key.type}. Remove it or use another namespace.`,
      );
    }
  }
  if (Object.keys(missing).length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    // Two workers starting together race here; losing the race is fine.
    if (/already exists/i.test(text)) return;
    throw new Error(
      `Could not register search attributes ${Object.keys(missing).join(', ')} in namespace ${namespace}: ${text}. ` +
        `Register them yourself: ${missingTypes
          .map((args) => `temporal operator search-attribute create --namespace ${namespace} ${args}`)
          .join('; ')}`,
    );
  }
}

/** The `--search-attribute NAME=Type` values for `temporal server start-dev`. */
export function devServerSearchAttributeFlags(): string[] {
  return METEOR_SEARCH_ATTRIBUTES.flatMap((key) => [
    '--search-attribute',
    `${key.name}=${CLI_TYPE_NAMES[key.type]}`,
  ]);
}

const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

function indexedValueType(type: SearchAttributeType): number {
  const encoded = encodeSearchAttributeIndexedValueType(type);
  if (encoded === undefined) throw new Error(`unknown search attribute type ${type}`);
  return encoded;
}
