"""Analytics at the panel: intervals, snapshots, validation, balance, alarms (pure logic)."""
