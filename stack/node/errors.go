package node

import "golang.org/x/sys/unix"

var (
	errExist      = unix.EEXIST
	errNetUnreach = unix.ENETUNREACH
)
