export { ClickV1, clickV1Contract, encodeClick } from './click.ts'
export { decodeEvent, encodeEvent, encodeEventText, InvalidEventError, type DecodedEvent } from './codec.ts'
export { defineEventContract, type EventContract, type EventOf, type EventSchema } from './contract.ts'
export {
  DeadLetterV1,
  deadLetterFor,
  deadLetterMessage,
  deadLetterPayload,
  deadLetterV1Contract,
  type FailedMessage,
} from './dead-letter.ts'
export { PostbackDeliveryV1, postbackDeliveryV1Contract } from './delivery.ts'
export { FIELD_MAX_LENGTH } from './fields.ts'
export { OutcomeV1, outcomeV1Contract } from './outcome.ts'
export { conversionPartitionKey, PostbackV1, postbackV1Contract } from './postback.ts'
export { topicContracts, topicNames, type TopicNames, type TopicRole } from './topics.ts'
