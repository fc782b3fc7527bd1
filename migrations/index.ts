/** Every migration, in order. A static list (not a folder scan) so it works under tsx and bundlers. */
import type { Migration } from 'kysely';
import * as m001 from './001_init';
import * as m002 from './002_full_loop';
import * as m003 from './003_finetune_dispatch';
import * as m004 from './004_lines';
import * as m005 from './005_failed_questions';
import * as m006 from './006_endpoint_limits';
import * as m008 from './008_outage_budget';
import * as m009 from './009_duplicate_calls';
import * as m010 from './010_spend_per_statement';
import * as m011 from './011_self_correction';
import * as m012 from './012_search_trees';
import * as m013mcts from './013_mcts';
import * as m014evolve from './014_evolve';
import * as m015rstar from './015_rstar';
import * as m016 from './016_row_scores';
import * as m017billing from './017_billing';
import * as m018forecasts from './018_forecasts';
import * as m019batches from './019_provider_batches';
import * as m020drain from './020_batch_drain';

export const migrations: Record<string, Migration> = {
  '001_init': m001,
  '002_full_loop': m002,
  '003_finetune_dispatch': m003,
  '004_lines': m004,
  '005_failed_questions': m005,
  '006_endpoint_limits': m006,
  '008_outage_budget': m008,
  '009_duplicate_calls': m009,
  '010_spend_per_statement': m010,
  '011_self_correction': m011,
  '012_search_trees': m012,
  '013_mcts': m013mcts,
  '014_evolve': m014evolve,
  '015_rstar': m015rstar,
  '016_row_scores': m016,
  '017_billing': m017billing,
  '018_forecasts': m018forecasts,
  '019_provider_batches': m019batches,
  '020_batch_drain': m020drain,
};
