"""Export to Kubernetes + Flux + Flagger: the same project as a Flux-ready repository of manifests, plus the gaps."""
