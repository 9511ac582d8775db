#!/bin/sh
# Kafka 3.9's kafka-consumer-groups.sh on the image's jars.
exec java -Xmx256m -Dlog4j.configuration=file:/opt/kafka/bin/tools-log4j.properties -cp '/opt/kafka/tools/*:/opt/kafka/libs/*' org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
