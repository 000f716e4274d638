"""Feature flags: flagd's flag-definition format in the config repository, evaluated like flagd, served over OFREP.

    files.py      reading `flags/*.yaml|json` and the environments' `flags:` overlays into one flag set, with
                  FILE:LINE:COL problems (unknown variant, bad JsonLogic, type mismatch, ...)
    operations.py flagd's custom JsonLogic operations: fractional, sem_ver, starts_with, ends_with
    evaluate.py   one flag for one context: value, variant, reason or error code (pure)
    ofrep.py      the OpenFeature Remote Evaluation Protocol over HTTP (single, bulk, ETag)
    service.py    the control plane's side: the current flag set, its read-only listener, FlagsChanged events
"""
