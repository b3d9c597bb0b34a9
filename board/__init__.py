"""The only code that touches hardware: serial ports, GPIO relays, inputs, LEDs, watchdog, USB."""
