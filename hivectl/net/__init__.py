"""Networking: virtual switches (FreeBSD if_bridge/vale/netgraph/vxlan, Linux bridges) and guest ports."""
