#!/bin/sh
# A vm-manage.sh as the bhyve cookbook's automation recipe describes it ("vm-manage.sh NAME
# start|stop|status"), written for this test with the guest's values set at the top.
VM=guest1
MEM=4G
DISK=/vm/instances/guest1.img
CONS=/dev/nmdm0A

case "$1" in
start)
	bhyvectl --destroy --vm=$VM 2>/dev/null
	bhyveload -m $MEM -d $DISK -c $CONS $VM
	bhyve -A -H -P -c 2 -m ${MEM} \
	    -s 0:0,hostbridge -s 1:0,lpc \
	    -s 2:0,virtio-net,tap0 \
	    -s 3:0,virtio-blk,$DISK \
	    -l com1,$CONS \
	    $VM &
	;;
stop)
	bhyvectl --destroy --vm=$VM
	;;
status)
	ps aux | grep "bhyve: $VM"
	;;
esac
