"""Schema generation, linting and audit of configurations (`tidegate check -l`, `schema`,
`audit`), all read from one declarative description of what tidegate accepts."""

from tidegate.lint.linter import Issue, lint, unknown_attribute_warnings, walk
from tidegate.lint.schema import build_schema

__all__ = ["Issue", "build_schema", "lint", "unknown_attribute_warnings", "walk"]
