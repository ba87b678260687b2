package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// results is go test -bench output as the benchmark module prints it, with
// a skipped implementation, log lines and a non-default GOMAXPROCS suffix.
const results = `goos: linux
goarch: amd64
pkg: github.com/netprov/netprov/bench
cpu: AMD EPYC
BenchmarkBulk/netstack/mtu1500-2 	    1184	   1000000 ns/op	 1000.00 MB/s	 400000000 bytes/cpu-s	   100 B/op	     10 allocs/op
BenchmarkBulk/netstack/mtu1500-2 	    1184	   3000000 ns/op	  500.00 MB/s	 300000000 bytes/cpu-s	   300 B/op	     30 allocs/op
BenchmarkBulk/netstack/mtu1500-2 	    1184	   2000000 ns/op	  800.00 MB/s	 200000000 bytes/cpu-s	   200 B/op	     20 allocs/op
BenchmarkBulk/ours/mtu1500-2     	    2000	    500000 ns/op	 2000.00 MB/s	 800000000 bytes/cpu-s	     0 B/op	      0 allocs/op
BenchmarkBulk/ours/mtu1500-2     	    2000	    500000 ns/op	 2000.00 MB/s	 800000000 bytes/cpu-s	     0 B/op	      0 allocs/op
BenchmarkBulk/ours/mtu1500-2     	    2000	    500000 ns/op	 2000.00 MB/s	 800000000 bytes/cpu-s	     0 B/op	      0 allocs/op
BenchmarkConnect/netstack/close-16 	   46278	     50000 ns/op	     14426 conns/cpu-s	     20000 conns/s	   13488 B/op	     153 allocs/op
BenchmarkConnect/ours/close
    harness_test.go:27: ours: implementation not wired up yet
--- SKIP: BenchmarkConnect/ours/close
PASS
ok  	github.com/netprov/netprov/bench	18.678s
`

func TestParseResults(t *testing.T) {
	samples, err := parseResults(strings.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 7 {
		t.Fatalf("parsed %d result lines, want 7", len(samples))
	}
	got := samples[6]
	if got.name != "BenchmarkConnect/netstack/close" {
		t.Errorf("name %q: GOMAXPROCS suffix not removed", got.name)
	}
	want := map[string]float64{"ns/op": 50000, "conns/cpu-s": 14426, "conns/s": 20000, "B/op": 13488, "allocs/op": 153}
	for unit, v := range want {
		if got.metrics[unit] != v {
			t.Errorf("%s = %v, want %v", unit, got.metrics[unit], v)
		}
	}
	if len(got.metrics) != len(want) {
		t.Errorf("metrics %v, want exactly %v", got.metrics, want)
	}
}

func TestParseRejectsMalformedValue(t *testing.T) {
	_, err := parseResults(strings.NewReader("BenchmarkX-2  10  abc ns/op\n"))
	if err == nil {
		t.Fatal("a result line with a non-numeric value was accepted")
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkA/b-2":                "BenchmarkA/b",
		"BenchmarkA/echo1_par4xP":       "BenchmarkA/echo1_par4xP",
		"BenchmarkA/netstack-self":      "BenchmarkA/netstack-self",
		"BenchmarkA/netstack-self/x-16": "BenchmarkA/netstack-self/x",
		"BenchmarkA-":                   "BenchmarkA-",
	} {
		if got := trimProcs(in); got != want {
			t.Errorf("trimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompareMediansAndRatios(t *testing.T) {
	samples, err := parseResults(strings.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := compareSamples(samples, samples, "netstack", "ours")
	if err != nil {
		t.Fatal(err)
	}
	// Only Bulk has both implementations; Connect/ours was skipped.
	byUnit := map[string]row{}
	for _, r := range rows {
		if r.bench != "BenchmarkBulk/*/mtu1500" {
			t.Errorf("unexpected row for %s", r.bench)
		}
		byUnit[r.unit] = r
	}
	checks := []struct {
		unit    string
		baseMed float64
		ratio   float64
		verdict string
	}{
		{"ns/op", 2000000, 0.25, "better"},
		{"MB/s", 800, 2.5, "better"},
		{"bytes/cpu-s", 300000000, 800.0 / 300, "better"},
		{"allocs/op", 20, 0, "better"},
	}
	for _, c := range checks {
		r, ok := byUnit[c.unit]
		if !ok {
			t.Errorf("no row for %s", c.unit)
			continue
		}
		if m := r.base.median(); m != c.baseMed {
			t.Errorf("%s: base median %v, want %v", c.unit, m, c.baseMed)
		}
		if q := r.ratio(); math.Abs(q-c.ratio) > 1e-9 {
			t.Errorf("%s: ratio %v, want %v", c.unit, q, c.ratio)
		}
		if v := r.verdict(); v != c.verdict {
			t.Errorf("%s: verdict %q, want %q", c.unit, v, c.verdict)
		}
	}
	if rows[0].unit != "ns/op" {
		t.Errorf("first unit %q, want ns/op", rows[0].unit)
	}
}

func TestCompareSelfIsNoise(t *testing.T) {
	samples, err := parseResults(strings.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := compareSamples(samples, samples, "netstack", "netstack")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ratio() != 1 || r.verdict() != "~" {
			t.Errorf("%s %s: self-comparison gave %v %q", r.bench, r.unit, r.ratio(), r.verdict())
		}
	}
}

func TestCompareWithoutCommonBenchmarkFails(t *testing.T) {
	samples, err := parseResults(strings.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compareSamples(samples, samples, "netstack", "missing"); err == nil {
		t.Fatal("comparing against an implementation with no results did not fail")
	}
}

func TestRunTwoFiles(t *testing.T) {
	dir := t.TempDir()
	oldFile := filepath.Join(dir, "old.txt")
	newFile := filepath.Join(dir, "new.txt")
	if err := os.WriteFile(oldFile, []byte("BenchmarkBulk/netstack/mtu1500-2  10  100 ns/op\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newFile, []byte("BenchmarkBulk/netstack/mtu1500-2  10  150 ns/op\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-test", "netstack", oldFile, newFile}, nil, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output has %d lines, want header + 1:\n%s", len(lines), out.String())
	}
	if f := strings.Fields(lines[1]); len(f) < 2 || f[0] != "BenchmarkBulk/*/mtu1500" || !strings.Contains(lines[1], "1.50x") || !strings.HasSuffix(lines[1], "worse") {
		t.Errorf("row %q: want BenchmarkBulk/*/mtu1500 ... 1.50x worse", lines[1])
	}
}
