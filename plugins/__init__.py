"""Plugins: inputs, outputs, serializers and parsers."""
