"""minirun's bridge network as a CNI plugin (`minirun-cni`): config.py reads the network
configuration, plugin.py speaks the CNI protocol (ADD, DEL, CHECK, VERSION, GC, STATUS)."""
