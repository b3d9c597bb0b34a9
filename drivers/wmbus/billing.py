"""A telegram's samples: the current values and, where its quirk names the billing storage,
the billing-period values with their date (drivers.mbus.mapping.billing_samples)."""

from __future__ import annotations

from drivers.errors import FrameError
from drivers.mbus.mapping import billing_samples, records_to_samples, telegram_readings
from drivers.readings import Sample
from drivers.wmbus.telegram import Telegram


def with_billing(telegram: Telegram, samples: list[Sample]) -> list[Sample]:
    """`samples` plus the billing values the telegram's quirk points at (none without one)."""
    if telegram.billing_storage is None:
        return samples
    extra = billing_samples(telegram.records, telegram.device_type, telegram.billing_storage,
                            telegram.layout)
    return samples + extra if extra else samples


def telegram_readings_with_billing(telegram: Telegram) -> tuple[list[Sample], list[FrameError]]:
    """The receiver's samples (cached selection per layout) and the value errors."""
    samples, errors = telegram_readings(telegram.records, telegram.device_type, telegram.layout)
    return with_billing(telegram, samples), errors


def telegram_samples_with_billing(telegram: Telegram) -> list[Sample]:
    return with_billing(telegram, records_to_samples(telegram.records, telegram.device_type))
