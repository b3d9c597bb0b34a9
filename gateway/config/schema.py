"""The declarative config schema now lives in core/schema.py (protocol plugins use it too)."""

from core.schema import (
    Check,
    Field,
    Problems,
    exact_ratio,
    identifier,
    in_range,
    non_empty,
    non_negative,
    one_of,
    opt,
    positive,
    ratio_check,
    req,
    time_zone,
    validate_table,
)

__all__ = ["Check", "Field", "Problems", "exact_ratio", "identifier", "in_range", "non_empty",
           "non_negative", "one_of", "opt", "positive", "ratio_check", "req", "time_zone",
           "validate_table"]
