package shim

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Setup names: the client configurations, in table order. kernel is the
// reference of every ratio; kernelHost is the kernel client in the host
// namespace itself, where the host provider's sockets live; attach is
// netprov's stack on a kernel veth like kernel's (`netprov run --netns
// --attach`, AF_PACKET), netstack the same stack on a TAP.
const (
	setupKernel     = "kernel"
	setupKernelHost = "kernel-hostns"
	setupNetstack   = "netstack"
	setupAttach     = "attach"
	setupHost       = "host"
	setupSlirp      = "slirp4netns"
)

var setupOrder = []string{setupKernel, setupKernelHost, setupNetstack, setupAttach, setupHost, setupSlirp}

// Metric is one row of the table.
type Metric struct {
	Key   string // short name, also the benchmark metric prefix
	Title string
	Unit  string
	// LowerIsBetter for costs (ns/call); rates are better higher.
	LowerIsBetter bool
}

var (
	metricBulkUp   = Metric{Key: "bulk_up", Title: "bulk sandbox→peer", Unit: "Gbit/s"}
	metricBulkDown = Metric{Key: "bulk_down", Title: "bulk peer→sandbox", Unit: "Gbit/s"}
	metricRR       = Metric{Key: "rr", Title: "1-byte req/resp, 1 conn", Unit: "RR/s"}
	metricCPS      = Metric{Key: "cps", Title: "connect+1B echo+close", Unit: "conn/s"}
	metricCall     = Metric{Key: "call", Title: "getsockname (intercepted)", Unit: "ns/call", LowerIsBetter: true}
	metricOrder    = []Metric{metricBulkUp, metricBulkDown, metricRR, metricCPS, metricCall}
)

// Samples holds every repetition's value per metric and setup.
type Samples map[string]map[string][]float64

// Add records one value.
func (s Samples) Add(metric, setup string, v float64) {
	if s[metric] == nil {
		s[metric] = make(map[string][]float64)
	}
	s[metric][setup] = append(s[metric][setup], v)
}

// Median of metric for setup, NaN when there is no sample.
func (s Samples) Median(metric, setup string) float64 { return median(s[metric][setup]) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	c := slices.Clone(v)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Ratio is the median of setup over the median of base (NaN if either is
// missing).
func (s Samples) Ratio(metric, setup, base string) float64 {
	b := s.Median(metric, base)
	if b == 0 || math.IsNaN(b) {
		return math.NaN()
	}
	return s.Median(metric, setup) / b
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 10000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

// spread is "min–max" of the samples.
func spread(v []float64) string {
	if len(v) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%s–%s)", formatValue(slices.Min(v)), formatValue(slices.Max(v)))
}

// Table renders the medians as a Markdown table: one row per metric, each
// setup's median (with min–max over the repetitions) and its ratio to the
// kernel veth client, plus host/kernel-hostns (the host provider against
// a kernel client in the namespace its sockets live in).
func (s Samples) Table() string {
	var b strings.Builder
	b.WriteString("| metric | unit |")
	for _, st := range setupOrder {
		fmt.Fprintf(&b, " %s |", st)
	}
	for _, st := range setupOrder[1:] {
		fmt.Fprintf(&b, " %s/kernel |", st)
	}
	b.WriteString(" host/kernel-hostns |\n|---|---|")
	b.WriteString(strings.Repeat("---|", 2*len(setupOrder)))
	b.WriteString("\n")
	for _, m := range metricOrder {
		if s[m.Key] == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", m.Title, m.Unit)
		for _, st := range setupOrder {
			fmt.Fprintf(&b, " %s%s |", formatValue(s.Median(m.Key, st)), spread(s[m.Key][st]))
		}
		for _, st := range setupOrder[1:] {
			fmt.Fprintf(&b, " %s |", formatRatio(s.Ratio(m.Key, st, setupKernel)))
		}
		fmt.Fprintf(&b, " %s |\n", formatRatio(s.Ratio(m.Key, setupHost, setupKernelHost)))
	}
	return b.String()
}

// Verdicts checks issue 3's targets on the medians: netstack bulk ≥ 50 %
// of the kernel veth path and ahead of slirp4netns (each direction), host
// provider ≥ 90 % of native on the data path (bulk each way and
// request/response, against both kernel clients).
func (s Samples) Verdicts() []string {
	var out []string
	verdict := func(ok bool) string {
		if ok {
			return "MET"
		}
		return "NOT MET"
	}
	have := func(r float64) bool { return !math.IsNaN(r) }
	for _, m := range []Metric{metricBulkUp, metricBulkDown} {
		if r := s.Ratio(m.Key, setupNetstack, setupKernel); have(r) {
			out = append(out, fmt.Sprintf("netstack %s ≥ 50%% of kernel veth: %.0f%% → %s", m.Title, 100*r, verdict(r >= 0.5)))
		}
		if r := s.Ratio(m.Key, setupNetstack, setupSlirp); have(r) {
			out = append(out, fmt.Sprintf("netstack %s ahead of slirp4netns: %.2f× → %s", m.Title, r, verdict(r > 1)))
		}
	}
	for _, m := range []Metric{metricBulkUp, metricBulkDown, metricRR} {
		for _, base := range []string{setupKernel, setupKernelHost} {
			if r := s.Ratio(m.Key, setupHost, base); have(r) {
				out = append(out, fmt.Sprintf("host provider %s ≥ 90%% of %s: %.0f%% → %s", m.Title, base, 100*r, verdict(r >= 0.9)))
			}
		}
	}
	return out
}
