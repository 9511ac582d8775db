export {
  Campaign,
  CampaignInput,
  EventRule,
  Partner,
  PartnerInput,
  Payout,
  DEFAULT_WINDOW_SECONDS,
  campaignFromInput,
  campaignIdPattern,
  partnerFromInput,
  windowFor,
  longestWindow,
} from './schema.ts'
export { createConfigStore, configKeys, type ConfigStore, type ConfigStoreOptions } from './store.ts'
