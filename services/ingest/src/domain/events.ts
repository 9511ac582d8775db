import {
  clickV1Contract,
  conversionPartitionKey,
  encodeEvent,
  postbackV1Contract,
  type ClickV1,
  type PostbackV1,
  type TopicNames,
} from '@clickjoin/contracts'
import type { EventProducer } from '@clickjoin/kafka'

/** Publishes ingest's two events; each promise resolves only once Kafka acknowledged it. */
export interface EventPublisher {
  click(click: ClickV1): Promise<void>
  postback(postback: PostbackV1): Promise<void>
}

export function createEventPublisher(producer: EventProducer, topics: TopicNames): EventPublisher {
  return {
    click: (click) => producer.send(topics.clicks, { key: click.click_id, value: encodeEvent(clickV1Contract, click) }),
    // Keyed by conversion identity: the postbacks of one conversion are decided in this order.
    postback: (postback) =>
      producer.send(topics.conversions, { key: conversionPartitionKey(postback), value: encodeEvent(postbackV1Contract, postback) }),
  }
}
