"""The OBIS map shared by IEC 62056-21 / DSMR (and soon DLMS): code type, quantity tables, units."""
