#!/bin/sh
# Shaped like FreeBSD's /usr/share/examples/bhyve/vmrun.sh (our own words): the options are collected
# with getopts into variables, then one bhyve command line is put together from them.
memsize=512M
cpus=2
while getopts c:m:t:d: c ; do
	case $c in
	c)
		cpus=${OPTARG}
		;;
	m)
		memsize=${OPTARG}
		;;
	esac
done
vmname=guest
bhyve -c ${cpus} -m ${memsize} -A -H -P -s 0:0,hostbridge -s 1:0,lpc -s 2:0,virtio-net,tap0 ${vmname}
