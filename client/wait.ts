/** Following a campaign until it ends, reporting its status as it changes. */
import type { Clients } from './connect';
import { campaignStatus, type CampaignStatusView } from './status';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export async function waitForCampaign(
  clients: Clients,
  campaignId: string,
  onStatus: (s: CampaignStatusView) => void = () => undefined,
  pollMs = 1000,
): Promise<CampaignStatusView> {
  for (;;) {
    const s = await campaignStatus(clients, campaignId);
    onStatus(s);
    if (TERMINAL.has(s.state)) return s;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
