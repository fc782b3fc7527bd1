import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes the campaign workflow keeps current, so campaigns can be filtered in the
 * Temporal UI and CLI (`temporal workflow list --query "MeteorState='paused'"`).
 * The local stack registers them at start; `meteorctl worker` checks them on a real cluster.
 */
export const MeteorCampaignId = defineSearchAttributeKey('MeteorCampaignId', 'KEYWORD');
export const MeteorStage = defineSearchAttributeKey('MeteorStage', 'KEYWORD');
export const MeteorState = defineSearchAttributeKey('MeteorState', 'KEYWORD');

export const METEOR_SEARCH_ATTRIBUTES = [MeteorCampaignId, MeteorStage, MeteorState] as const;
