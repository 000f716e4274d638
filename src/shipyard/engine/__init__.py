"""The reconcile engine: desired state, actual state, a pure plan, and the one place that applies it."""
