"""metrics-agent: a Telegraf-compatible host metrics agent that feeds Apache Kafka."""

__version__ = "0.1.0"
