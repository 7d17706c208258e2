"""The companion sink: reads the agent's metrics back from Kafka, prints or stores them.

Data flows one way: consumer (Kafka records, in a consumer group) → decoder (the parser of
the topic's data format) → batch → store or printer → offsets committed. `agent sink lag` and
`agent sink reset` look after the consumer group's offsets.
"""
