/**
 * Every question a campaign has, as the novelty check of task evolution sees them — read from the
 * database, never from what a batch believes it wrote. A worker keeps one campaign's filter
 * between batches and tops it up with the training questions added since (evolved questions get
 * the next ordinal of the training split, so "since" is "ordinal above the last one seen"); the
 * given and held-out questions never change during a campaign. Without this, each batch would read
 * and index the campaign's whole question set again, batch after batch, one batch at a time.
 */
import type { Kysely } from 'kysely';
import { NoveltyFilter, noveltyText } from '../../core/evolution/novelty';
import type { Database } from '../../core/db/types';

/** A database handle or a transaction on it. */
type Queryable = Kysely<Database>;

export class KnownQuestions {
  private readonly ids = new Set<string>();

  private constructor(
    readonly filter: NoveltyFilter,
    private lastTrainOrdinal: number,
  ) {}

  /** All questions of the campaign, both splits, kept and given alike. */
  static async load(db: Queryable, campaignId: string, maxSimilarity: number): Promise<KnownQuestions> {
    const known = new KnownQuestions(new NoveltyFilter([], maxSimilarity), -1);
    const rows = await db
      .selectFrom('questions')
      .select(['id', 'split', 'ordinal', 'title', 'question'])
      .where('campaign_id', '=', campaignId)
      .orderBy('split')
      .orderBy('ordinal')
      .execute();
    for (const r of rows) known.add(r);
    return known;
  }

  /** Learns the training questions committed since the last look (by this worker or another). */
  async refresh(db: Queryable, campaignId: string): Promise<void> {
    const rows = await db
      .selectFrom('questions')
      .select(['id', 'split', 'ordinal', 'title', 'question'])
      .where('campaign_id', '=', campaignId)
      .where('split', '=', 'train')
      .where('ordinal', '>', this.lastTrainOrdinal)
      .orderBy('ordinal')
      .execute();
    for (const r of rows) this.add(r);
  }

  /** Adds a committed question; one already known (read back by a refresh) is not added twice. */
  add(q: {
    id: string;
    split: 'train' | 'eval';
    ordinal: number;
    title: string | null;
    question: string;
  }): void {
    if (q.split === 'train') this.lastTrainOrdinal = Math.max(this.lastTrainOrdinal, q.ordinal);
    if (this.ids.has(q.id)) return;
    this.ids.add(q.id);
    this.filter.add({ id: q.id, text: noveltyText(q), split: q.split });
  }
}

/** How many campaigns' filters one worker keeps (the oldest goes first). */
const KEPT_CAMPAIGNS = 4;

/** A worker's filters, by campaign and threshold. */
export class KnownQuestionsCache {
  private readonly entries = new Map<string, Promise<KnownQuestions>>();

  /** The campaign's filter, loaded whole the first time (callers `refresh` it before deciding). */
  async get(db: Queryable, campaignId: string, maxSimilarity: number): Promise<KnownQuestions> {
    const key = `${campaignId}\u0000${maxSimilarity}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = KnownQuestions.load(db, campaignId, maxSimilarity);
      this.entries.set(key, entry);
      while (this.entries.size > KEPT_CAMPAIGNS)
        this.entries.delete(this.entries.keys().next().value as string);
      // A failed load is not kept: the next batch tries again.
      entry.catch(() => void this.entries.delete(key));
    } else {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }
}
