"""Container networking: address management, port publishing, bridge and firewall drivers."""
