"""Workbench agent: small, honest tools for smoke tests, benchmarks and fault drills."""
