"""Wayfinder's contracts: typed entities, the topic catalog and the Kafka headers.

Everything that crosses Kafka is defined here, once. Outside consumers read the generated
JSON Schema and AsyncAPI files under ``schemas/published/``.
"""
