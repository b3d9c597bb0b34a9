"""Modbus RTU/TCP master, register profiles as data, simulators."""
