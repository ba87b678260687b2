package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// series is the samples of one metric of one benchmark and implementation.
type series []float64

// median of the series (the series is sorted in place).
func (s series) median() float64 {
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is the largest distance from the median, as a fraction of it
// (benchstat's "±").
func (s series) spread() float64 {
	m := s.median()
	if m == 0 {
		return 0
	}
	var d float64
	for _, v := range s {
		d = max(d, math.Abs(v-m))
	}
	return d / math.Abs(m)
}

// row is one benchmark metric compared between the two implementations.
type row struct {
	bench, unit string
	base, test  series
}

// ratio is test/base of the medians; NaN when base is 0.
func (r row) ratio() float64 {
	b := r.base.median()
	if b == 0 {
		return math.NaN()
	}
	return r.test.median() / b
}

// verdict tells whether test is better or worse than base: units per
// operation (ns/op, B/op, allocs/op) are better lower, rates (MB/s,
// bytes/cpu-s, conns/s) better higher. Differences within the combined
// spread of both series are reported as noise.
func (r row) verdict() string {
	q := r.ratio()
	if math.IsNaN(q) {
		return ""
	}
	if math.Abs(q-1) <= r.base.spread()+r.test.spread() {
		return "~"
	}
	lowerIsBetter := strings.HasSuffix(r.unit, "/op")
	if (q < 1) == lowerIsBetter {
		return "better"
	}
	return "worse"
}

// implKey returns the benchmark's name with the path element naming impl
// replaced by "*", and whether such an element exists.
func implKey(name, impl string) (string, bool) {
	parts := strings.Split(name, "/")
	for i, p := range parts[1:] {
		if p == impl {
			parts[i+1] = "*"
			return strings.Join(parts, "/"), true
		}
	}
	return "", false
}

// collect groups the samples of impl by benchmark key and unit, keeping
// the order in which benchmarks first appear.
func collect(samples []sample, impl string) (order []string, by map[string]map[string]series) {
	by = make(map[string]map[string]series)
	for _, s := range samples {
		key, ok := implKey(s.name, impl)
		if !ok {
			continue
		}
		m, seen := by[key]
		if !seen {
			m = make(map[string]series)
			by[key] = m
			order = append(order, key)
		}
		for unit, v := range s.metrics {
			m[unit] = append(m[unit], v)
		}
	}
	return order, by
}

// compareSamples pairs base's and test's samples per benchmark and metric.
// Benchmarks or metrics present for only one implementation are left out.
func compareSamples(baseSamples, testSamples []sample, base, test string) ([]row, error) {
	order, baseBy := collect(baseSamples, base)
	_, testBy := collect(testSamples, test)
	var rows []row
	for _, key := range order {
		tm, ok := testBy[key]
		if !ok {
			continue
		}
		bm := baseBy[key]
		units := make([]string, 0, len(bm))
		for u := range bm {
			if _, ok := tm[u]; ok {
				units = append(units, u)
			}
		}
		slices.SortFunc(units, compareUnits)
		for _, u := range units {
			rows = append(rows, row{bench: key, unit: u, base: bm[u], test: tm[u]})
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no benchmark has results for both %q and %q", base, test)
	}
	return rows, nil
}

// unitOrder puts the usual go test units first, in go test's order.
var unitOrder = []string{"ns/op", "MB/s", "B/op", "allocs/op"}

func compareUnits(a, b string) int {
	ia, ib := slices.Index(unitOrder, a), slices.Index(unitOrder, b)
	switch {
	case ia >= 0 && ib >= 0:
		return ia - ib
	case ia >= 0:
		return -1
	case ib >= 0:
		return 1
	}
	return strings.Compare(a, b)
}

// printTable writes the comparison, one line per benchmark metric.
func printTable(w io.Writer, rows []row, base, test string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "benchmark\tmetric\t%s\t%s\t%s/%s\t\n", base, test, test, base)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.bench, r.unit,
			formatSeries(r.base), formatSeries(r.test), formatRatio(r.ratio()), r.verdict())
	}
	return tw.Flush()
}

func formatSeries(s series) string {
	return fmt.Sprintf("%s ±%.0f%% (n=%d)", formatValue(s.median()), 100*s.spread(), len(s))
}

func formatRatio(q float64) string {
	if math.IsNaN(q) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", q)
}

// formatValue prints v with about 4 significant digits and SI prefixes
// for large numbers, like benchstat.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return fmt.Sprintf("%.4gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.4gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.4gk", v/1e3)
	}
	return fmt.Sprintf("%.4g", v)
}
