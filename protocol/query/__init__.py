"""Joint pattern queries: the specification, its public codebooks, privacy arithmetic, messages, combining answers."""
