"""The throwaway Kafka of scripts/kafka, one job a module.

layout     version, ports and where every file goes
failures   the one-line error every verb may end with, and progress messages
state      the nodes started here and their state file; the lock that serialises verbs
processes  Java, ports, starting and stopping the broker processes
maven      Kafka's jars from Maven Central
broker_config  server.properties, client.properties and log4j2 files
probe      whether a broker answers (kafka-python, or the port alone before the venv exists)
tls        the CA, certificates and stores of the secure node
tools      Kafka's command-line tools (scripts/kafka tool NAME) and kafka-storage format
plain      the verbs of the plain node or cluster: up, down, stop-node, start-node, status, tool
secure     the verbs of the separate SASL_SSL node: up/down/status --secure
cli        the command line
"""
