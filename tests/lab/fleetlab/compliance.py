"""Placeholder: registers its SSM operations once written."""
