"""Pieces shared by the task entry points."""
