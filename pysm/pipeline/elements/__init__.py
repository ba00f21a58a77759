"""Built-in elements; importing this package registers their factory names."""

from pysm.pipeline.elements import (  # noqa: F401
    app_source,
    basic,
    convert,
    dynamic_source,
    infer,
    multi_uri_source,
    mux,
    sinks,
    test_source,
    uri_source,
)
