"""IEC 60870-5-102 with the REE profile (Spanish tariff meters, Circutor Cirwatt): the FT1.2 link
(drivers/ft12.py, 2-byte link address) as an unbalanced master, the ASDUs of the profile, a
master session over the transport kit, a simulated meter, the CLI and the plugin ("iec102")."""
