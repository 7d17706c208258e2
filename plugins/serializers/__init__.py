"""Serializers plugins: one module each, registered by name with agent.registry."""
