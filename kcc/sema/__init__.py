"""Semantic passes over the AST: each reports to the sink and keeps going."""
