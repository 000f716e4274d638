"""The data plane: Envoy config (pure), publishing it through files, and the Envoy process."""
