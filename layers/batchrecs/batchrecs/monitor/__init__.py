"""Monitor: Personalize sends no completion events, so poll in-flight jobs and publish our own."""
