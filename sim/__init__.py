"""Local-only tooling: source simulator, moto provisioning, the demo, screenshots."""
