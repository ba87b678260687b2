package cni

import (
	"errors"

	"golang.org/x/sys/unix"
)

func syscallKill(pid int) error { return unix.Kill(pid, unix.SIGKILL) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
