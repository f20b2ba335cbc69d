"""Helpers shared by the docs-site tests: build the site once per test run, serve it on localhost."""
