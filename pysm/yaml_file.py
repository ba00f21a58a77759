"""Reading the YAML files pysm accepts (pipeline graphs, source lists, nvinfer configs), with the
same ConfigError wording everywhere."""

from __future__ import annotations

from typing import Any

from pysm.errors import ConfigError


def load_yaml(path: str, what: str) -> Any:
    """The parsed document of `path` ({} when empty); `what` names the file in errors
    (e.g. "pipeline config", "source list")."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} '{path}' is not valid YAML: {exc}".replace("\n", " ")) from None
    return {} if doc is None else doc
