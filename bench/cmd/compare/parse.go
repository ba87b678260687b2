package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sample is one benchmark result line: its name (GOMAXPROCS suffix
// removed) and each metric by unit.
type sample struct {
	name    string
	metrics map[string]float64
}

// parseResults reads `go test -bench` output and returns every result line
// in order. Other lines (goos, PASS, logs) are ignored.
func parseResults(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	return out, nil
}

// parseLine parses "BenchmarkX/a/b-2  100  123 ns/op  4.5 MB/s ...".
// ok is false for lines that are not result lines.
func parseLine(line string) (s sample, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return sample{}, false, nil
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return sample{}, false, nil // e.g. "BenchmarkX --- SKIP" or a log line
	}
	if len(f)%2 != 0 {
		return sample{}, false, fmt.Errorf("odd number of value/unit fields in %q", line)
	}
	s = sample{name: trimProcs(f[0]), metrics: make(map[string]float64, (len(f)-2)/2)}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return sample{}, false, fmt.Errorf("value %q of %s: %w", f[i], f[i+1], err)
		}
		s.metrics[f[i+1]] = v
	}
	return s, true, nil
}

// trimProcs removes the "-N" GOMAXPROCS suffix go test appends.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}
