"""The only code that touches hardware: serial ports, GPIO relays and inputs, LEDs, watchdog, USB."""
