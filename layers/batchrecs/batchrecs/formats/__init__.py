"""Our wire formats: input lines, Personalize .out lines, and the events we publish."""
