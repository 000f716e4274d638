"""Artifacts: a service built once into an OCI image, kept in a store, pulled and run by digest.

    descriptor.py  artifact.yaml (apiVersion shipyard/v1, kind Artifact): what to build and how to test it
    oci.py         pure OCI image pieces: deterministic layers, config, manifest, digests, provenance
    build.py       a source directory → an image (files, git revision, created time)
    layout.py      the embedded store: one OCI image layout directory per artifact name
    registry.py    a remote store: any OCI distribution registry, through the `oras` client
    stores.py      choosing a store (--store, SHIPYARD_STORE, shipyard.yaml `store:`, default)
    pull.py        pull by digest into a verified blob cache; unpack layers (whiteouts honoured) into roots
    describe.py    what `artifacts list/inspect` show
    pipeline.py    the stages of a service's pipeline, the component test, publishing
"""
