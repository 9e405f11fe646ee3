"""A local stand-in for Amazon Personalize batch jobs, speaking its JSON wire protocol."""
