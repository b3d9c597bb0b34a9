"""How the packages are plugged together: protocols, prepay, uplink, console, board."""
