"""Conditional GANs that synthesize extra training views for vl: faces at a new pose and expression."""
