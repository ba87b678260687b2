package shim

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Errorf("median(nil) is not NaN")
	}
}

// TestParseIperfGbits reads the receiver's rate from a trimmed iperf3 -J
// report and rejects error reports.
func TestParseIperfGbits(t *testing.T) {
	ok := `{"start":{},"end":{"sum_sent":{"bits_per_second":2.1e10,"retransmits":3},
		"sum_received":{"bytes":1e9,"seconds":3.0,"bits_per_second":2.0e10}}}`
	g, err := parseIperfGbits([]byte(ok))
	if err != nil || g != 20 {
		t.Errorf("parseIperfGbits = %v, %v; want 20, nil", g, err)
	}
	bad := `{"start":{},"end":{},"error":"the server is busy running a test. try again later"}`
	if _, err := parseIperfGbits([]byte(bad)); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("error report: err = %v, want the server's message", err)
	}
	if _, err := parseIperfGbits([]byte("not json")); err == nil {
		t.Errorf("garbage parsed without error")
	}
}

// TestTableAndVerdicts: ratios are medians over the kernel's median, and
// the verdicts follow the targets' thresholds.
func TestTableAndVerdicts(t *testing.T) {
	s := Samples{}
	for _, v := range []float64{10, 30, 20} {
		s.Add(metricBulkUp.Key, setupKernel, v)
	}
	for _, v := range []float64{9, 11, 10} {
		s.Add(metricBulkUp.Key, setupNetstack, v)
	}
	s.Add(metricBulkUp.Key, setupSlirp, 12)
	for _, v := range []float64{16, 14} {
		s.Add(metricBulkUp.Key, setupAttach, v)
	}
	s.Add(metricBulkUp.Key, setupHost, 19)
	s.Add(metricBulkUp.Key, setupKernelHost, 20)
	if r := s.Ratio(metricBulkUp.Key, setupNetstack, setupKernel); r != 0.5 {
		t.Errorf("netstack/kernel = %v, want 0.5", r)
	}
	if r := s.Ratio(metricRR.Key, setupNetstack, setupKernel); !math.IsNaN(r) {
		t.Errorf("ratio without samples = %v, want NaN", r)
	}
	if r := s.Ratio(metricBulkUp.Key, setupAttach, setupKernel); r != 0.75 {
		t.Errorf("attach/kernel = %v, want 0.75 (median of two is their mean)", r)
	}
	tab := s.Table()
	for _, want := range []string{"| bulk sandbox→peer | Gbit/s | 20.0 (10.0–30.0) |", "0.50×", "0.95×",
		" attach | host |", " attach/kernel |", " 15.0 (14.0–16.0) |", "0.75×"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	if strings.Contains(tab, "RR/s") {
		t.Errorf("table has a row for a metric without samples:\n%s", tab)
	}
	v := strings.Join(s.Verdicts(), "\n")
	for _, want := range []string{
		"netstack bulk sandbox→peer ≥ 50% of kernel veth: 50% → MET",
		"netstack bulk sandbox→peer ahead of slirp4netns: 0.83× → NOT MET",
		"host provider bulk sandbox→peer ≥ 90% of kernel: 95% → MET",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("verdicts lack %q:\n%s", want, v)
		}
	}
}
