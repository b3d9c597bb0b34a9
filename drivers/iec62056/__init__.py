"""IEC 62056-21 optical / RS-485 meters (modes A, B, C, programming mode) and DSMR P1 telegrams."""
