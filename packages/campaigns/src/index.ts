export {
  Campaign,
  CampaignInput,
  CampaignPatch,
  campaignInputOf,
  campaignInputProblem,
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
export { FixedUrl, UrlTemplate, urlTemplateProblem } from './url.ts'
export { createConfigStore, configKeys, type ConfigStore, type ConfigStoreOptions } from './store.ts'
export {
  DEFAULT_POSTBACK_STATUSES,
  PostbackRule,
  PostbackRuleInput,
  Publisher,
  PublisherId,
  PublisherInput,
  WebhookSecret,
  postbackUrlProblem,
  publisherFromInput,
  webhookSecretKey,
  type PostbackStatus,
} from './publisher-schema.ts'
export { createPublisherStore, publisherKeys, type PublisherStore } from './publisher-store.ts'
