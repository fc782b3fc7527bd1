/**
 * One iteration of an evolution line, started by the line's Temporal Schedule (`line-<name>`):
 * take in the questions that arrived since, run a campaign from the champion, and promote its
 * final model only past the pairwise judge's gate.
 */
export interface LineIterationInput {
  line: string;
}

export interface LineIterationResult {
  iteration: number;
  campaignId: string | null;
  state: 'completed' | 'failed' | 'cancelled' | 'skipped';
  promoted: boolean | null;
  reason: string | null;
}

export async function lineIterationWorkflow(input: LineIterationInput): Promise<LineIterationResult> {
  void input;
  throw new Error('not implemented yet');
}
