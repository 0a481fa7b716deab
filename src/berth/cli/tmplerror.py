"""The template error type, apart from the engine so callers can catch it without importing it."""

from __future__ import annotations


class TemplateError(Exception):
    pass
