"""Code that several plugins share: the Kafka client settings of outputs.kafka and the sink."""
