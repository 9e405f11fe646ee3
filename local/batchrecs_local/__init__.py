"""The embedded local cloud: moto plus our Personalize emulator behind one endpoint, the stack
created from template.yaml, and the functions run in-process as the template wires them."""
