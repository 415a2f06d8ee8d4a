#!/bin/sh
# vm-manage.sh as the cookbook gives it: the guest's name is the script's first argument, so the command
# line is only known when the script runs.
NAME=$1
bhyveload -m 4G -d /vm/instances/$NAME.img $NAME
bhyve -A -H -P -c 2 -m 4G -s 0:0,hostbridge -s 1:0,lpc -s 3:0,virtio-blk,/vm/instances/$NAME.img $NAME
