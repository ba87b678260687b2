package bench

import (
	"fmt"
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user + system) this process has used so
// far, over all its threads: both stacks, the link pumps and the benchmark
// goroutines, which is the cost a sandbox's stack process would have.
func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
