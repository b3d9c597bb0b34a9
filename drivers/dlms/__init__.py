"""DLMS/COSEM (IEC 62056-46/-5-3/-6-2): sans-IO framing, A-XDR, APDUs, security, COSEM objects."""
