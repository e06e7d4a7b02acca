"""Administering the reference data: dinas, categories, routing rules, holidays.

Each function checks all of its input before it changes anything, so a refusal
(`ValidationFailed`, naming every bad field as the API spells it) leaves the
session untouched: a GraphQL operation that returns a ValidationError still
commits, and must have written nothing. Functions flush, never commit.

Updates take `KEEP` (the default) for each field they leave as it is.
"""
