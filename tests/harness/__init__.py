"""The one test harness: the real `gateway` process, the broker, `eventually()`, leak checks."""
