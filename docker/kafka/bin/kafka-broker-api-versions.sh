#!/bin/sh
# Kafka 3.9's kafka-broker-api-versions.sh on the image's jars.
exec java -Xmx256m -Dlog4j.configuration=file:/opt/kafka/bin/tools-log4j.properties -cp '/opt/kafka/tools/*:/opt/kafka/libs/*' kafka.admin.BrokerApiVersionsCommand "$@"
