"""Seed data for development and demos: `python -m seeds`."""
