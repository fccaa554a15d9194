"""Helpers shared by unit test modules (test modules never import each other)."""
